#include "loop.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <optional>
#include <sstream>

#include "../../autograd/ops.hpp"
#include "../../autograd/runtime/parallel.hpp"
#include "../../autograd/tape.hpp"
#include "average.hpp"
#include "checkpoint.hpp"
#include "distributed.hpp"
#include "optim.hpp"
#include "schedule.hpp"
#include "curve.hpp"

namespace tg::nn {

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

using Clock = std::chrono::steady_clock;

std::string clock_text(double seconds) {
  const auto s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// A progress bar on a terminal; a plain line every 30 s otherwise (logs, CI).
class Progress {
 public:
  // Shows nothing when `shown` is false (every rank but 0 in data-parallel training).
  Progress(std::size_t epoch, std::size_t epochs, std::size_t steps, bool shown)
      : epoch_(epoch), epochs_(epochs), steps_(steps), shown_(shown), tty_(isatty(fileno(stdout))), start_(Clock::now()),
        last_(start_) {}

  void update(std::size_t step, double loss, std::size_t tokens) {
    tokens_ += tokens;
    if (!shown_) return;
    const auto now = Clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (since < (tty_ ? 0.2 : 30.0) && step + 1 < steps_) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double eta = elapsed / (step + 1) * (steps_ - step - 1);
    const double rate = tokens_ / std::max(elapsed, 1e-9);
    if (tty_) {
      const int width = 24, filled = static_cast<int>(width * (step + 1) / std::max<std::size_t>(steps_, 1));
      std::printf("\r epoch %zu/%zu [%s%s] %zu/%zu  loss %.4f  %.0f tok/s  ETA %s   ", epoch_, epochs_,
                  std::string(filled, '=').c_str(), std::string(width - filled, ' ').c_str(), step + 1, steps_, loss,
                  rate, clock_text(eta).c_str());
    } else {
      std::printf("epoch %zu/%zu step %zu/%zu loss %.4f %.0f tok/s ETA %s\n", epoch_, epochs_, step + 1, steps_,
                  loss, rate, clock_text(eta).c_str());
    }
    std::fflush(stdout);
  }

  void finish() {
    if (shown_ && tty_) std::printf("\n");
  }

 private:
  std::size_t epoch_, epochs_, steps_, tokens_ = 0;
  bool shown_, tty_;
  Clock::time_point start_, last_;
};

// The JSON-lines log: one object a line, appended (a resumed run continues the same log).
class JsonLog {
 public:
  explicit JsonLog(const std::string& path) {
    if (path.empty()) return;
    out_.open(path, std::ios::app);
    if (!out_) throw std::runtime_error(path + ": cannot open the log for writing: " + std::strerror(errno));
  }
  void write(const nlohmann::json& record) {
    if (out_.is_open()) out_ << record.dump() << std::endl;  // a line at a time, for `tail -f`
  }

 private:
  std::ofstream out_;
};

// The loop's own state, saved in checkpoints beside the model and optimizer.
struct LoopState {
  std::size_t epoch = 0, step_in_epoch = 0;
  double best = -1, seconds = 0;
  std::vector<EpochRecord> history;

  std::string to_text() const {
    std::ostringstream os;
    os.precision(17);
    os << epoch << ' ' << step_in_epoch << ' ' << best << ' ' << seconds << '\n';
    for (const auto& r : history) os << r.epoch << ' ' << r.train_loss << ' ' << r.dev_metric << ' ' << r.seconds << '\n';
    return os.str();
  }

  static LoopState from_text(const std::string& text, const std::string& where) {
    LoopState s;
    std::istringstream in(text);
    if (!(in >> s.epoch >> s.step_in_epoch >> s.best >> s.seconds)) throw std::runtime_error(where + ": bad training state");
    for (EpochRecord r; in >> r.epoch >> r.train_loss >> r.dev_metric >> r.seconds;) s.history.push_back(r);
    return s;
  }
};

// Swaps a ParameterAverage's averages into the model for a scope, and back out at its end
// (also when evaluating or saving throws).  Does nothing given nullptr.
class AveragedWeights {
 public:
  explicit AveragedWeights(nn::ParameterAverage* average) : average_(average) {
    if (average_) average_->swap();
  }
  ~AveragedWeights() {
    if (average_) average_->swap();
  }
  AveragedWeights(const AveragedWeights&) = delete;
  AveragedWeights& operator=(const AveragedWeights&) = delete;

 private:
  nn::ParameterAverage* average_;
};

}  // namespace

// Data parallelism in the loop: every rank walks the same global batches and computes the loss
// of its shard; the gradients (and the losses) are summed before the step, so every rank takes
// the same step and the parameters stay the same on all of them (checked every
// check_ranks_every steps).  Decisions that one rank could make alone (stop on Ctrl-C, stop
// for time) are agreed on at the start of a step; rank 0 alone evaluates and writes.
TrainResult train(Task& task, const TrainOptions& o) {
  const nn::ProcessGroup& group = task.group ? *task.group : nn::ProcessGroup::world();
  const bool root = group.is_root(), parallel = group.size() > 1;
  g_stop = 0;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGUSR1, on_signal);  // mpirun passes SIGUSR1 on to every rank at once
  const std::vector<Tensor> params = task.model->parameters();
  nn::AdamW opt(task.model->named_parameters(), {.lr = o.lr, .weight_decay = 0.01});
  const std::size_t per_epoch = task.batches(0).size();
  const std::size_t total = std::max<std::size_t>(per_epoch * o.epochs, o.warmup + 1);
  const nn::WarmupCosine schedule(o.lr, o.warmup, total, o.lr * 0.05);
  const std::string checkpoint = o.out + ".ckpt";

  std::optional<nn::ParameterAverage> average;
  if (o.average > 0) average.emplace(task.model->named_parameters(), o.average);
  const std::string average_prefix = "average/";

  LoopState state;
  if (o.resume) {  // every rank reads the checkpoint (on a shared file system across machines)
    nn::NpzEntries extra;
    nn::load_checkpoint(checkpoint, *task.model, opt, *task.gen, &extra);
    const auto it = std::find_if(extra.begin(), extra.end(), [](const auto& e) { return e.first == "loop"; });
    if (it == extra.end()) throw std::runtime_error(checkpoint + ": no training-loop state");
    state = LoopState::from_text(nn::npy_to_text(it->second, checkpoint), checkpoint);
    nn::StateDict averages;
    for (const auto& [name, a] : extra)
      if (name.rfind(average_prefix, 0) == 0)
        averages[name.substr(average_prefix.size())] = nn::npy_to_array(a, checkpoint + ": '" + name + "'");
    if (average.has_value() != !averages.empty())
      throw std::runtime_error(checkpoint + (average ? ": holds no weight averages; resume without --average"
                                                     : ": holds weight averages; resume with the same --average"));
    if (average) average->load_state(averages);
    if (root)
      std::printf("resuming from %s: epoch %zu, step %zu, best dev %s %.4f\n", checkpoint.c_str(), state.epoch + 1,
                  state.step_in_epoch, o.metric_name.c_str(), state.best);
  }
  if (parallel) {
    // The ranks must start from the same place: the same model shapes, batches and (resumed)
    // step.  A stale checkpoint or other data on one machine would otherwise hang them later.
    std::ostringstream start;
    for (const auto& [name, p] : task.model->named_parameters()) start << name << shape_str(p.shape()) << ' ';
    start << per_epoch << ' ' << opt.steps() << ' ' << state.to_text();
    nn::check_ranks_agree(start.str(), group, "model, batches and training state");
    nn::broadcast_parameters(params, group);  // one model, whatever each rank built or read
    // Each rank draws its own dropout masks: a stream forked from rank 0's by the rank number,
    // so a run is reproducible for a given rank count (the checkpoint holds rank 0's stream).
    if (!root) task.gen->seed_with(task.gen->next_u64() ^ (0x9E3779B97F4A7C15ull * group.rank()));
    if (root) {
      std::size_t bytes = 0;
      for (const Tensor& p : params) bytes += p.numel() * (p.dtype() == Dtype::f32 ? 4 : 8);
      std::printf("data-parallel: %zu ranks, each with %zu thread(s) and its share of every batch; %.1f MB of "
                  "gradients summed a step\n", group.size(), num_threads(), bytes / 1e6);
    }
  }
  const auto save_checkpoint = [&] {
    if (!root) return;
    nn::NpzEntries extra{{"loop", nn::text_to_npy(state.to_text())}};
    if (average)
      for (const auto& [name, a] : average->state()) extra.emplace_back(average_prefix + name, nn::to_npy(a));
    nn::save_checkpoint(checkpoint, *task.model, opt, *task.gen, opt.steps(), extra);
  };

  JsonLog log(root ? o.log : "");
  const auto start = Clock::now();
  auto last_log = start;
  const double seconds_before = state.seconds;
  const auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(Clock::now() - start).count(); };
  const bool limited = o.time_limit_minutes > 0;
  bool out_of_time = false;
  std::vector<double> losses;
  Tape tape;
  std::optional<nn::GradientReducer> reducer;  // sums gradients across ranks, overlapping backward
  if (parallel && o.overlap) reducer.emplace(params, group, o.bucket_bytes);
  std::optional<DetectAnomaly> detect_anomaly;  // an AnomalyError stops training, nothing is saved
  if (o.detect_anomaly) detect_anomaly.emplace();
  while (state.epoch < o.epochs && !out_of_time) {
    const auto batches = task.batches(state.epoch);
    Progress progress(state.epoch + 1, o.epochs, batches.size(), root);
    task.model->train();
    double loss_sum = 0;
    std::size_t loss_count = 0;
    for (std::size_t i = state.step_in_epoch; i < batches.size(); ++i) {
      // Stop on a signal to any rank, or when rank 0's clock says the time is up.
      double stop[2] = {double(g_stop), double(root && limited && elapsed() > o.time_limit_minutes * 60)};
      group.allreduce_sum(std::span<double>(stop));
      if (stop[0] > 0) {
        progress.finish();
        state.step_in_epoch = i;
        state.seconds = elapsed();
        save_checkpoint();
        if (root) std::printf("interrupted: saved %s; continue with --resume\n", checkpoint.c_str());
        std::fflush(stdout);
        log.write({{"event", "interrupted"}, {"epoch", state.epoch + 1}, {"step", i}});
        return {state.history, true, losses};
      }
      if (stop[1] > 0) {
        out_of_time = true;
        break;
      }
      opt.set_lr(schedule.lr(opt.steps() + 1));
      tape.clear();
      const auto& batch = batches[i];
      const auto mine = parallel ? nn::shard(batch, group.rank(), group.size()) : batch;
      double loss = 0;
      if (reducer) reducer->watch(tape);
      {
        if (task.step) *task.step = opt.steps();
        TapeGuard recording(tape);
        Tensor l;
        if (task.share_loss) {
          l = task.share_loss(mine, batch);
        } else if (!mine.empty()) {  // a batch with fewer examples than ranks leaves some with nothing to do
          l = task.loss(mine);
          if (parallel) {  // this rank's share of the whole batch's mean
            l = l * (task.weight ? task.weight(mine) / task.weight(batch) : double(mine.size()) / batch.size());
          }
        }
        if (l.defined()) {
          l.backward();
          loss = l.item();
        }
      }
      if (reducer) {
        reducer->finish(std::span<double>(&loss, 1));  // the whole batch's gradients and loss
      } else {
        nn::allreduce_gradients(params, group, std::span<double>(&loss, 1), o.bucket_bytes);
      }
      if (!std::isfinite(loss))
        throw std::runtime_error("the training loss is " + std::to_string(loss) + " at step " + std::to_string(opt.steps() + 1) +
                                 "; stopped without saving over the last good model" +
                                 (o.detect_anomaly ? "" : " (rerun with --detect-anomaly to find the op that made it)"));
      if (o.clip > 0) nn::clip_grad_norm(params, o.clip);
      opt.step();
      opt.zero_grad();
      if (average) average->update();
      if (parallel && o.check_ranks_every > 0 && opt.steps() % o.check_ranks_every == 0)
        nn::check_parameters_agree(params, group, opt.steps());
      losses.push_back(loss);
      loss_sum += loss;
      ++loss_count;
      std::size_t tokens = 0;
      for (std::size_t s : batch) tokens += (*task.lengths)[s];
      progress.update(i, loss_sum / loss_count, tokens);
      if (std::chrono::duration<double>(Clock::now() - last_log).count() >= 30) {
        last_log = Clock::now();
        log.write({{"event", "step"}, {"epoch", state.epoch + 1}, {"step", i + 1}, {"steps", batches.size()},
                   {"loss", loss_sum / loss_count}, {"lr", opt.lr()}, {"seconds", elapsed()}});
      }
    }
    progress.finish();
    nn::check_parameters_agree(params, group, opt.steps());
    task.model->eval();
    {
      AveragedWeights averaged(average ? &*average : nullptr);  // evaluate (and save) the averages
      NoGradGuard no_grad;
      double metric = 0;
      if (root) metric = task.evaluate();
      group.broadcast(std::span<double>(&metric, 1));  // the others wait here, and keep the same history
      state.history.push_back({state.epoch + 1, loss_count ? loss_sum / loss_count : 0.0, metric, elapsed()});
      const bool best = metric > state.best;
      if (root) {
        std::printf("epoch %zu: train loss %.4f, dev %s %.2f%s%s  [%s]\n", state.epoch + 1,
                    state.history.back().train_loss, o.metric_name.c_str(), 100 * metric, o.metric_percent ? "%" : "",
                    best ? (", best so far: saved " + o.out).c_str() : "", clock_text(elapsed()).c_str());
        std::fflush(stdout);  // a line at a time into a pipe too (mpirun, a log)
        log.write({{"event", "epoch"}, {"epoch", state.epoch + 1}, {"train_loss", state.history.back().train_loss},
                   {"dev_" + o.metric_name, metric}, {"best", best}, {"seconds", elapsed()}});
      }
      if (best) {
        state.best = metric;
        if (root) task.save_model(o.out);
      }
    }  // back to the weights being trained
    if (root && !o.plot.empty()) write_curve_svg(o.plot, state.history, o.metric_name, o.metric_percent);
    ++state.epoch;
    state.step_in_epoch = 0;
    state.seconds = elapsed();
    save_checkpoint();
  }
  if (out_of_time && root) std::printf("time limit of %.1f minutes reached\n", o.time_limit_minutes);
  return {state.history, false, losses};
}

}  // namespace tg::nn

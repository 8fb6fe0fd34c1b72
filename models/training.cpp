#include "training.hpp"

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

#include "../autograd/tape.hpp"
#include "../nn/average.hpp"
#include "../nn/checkpoint.hpp"
#include "../nn/optim.hpp"
#include "../nn/schedule.hpp"
#include "batching.hpp"
#include "plots.hpp"

namespace tg::models {

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
  Progress(std::size_t epoch, std::size_t epochs, std::size_t steps)
      : epoch_(epoch), epochs_(epochs), steps_(steps), tty_(isatty(fileno(stdout))), start_(Clock::now()), last_(start_) {}

  void update(std::size_t step, double loss, std::size_t tokens) {
    tokens_ += tokens;
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
    if (tty_) std::printf("\n");
  }

 private:
  std::size_t epoch_, epochs_, steps_, tokens_ = 0;
  bool tty_;
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

TrainResult train(Task& task, const TrainOptions& o) {
  g_stop = 0;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  nn::AdamW opt(task.model->named_parameters(), {.lr = o.lr, .weight_decay = 0.01});
  const std::size_t per_epoch = task.batches(0).size();
  const std::size_t total = std::max<std::size_t>(per_epoch * o.epochs, o.warmup + 1);
  const nn::WarmupCosine schedule(o.lr, o.warmup, total, o.lr * 0.05);
  const std::string checkpoint = o.out + ".ckpt";

  std::optional<nn::ParameterAverage> average;
  if (o.average > 0) average.emplace(task.model->named_parameters(), o.average);
  const std::string average_prefix = "average/";

  LoopState state;
  if (o.resume) {
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
    std::printf("resuming from %s: epoch %zu, step %zu, best dev %s %.4f\n", checkpoint.c_str(), state.epoch + 1,
                state.step_in_epoch, o.metric_name.c_str(), state.best);
  }
  const auto save_checkpoint = [&] {
    nn::NpzEntries extra{{"loop", nn::text_to_npy(state.to_text())}};
    if (average)
      for (const auto& [name, a] : average->state()) extra.emplace_back(average_prefix + name, nn::to_npy(a));
    nn::save_checkpoint(checkpoint, *task.model, opt, *task.gen, opt.steps(), extra);
  };

  JsonLog log(o.log);
  const auto start = Clock::now();
  auto last_log = start;
  const double seconds_before = state.seconds;
  const auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(Clock::now() - start).count(); };
  const bool limited = o.time_limit_minutes > 0;
  bool out_of_time = false;
  Tape tape;
  std::optional<DetectAnomaly> detect_anomaly;  // an AnomalyError stops training, nothing is saved
  if (o.detect_anomaly) detect_anomaly.emplace();
  while (state.epoch < o.epochs && !out_of_time) {
    const auto batches = task.batches(state.epoch);
    Progress progress(state.epoch + 1, o.epochs, batches.size());
    task.model->train();
    double loss_sum = 0;
    std::size_t loss_count = 0;
    for (std::size_t i = state.step_in_epoch; i < batches.size(); ++i) {
      if (g_stop) {
        progress.finish();
        state.step_in_epoch = i;
        state.seconds = elapsed();
        save_checkpoint();
        std::printf("interrupted: saved %s; continue with --resume\n", checkpoint.c_str());
        log.write({{"event", "interrupted"}, {"epoch", state.epoch + 1}, {"step", i}});
        return {state.history, true};
      }
      if (limited && elapsed() > o.time_limit_minutes * 60) {
        out_of_time = true;
        break;
      }
      opt.set_lr(schedule.lr(opt.steps() + 1));
      tape.clear();
      double loss = 0;
      {
        if (task.step) *task.step = opt.steps();
        TapeGuard recording(tape);
        Tensor l = task.loss(batches[i]);
        l.backward();
        loss = l.item();
      }
      if (!std::isfinite(loss))
        throw std::runtime_error("the training loss is " + std::to_string(loss) + " at step " + std::to_string(opt.steps() + 1) +
                                 "; stopped without saving over the last good model" +
                                 (o.detect_anomaly ? "" : " (rerun with --detect-anomaly to find the op that made it)"));
      if (o.clip > 0) nn::clip_grad_norm(task.model->parameters(), o.clip);
      opt.step();
      opt.zero_grad();
      if (average) average->update();
      loss_sum += loss;
      ++loss_count;
      std::size_t tokens = 0;
      for (std::size_t s : batches[i]) tokens += (*task.lengths)[s];
      progress.update(i, loss_sum / loss_count, tokens);
      if (std::chrono::duration<double>(Clock::now() - last_log).count() >= 30) {
        last_log = Clock::now();
        log.write({{"event", "step"}, {"epoch", state.epoch + 1}, {"step", i + 1}, {"steps", batches.size()},
                   {"loss", loss_sum / loss_count}, {"lr", opt.lr()}, {"seconds", elapsed()}});
      }
    }
    progress.finish();
    task.model->eval();
    double metric;
    bool best;
    {
      AveragedWeights averaged(average ? &*average : nullptr);  // evaluate (and save) the averages
      NoGradGuard no_grad;
      metric = task.evaluate();
      state.history.push_back({state.epoch + 1, loss_count ? loss_sum / loss_count : 0.0, metric, elapsed()});
      best = metric > state.best;
      std::printf("epoch %zu: train loss %.4f, dev %s %.2f%s%s  [%s]\n", state.epoch + 1,
                  state.history.back().train_loss, o.metric_name.c_str(), 100 * metric, o.metric_percent ? "%" : "",
                  best ? (", best so far: saved " + o.out).c_str() : "", clock_text(elapsed()).c_str());
      log.write({{"event", "epoch"}, {"epoch", state.epoch + 1}, {"train_loss", state.history.back().train_loss},
                 {"dev_" + o.metric_name, metric}, {"best", best}, {"seconds", elapsed()}});
      if (best) {
        state.best = metric;
        task.save_model(o.out);
      }
    }  // back to the weights being trained
    if (!o.plot.empty()) write_curve_svg(o.plot, state.history, o.metric_name, o.metric_percent);
    ++state.epoch;
    state.step_in_epoch = 0;
    state.seconds = elapsed();
    save_checkpoint();
  }
  if (out_of_time) std::printf("time limit of %.1f minutes reached\n", o.time_limit_minutes);
  return {state.history, false};
}

std::function<std::vector<std::vector<std::size_t>>(std::size_t)> shuffled_batches(std::vector<std::size_t> lengths,
                                                                                  std::size_t batch_tokens,
                                                                                  std::size_t max_batch, std::uint64_t seed) {
  return [lengths = std::move(lengths), batch_tokens, max_batch, seed](std::size_t epoch) {
    Generator shuffle(seed * 1000003 + epoch);
    return make_batches(lengths, batch_tokens, max_batch, &shuffle);
  };
}

// ---- ensembles ------------------------------------------------------------------------------

MemberOrders::MemberOrders(std::function<Batches(std::size_t)> make, std::size_t members, std::uint64_t seed)
    : make_(std::move(make)), members_(members), seed_(seed) {}

const MemberOrders::Batches& MemberOrders::epoch(std::size_t e) {
  if (e != epoch_) {
    batches_ = make_(e);
    orders_.assign(members_, {});
    for (std::size_t k = 0; k < members_; ++k) {
      orders_[k].resize(batches_.size());
      std::iota(orders_[k].begin(), orders_[k].end(), 0);
      if (k == 0) continue;
      Generator shuffle(seed_ * 1000003 + e + 7919 * k);
      for (std::size_t i = orders_[k].size(); i > 1; --i) std::swap(orders_[k][i - 1], orders_[k][shuffle.below(i)]);
    }
    step_.clear();
    for (std::size_t i = 0; i < batches_.size(); ++i)
      if (!batches_[i].empty()) step_[batches_[i][0]] = i;  // each example is in one batch an epoch
    epoch_ = e;
  }
  return batches_;
}

const std::vector<std::size_t>& MemberOrders::member(const std::vector<std::size_t>& batch, std::size_t k) const {
  if (k == 0 || batch.empty()) return batch;
  const auto it = step_.find(batch[0]);
  if (it == step_.end()) throw std::logic_error("MemberOrders: a batch that is not in the current epoch");
  return batches_[orders_.at(k)[it->second]];
}

}  // namespace tg::models

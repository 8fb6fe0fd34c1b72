#include "loop.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>

#include "../../autograd/ops.hpp"
#include "../../autograd/runtime/parallel.hpp"
#include "../../autograd/shape.hpp"
#include "../../autograd/tape.hpp"
#include "average.hpp"
#include "checkpoint.hpp"
#include "curve.hpp"
#include "distributed.hpp"
#include "optim.hpp"
#include "progress.hpp"
#include "schedule.hpp"

namespace tg::nn {

namespace {

using Clock = std::chrono::steady_clock;
using Batch = std::vector<std::size_t>;

// The JSON-lines log: one object a line, appended (a resumed run continues the same log).
// An empty path: no log.
class JsonLog {
 public:
  explicit JsonLog(const std::string& path) {
    if (path.empty()) return;
    out_.open(path, std::ios::app);
    if (!out_)
      throw std::runtime_error(path + ": cannot open the log for writing: " + std::strerror(errno));
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
    for (const auto& r : history)
      os << r.epoch << ' ' << r.train_loss << ' ' << r.dev_metric << ' ' << r.seconds << '\n';
    return os.str();
  }

  static LoopState from_text(const std::string& text, const std::string& where) {
    LoopState s;
    std::istringstream in(text);
    if (!(in >> s.epoch >> s.step_in_epoch >> s.best >> s.seconds))
      throw std::runtime_error(where + ": bad training state");
    for (EpochRecord r; in >> r.epoch >> r.train_loss >> r.dev_metric >> r.seconds;)
      s.history.push_back(r);
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

// Why an epoch's steps ended before its last batch.
enum class Stop { none, requested, out_of_time };

// One call of train(): the optimizer, the schedule, the weight averages and the loop's state,
// and the steps train() is made of, in the order it calls them.
class Trainer {
 public:
  Trainer(Task& task, const TrainOptions& options);
  void resume();              // model, optimizer, generator, averages and loop state from OUT.ckpt
  void agree_across_ranks();  // data-parallel: one start, one model, each rank its own dropout
  void begin();               // the clock, the log, the tape's hooks
  bool epochs_left() const { return state_.epoch < o_.epochs; }
  Stop run_epoch();           // the current epoch's steps, from where the state says
  void end_epoch();           // evaluate, keep the best model, plot, checkpoint
  TrainResult interrupted();  // after Stop::requested: checkpoint, and say so
  TrainResult out_of_time();  // after Stop::out_of_time and its end_epoch()
  TrainResult finished() const { return {state_.history, false, losses_}; }

 private:
  Stop agree_to_stop() const;
  double step(const Batch& batch);
  double backward_share(const Batch& batch);
  Tensor loss_of_share(const Batch& mine, const Batch& batch) const;
  void record_step(std::size_t i, const std::vector<Batch>& batches, double loss,
                   Progress& progress);
  void evaluate_and_keep_best();
  void save_checkpoint() const;
  double elapsed() const {
    return seconds_before_ + std::chrono::duration<double>(Clock::now() - start_).count();
  }

  static constexpr const char* kAveragePrefix =
      "average/";  // the averages' names in the checkpoint
  Task& task_;
  const TrainOptions& o_;
  const ProcessGroup& group_;
  const bool root_, parallel_;
  const std::vector<Tensor> params_;
  AdamW opt_;
  const std::size_t per_epoch_;
  const WarmupCosine schedule_;
  const std::string checkpoint_;
  std::optional<ParameterAverage> average_;
  LoopState state_;
  std::optional<JsonLog> log_;
  Clock::time_point start_, last_log_;
  double seconds_before_ = 0;  // of the runs this one resumes
  double epoch_loss_ = 0;      // the sum of this epoch's step losses
  std::size_t epoch_steps_ = 0;
  std::vector<double> losses_;
  Tape tape_;
  std::optional<GradientReducer> reducer_;  // sums gradients across ranks, overlapping backward
  std::optional<DetectAnomaly> detect_anomaly_;  // an AnomalyError stops training, nothing is saved
};

}  // namespace

// Data parallelism in the loop: every rank walks the same global batches and computes the loss
// of its shard; the gradients (and the losses) are summed before the step, so every rank takes
// the same step and the parameters stay the same on all of them (checked every
// check_ranks_every steps).  Decisions that one rank could make alone (stop on request, stop
// for time) are agreed on at the start of a step; rank 0 alone evaluates and writes.
TrainResult train(Task& task, const TrainOptions& options) {
  Trainer trainer(task, options);
  if (options.resume) trainer.resume();
  trainer.agree_across_ranks();
  trainer.begin();
  while (trainer.epochs_left()) {
    const Stop stop = trainer.run_epoch();
    if (stop == Stop::requested) return trainer.interrupted();
    trainer.end_epoch();  // a run out of time ends its epoch early, and evaluates and saves it
    if (stop == Stop::out_of_time) return trainer.out_of_time();
  }
  return trainer.finished();
}

namespace {

Trainer::Trainer(Task& task, const TrainOptions& o)
    : task_(task),
      o_(o),
      group_(task.group ? *task.group : ProcessGroup::world()),
      root_(group_.is_root()),
      parallel_(group_.size() > 1),
      params_(task.model->parameters()),
      opt_(task.model->named_parameters(), {.lr = o.lr,
                                            .beta1 = o.beta1,
                                            .beta2 = o.beta2,
                                            .weight_decay = o.weight_decay,
                                            .decay_vectors = o.decay_vectors}),
      per_epoch_(task.batches(0).size()),
      // The cosine spans the planned epochs (at least the warm-up), whatever --minutes cuts off.
      schedule_(o.lr, o.warmup, std::max<std::size_t>(per_epoch_ * o.epochs, o.warmup + 1),
                o.lr * o.lr_floor),
      checkpoint_(o.out + ".ckpt") {
  if (o.average > 0) average_.emplace(task.model->named_parameters(), o.average);
}

// Every rank reads the checkpoint (on a shared file system across machines).
void Trainer::resume() {
  NpzEntries extra;
  load_checkpoint(checkpoint_, *task_.model, opt_, *task_.gen, &extra);
  const auto it =
      std::find_if(extra.begin(), extra.end(), [](const auto& e) { return e.first == "loop"; });
  if (it == extra.end()) throw std::runtime_error(checkpoint_ + ": no training-loop state");
  state_ = LoopState::from_text(npy_to_text(it->second, checkpoint_), checkpoint_);
  const std::string prefix = kAveragePrefix;
  StateDict averages;
  for (const auto& [name, a] : extra)
    if (name.rfind(prefix, 0) == 0)
      averages[name.substr(prefix.size())] = npy_to_array(a, checkpoint_ + ": '" + name + "'");
  if (average_.has_value() != !averages.empty())
    throw std::runtime_error(
        checkpoint_ + (average_ ? ": holds no weight averages; resume without --average"
                                : ": holds weight averages; resume with the same --average"));
  if (average_) average_->load_state(averages);
  if (root_)
    std::printf("resuming from %s: epoch %zu, step %zu, best dev %s %.4f\n", checkpoint_.c_str(),
                state_.epoch + 1, state_.step_in_epoch, o_.metric_name.c_str(), state_.best);
}

void Trainer::agree_across_ranks() {
  if (!parallel_) return;
  // The ranks must start from the same place: the same model shapes, batches and (resumed)
  // step.  A stale checkpoint or other data on one machine would otherwise hang them later.
  std::ostringstream start;
  for (const auto& [name, p] : task_.model->named_parameters())
    start << name << shape_str(p.shape()) << ' ';
  start << per_epoch_ << ' ' << opt_.steps() << ' ' << state_.to_text();
  check_ranks_agree(start.str(), group_, "model, batches and training state");
  broadcast_parameters(params_, group_);  // one model, whatever each rank built or read
  // Each rank draws its own dropout masks: a stream forked from rank 0's by the rank number,
  // so a run is reproducible for a given rank count (the checkpoint holds rank 0's stream).
  if (!root_) task_.gen->seed_with(task_.gen->next_u64() ^ (0x9E3779B97F4A7C15ull * group_.rank()));
  if (root_) {
    std::size_t bytes = 0;
    for (const Tensor& p : params_) bytes += p.numel() * dtype_size(p.dtype());
    std::printf(
        "data-parallel: %zu ranks, each with %zu thread(s) and its share of every batch; %.1f MB "
        "of "
        "gradients summed a step\n",
        group_.size(), num_threads(), bytes / 1e6);
  }
}

void Trainer::begin() {
  log_.emplace(root_ ? o_.log : "");
  start_ = last_log_ = Clock::now();
  seconds_before_ = state_.seconds;
  if (parallel_ && o_.overlap) reducer_.emplace(params_, group_, o_.bucket_bytes);
  if (o_.detect_anomaly) detect_anomaly_.emplace();
  task_.model->set_checkpointing(o_.checkpoint_blocks);
}

Stop Trainer::run_epoch() {
  const std::vector<Batch> batches = task_.batches(state_.epoch);
  Progress progress(state_.epoch + 1, o_.epochs, batches.size(), root_);
  task_.model->train();
  epoch_loss_ = 0, epoch_steps_ = 0;
  for (std::size_t i = state_.step_in_epoch; i < batches.size(); ++i) {
    if (const Stop stop = agree_to_stop(); stop != Stop::none) {
      progress.finish();
      state_.step_in_epoch = i;
      return stop;
    }
    record_step(i, batches, step(batches[i]), progress);
  }
  progress.finish();
  return Stop::none;
}

// Stop on a request to any rank, or when rank 0's clock says the time is up.
Stop Trainer::agree_to_stop() const {
  const bool requested = task_.stop && task_.stop->load();
  const bool limited = o_.time_limit_minutes > 0;
  double stop[2] = {double(requested),
                    double(root_ && limited && elapsed() > o_.time_limit_minutes * 60)};
  group_.allreduce_sum(std::span<double>(stop));
  return stop[0] > 0 ? Stop::requested : stop[1] > 0 ? Stop::out_of_time : Stop::none;
}

// One optimizer step on a global batch; returns the whole batch's loss (summed across ranks).
double Trainer::step(const Batch& batch) {
  opt_.set_lr(schedule_.lr(opt_.steps() + 1));
  tape_.clear();
  double loss = backward_share(batch);
  if (reducer_) {
    reducer_->finish(std::span<double>(&loss, 1));  // the whole batch's gradients and loss
  } else {
    allreduce_gradients(params_, group_, std::span<double>(&loss, 1), o_.bucket_bytes);
  }
  if (!std::isfinite(loss))
    throw std::runtime_error(
        "the training loss is " + std::to_string(loss) + " at step " +
        std::to_string(opt_.steps() + 1) + "; stopped without saving over the last good model" +
        (o_.detect_anomaly ? "" : " (rerun with --detect-anomaly to find the op that made it)"));
  if (o_.clip > 0) clip_grad_norm(params_, o_.clip);
  opt_.step();
  opt_.zero_grad();
  if (average_) average_->update();
  if (parallel_ && o_.check_ranks_every > 0 && opt_.steps() % o_.check_ranks_every == 0)
    check_parameters_agree(params_, group_, opt_.steps());
  return loss;
}

// Forward and backward of this rank's share of the batch; returns its loss (0 for none).
double Trainer::backward_share(const Batch& batch) {
  const Batch mine = parallel_ ? shard(batch, group_.rank(), group_.size()) : batch;
  if (reducer_) reducer_->watch(tape_);
  if (task_.step) *task_.step = opt_.steps();
  TapeGuard recording(tape_);
  const Tensor loss = loss_of_share(mine, batch);
  if (!loss.defined()) return 0;
  loss.backward();
  return loss.item();
}

// This rank's part of the batch's loss; undefined when it has nothing to add.
Tensor Trainer::loss_of_share(const Batch& mine, const Batch& batch) const {
  if (task_.share_loss) return task_.share_loss(mine, batch);
  if (mine.empty())
    return {};  // a batch with fewer examples than ranks leaves some with nothing to do
  const Tensor loss = task_.loss(mine);
  if (!parallel_) return loss;
  // this rank's share of the whole batch's mean
  return loss * (task_.weight ? task_.weight(mine) / task_.weight(batch)
                              : double(mine.size()) / batch.size());
}

// After step i of the epoch: the losses, the progress line, and a log line every 30 s.
void Trainer::record_step(std::size_t i, const std::vector<Batch>& batches, double loss,
                          Progress& progress) {
  losses_.push_back(loss);
  epoch_loss_ += loss;
  ++epoch_steps_;
  std::size_t tokens = 0;
  for (std::size_t s : batches[i]) tokens += (*task_.lengths)[s];
  progress.update(i, epoch_loss_ / epoch_steps_, tokens);
  if (std::chrono::duration<double>(Clock::now() - last_log_).count() < 30) return;
  last_log_ = Clock::now();
  log_->write({{"event", "step"},
               {"epoch", state_.epoch + 1},
               {"step", i + 1},
               {"steps", batches.size()},
               {"loss", epoch_loss_ / epoch_steps_},
               {"lr", opt_.lr()},
               {"seconds", elapsed()}});
}

void Trainer::end_epoch() {
  check_parameters_agree(params_, group_, opt_.steps());
  task_.model->eval();
  evaluate_and_keep_best();
  if (root_ && !o_.plot.empty())
    write_curve_svg(o_.plot, state_.history, o_.metric_name,
                    {.percent = o_.metric_percent && !o_.metric_is_loss,
                     .scale = o_.metric_is_loss ? 1.0 : 100.0});
  ++state_.epoch;
  state_.step_in_epoch = 0;
  state_.seconds = elapsed();
  save_checkpoint();
}

// The dev metric of the weights evaluated (the averages, if kept), the epoch's line, and the
// model file when the metric is the best so far.
void Trainer::evaluate_and_keep_best() {
  AveragedWeights averaged(average_ ? &*average_
                                    : nullptr);  // back to the weights being trained at the end
  NoGradGuard no_grad;
  double metric = 0;
  if (root_) metric = task_.evaluate();
  group_.broadcast(
      std::span<double>(&metric, 1));  // the others wait here, and keep the same history
  state_.history.push_back(
      {state_.epoch + 1, epoch_steps_ ? epoch_loss_ / epoch_steps_ : 0.0, metric, elapsed()});
  // A loss has no floor below which `best` could start: the first epoch is the best so far.
  const bool best =
      o_.metric_is_loss ? state_.history.size() == 1 || metric < state_.best : metric > state_.best;
  if (root_) {
    char shown[64];
    if (o_.metric_is_loss) std::snprintf(shown, sizeof shown, "%.4f", metric);
    else std::snprintf(shown, sizeof shown, "%.2f%s", 100 * metric, o_.metric_percent ? "%" : "");
    std::printf("epoch %zu: train loss %.4f, dev %s %s%s  [%s]\n", state_.epoch + 1,
                state_.history.back().train_loss, o_.metric_name.c_str(), shown,
                best ? (", best so far: saved " + o_.out).c_str() : "",
                clock_text(elapsed()).c_str());
    std::fflush(stdout);  // a line at a time into a pipe too (mpirun, a log)
    log_->write({{"event", "epoch"},
                 {"epoch", state_.epoch + 1},
                 {"train_loss", state_.history.back().train_loss},
                 {"dev_" + o_.metric_name, metric},
                 {"best", best},
                 {"seconds", elapsed()}});
  }
  if (best) {
    state_.best = metric;
    if (root_) task_.save_model(o_.out);
  }
}

TrainResult Trainer::interrupted() {
  state_.seconds = elapsed();
  save_checkpoint();
  if (root_) std::printf("interrupted: saved %s; continue with --resume\n", checkpoint_.c_str());
  std::fflush(stdout);
  log_->write(
      {{"event", "interrupted"}, {"epoch", state_.epoch + 1}, {"step", state_.step_in_epoch}});
  return {state_.history, true, losses_};
}

TrainResult Trainer::out_of_time() {
  if (root_) std::printf("time limit of %.1f minutes reached\n", o_.time_limit_minutes);
  return finished();
}

// Rank 0 writes it: the model, optimizer and generator, the loop's state, the averages.
void Trainer::save_checkpoint() const {
  if (!root_) return;
  NpzEntries extra{{"loop", text_to_npy(state_.to_text())}};
  if (average_)
    for (const auto& [name, a] : average_->state())
      extra.emplace_back(kAveragePrefix + name, to_npy(a));
  nn::save_checkpoint(checkpoint_, *task_.model, opt_, *task_.gen, opt_.steps(), extra);
}

}  // namespace

}  // namespace tg::nn

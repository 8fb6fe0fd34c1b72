// The training loop every program here uses, for any model: AdamW with warm-up and cosine
// decay, gradient clipping, a progress line, evaluation after each epoch, the best model on dev
// saved as a model file, a checkpoint after each epoch and when asked to stop, exact resume,
// time and epoch limits, an optional moving average of the weights, a JSON-lines log and an SVG
// curve; and, when started by mpirun, data-parallel training across the ranks
// (nn/training/distributed.hpp).  The library installs no signal handler: a program that wants
// Ctrl-C to save a checkpoint sets Task::stop from its own (examples/programs/cli.hpp does).
//
//   nn::Task task;
//   task.model = &net;  task.gen = &gen;
//   task.batches = [&](std::size_t epoch) { return make_batches(lengths, 2000, 256,
//   &shuffle_of(epoch)); }; task.loss = [&](const std::vector<std::size_t>& batch) { return
//   net.loss(...); }; task.lengths = &lengths; task.evaluate = [&] { return accuracy(net, dev); };
//   task.save_model = [&](const std::string& path) { bundle.save(path); };
//   task.stop = &stop_requested;  // a std::atomic<bool> your SIGINT handler sets (optional)
//   const TrainResult r = nn::train(task, {.epochs = 10, .out = "model.npz"});
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "../../autograd/runtime/generator.hpp"
#include "../../autograd/tensor.hpp"
#include "../module.hpp"
#include "curve.hpp"
#include "distributed.hpp"

namespace tg::nn {

struct TrainOptions {
  std::size_t epochs = 10;
  double time_limit_minutes = 0;  // 0: no limit
  double lr = 1e-3;
  std::size_t warmup = 200;
  double lr_floor = 0.05;      // the cosine decay ends at lr_floor * lr, not at 0
  double weight_decay = 0.01;  // AdamW's decoupled weight decay
  bool decay_vectors = true;   // false: only matrices and tables decay (AdamOptions)
  double beta1 = 0.9;          // AdamW's decay of its mean of gradients
  double beta2 = 0.999;        // and of its mean of squared gradients (nanoGPT's small runs: 0.99)
  double clip = 1.0;
  std::uint64_t seed = 1;
  std::string out = "model.npz";  // the best model on dev; out + ".ckpt" the training checkpoint
  bool resume = false;
  std::string plot;  // SVG training curve, written after each epoch
  std::string metric_name = "accuracy";
  bool metric_percent = true;  // shown as 100 * metric with a % sign (BLEU: 100 * metric, no sign)
  // The metric is a loss (a language model's dev loss in nats per token): lower is better, and
  // it is shown as it is, not as a percentage.
  bool metric_is_loss = false;
  // > 0: evaluate and save an exponential moving average of the weights with this decay
  // (nn/training/average.hpp) instead of the last step's weights.
  double average = 0;
  bool detect_anomaly = false;  // check every op for NaN/inf and name the first (slower)
  // Activation checkpointing of the model's blocks (Module::set_checkpointing): less memory for
  // one more forward pass of the blocks, the same gradients to the bit.
  bool checkpoint_blocks = false;
  // A JSON-lines log of training ("" for none): an object a line, {"event": "step", ...} every
  // 30 s of training and {"event": "epoch", ...} after each epoch, for plotting or monitoring.
  std::string log;
  // Data-parallel training: compare a checksum of the parameters across ranks every this many
  // steps (0: only after each epoch), and fail if they differ.
  std::size_t check_ranks_every = 100;
  // Data-parallel training: start summing each bucket of gradients while backward still runs
  // (nn::GradientReducer) instead of after it.  It helps where MPI moves data in the background;
  // with Open MPI over TCP or shared memory it did not here (docs/distributed.md), so it is off.
  bool overlap = false;
  std::size_t bucket_bytes = std::size_t{4} << 20;  // gradients summed per allreduce call, about
};

// What a program hands to the loop.
struct Task {
  nn::Module* model = nullptr;
  Generator* gen = nullptr;  // the one the model's dropout draws from (saved in checkpoints)
  // The batches of an epoch, as indices into the program's data, in training order; must be a
  // function of the epoch number only (so a resumed epoch sees the same batches).
  std::function<std::vector<std::vector<std::size_t>>(std::size_t epoch)> batches;
  std::function<Tensor(const std::vector<std::size_t>& batch)> loss;
  // What the loss of a batch is a mean over (its real tokens, say), for data-parallel training:
  // each rank's loss is weighted by its share, weight(its examples) / weight(the whole batch),
  // so the summed gradients are those of the whole batch's mean.  Unset: the number of examples.
  std::function<double(const std::vector<std::size_t>& batch)> weight;
  // Instead of loss and weight, for a loss that weighs its own parts (an ensemble whose members
  // walk batches of their own): this rank's part of the batch's loss, given its examples and
  // the whole batch, such that the parts summed over the ranks are the batch's loss.  An
  // undefined tensor: nothing to add on this rank.
  std::function<Tensor(const std::vector<std::size_t>& mine, const std::vector<std::size_t>& batch)>
      share_loss;
  const std::vector<std::size_t>* lengths = nullptr;  // of every sentence (for tokens/s)
  // If set, the loop writes here the number of optimizer steps taken so far (a resumed run
  // included) before each call of `loss`: for schedules inside the loss.
  std::size_t* step = nullptr;
  // If set, the loop reads it at the start of every step: once true (set by a signal handler,
  // say), it saves a checkpoint and returns with `interrupted`.  Across ranks, a request to any
  // rank stops them all at the same step.
  const std::atomic<bool>* stop = nullptr;
  std::function<double()> evaluate;  // dev metric, higher is better (TrainOptions::metric_is_loss:
                                     // lower)
  std::function<void(const std::string& path)> save_model;  // the model file (with vocabularies)
  // The ranks training together; nullptr: nn::ProcessGroup::world(), every rank of the launch
  // (this process alone without mpirun).  Each rank computes the loss of its shard of every
  // batch; rank 0 alone evaluates, prints, logs, plots and writes files.
  const nn::ProcessGroup* group = nullptr;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  bool interrupted = false;    // stopped by Task::stop, after saving the checkpoint
  std::vector<double> losses;  // the loss of every step this run took (of the whole batch)
};

// Trains with AdamW (linear warm-up, then cosine decay over the planned epochs).  Task::stop
// saves a checkpoint and returns with `interrupted` set (a program then exits with 130);
// TrainOptions::resume continues from the checkpoint exactly.
TrainResult train(Task& task, const TrainOptions& options);

}  // namespace tg::nn

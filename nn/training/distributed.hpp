// Data-parallel training over MPI: the processes (ranks) of one `mpirun` each hold the whole
// model, each computes the gradients of its share of every global batch, and the gradients are
// summed across ranks before every rank takes the same optimizer step.  The training loop
// (nn/training/loop.hpp) does all of this for a program; the pieces are here for a loop of your
// own.
//
//   mpirun -np 4 build/examples/tapegrad-tagger train --data data/ud-ewt     (README: "Across
//   machines")
//
//   const nn::ProcessGroup& group = nn::ProcessGroup::world();
//   auto mine = nn::shard(batch, group.rank(), group.size());    // this rank's examples
//   Tensor l = loss(mine) * (weight(mine) / weight(batch));         // its share of the batch mean
//   l.backward();
//   nn::allreduce_gradients(params, group);                          // now the whole batch's
//   gradients opt.step();
//
// Without MPI at build time (TAPEGRAD_MPI=OFF), or when a program is not started by a launcher
// (mpirun, srun), the world is this process alone and nothing here communicates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../../autograd/tape.hpp"
#include "../../autograd/tensor.hpp"

namespace tg::nn {

class ProcessGroup {
 public:
  // Every rank of the launch.  The first call initialises MPI when the process was started by
  // a launcher (Open MPI's mpirun, or a PMI launcher such as Slurm's srun); MPI is finalised
  // at exit.  Fails, naming the build option, when started by a launcher with more than one
  // rank but built without MPI (each rank would otherwise train alone and overwrite the others'
  // files).
  static const ProcessGroup& world();
  // This process alone (rank 0 of 1), whatever the launcher: a reference run inside a test.
  static const ProcessGroup& single();

  std::size_t rank() const { return rank_; }
  std::size_t size() const { return size_; }
  bool is_root() const { return rank_ == 0; }

  // Sums `values` over the ranks, in place: every rank ends with the same sums, bit for bit.
  void allreduce_sum(std::span<float> values) const;
  void allreduce_sum(std::span<double> values) const;
  // Copies rank `root`'s values to every rank.
  void broadcast(std::span<float> values, std::size_t root = 0) const;
  void broadcast(std::span<double> values, std::size_t root = 0) const;
  // Every rank's value, in rank order.
  std::vector<std::uint64_t> allgather(std::uint64_t value) const;
  // Stops every rank of the launch with this exit code (MPI_Abort); exits when alone.
  [[noreturn]] void abort(int code) const;

 private:
  friend class GradientReducer;
  ProcessGroup(std::size_t rank, std::size_t size, bool uses_mpi)
      : rank_(rank), size_(size), uses_mpi_(uses_mpi) {}
  std::size_t rank_, size_;
  bool uses_mpi_;
};

// Rank `rank`'s share of a global batch of examples: the contiguous slice
// [rank * n / ranks, (rank + 1) * n / ranks), so shares differ in size by at most one and
// together are the batch in order.  Empty when the batch has fewer examples than ranks.
std::vector<std::size_t> shard(const std::vector<std::size_t>& batch, std::size_t rank,
                               std::size_t ranks);

// Sums the gradients of `params` over the group's ranks, in place, in buckets of about
// `bucket_bytes` (one allreduce each, all in flight together).  Afterwards every rank holds the
// same gradients, and a parameter has a gradient on every rank when it had one on any (zeros
// where none arrived), as one process with the whole batch would.  `extra` values (a loss, say)
// are summed along in the same exchange.  Bytes sent per call, per rank: about
// 2 (ranks - 1) / ranks times the gradients' size (a ring allreduce; Open MPI picks the algorithm).
// Returns the number of allreduce calls made (each costs the network's latency a few times).
std::size_t allreduce_gradients(const std::vector<Tensor>& params, const ProcessGroup& group,
                                std::span<double> extra = {},
                                std::size_t bucket_bytes = std::size_t{4} << 20);

// The same sums as allreduce_gradients, started while backward is still running, as DDP does:
// the parameters are put in buckets of about `bucket_bytes`, in reverse order of registration
// (the order backward completes them, roughly), and a bucket's allreduce starts as soon as the
// tape reports every gradient in it complete (Tape::on_leaf_done), so the exchange overlaps
// the rest of backward.  Buckets start in the same order on every rank.  One per training loop:
//
//   GradientReducer reducer(model.parameters(), group);
//   reducer.watch(tape);          // before each backward
//   loss.backward();
//   reducer.finish({&loss_value, 1});   // waits, and writes the sums back
class GradientReducer {
 public:
  GradientReducer(std::vector<Tensor> params, const ProcessGroup& group,
                  std::size_t bucket_bytes = std::size_t{4} << 20);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Listens to the next backward on `tape`.
  void watch(Tape& tape);
  // After backward: starts the buckets not started yet, waits for all, writes the sums into the
  // gradients (with allreduce_gradients' rules on missing ones) and sums `extra` along.
  // Returns how many buckets had started before finish (during backward).
  std::size_t finish(std::span<double> extra = {});
  std::size_t buckets() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Copies rank 0's parameter values to every rank (so that all start from the same weights).
void broadcast_parameters(const std::vector<Tensor>& params, const ProcessGroup& group);

// Throws, on every rank, naming `what` and the ranks whose `state` (any text) differs from rank
// 0's.
void check_ranks_agree(const std::string& state, const ProcessGroup& group,
                       const std::string& what);

// A 64-bit checksum (FNV-1a) of the parameters' values and shapes, bit for bit.
std::uint64_t parameter_checksum(const std::vector<Tensor>& params);

// Throws, on every rank, naming `step` and the ranks whose parameters differ from rank 0's,
// when the ranks no longer hold the same parameters (they would silently train different models).
void check_parameters_agree(const std::vector<Tensor>& params, const ProcessGroup& group,
                            std::size_t step);

}  // namespace tg::nn

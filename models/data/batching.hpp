// Batches of sentences of similar length, for training and prediction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "../../autograd/runtime/generator.hpp"

namespace tg::models {

// Batches of sentences of similar length, in shuffled order: sentences are sorted by length
// inside windows of 50 batches, cut into batches of up to `batch_tokens` tokens (at most
// `max_batch` sentences), and the batches shuffled.  Returns sentence indices per batch.
std::vector<std::vector<std::size_t>> make_batches(const std::vector<std::size_t>& lengths,
                                                   std::size_t batch_tokens, std::size_t max_batch,
                                                   Generator* shuffle);

// Task::batches for sentences of these lengths: make_batches of up to
// `batch_tokens` tokens and `max_batch` sentences, shuffled by a generator seeded from the seed
// and the epoch (so a resumed epoch sees the same batches).
std::function<std::vector<std::vector<std::size_t>>(std::size_t epoch)> shuffled_batches(
    std::vector<std::size_t> lengths, std::size_t batch_tokens, std::size_t max_batch,
    std::uint64_t seed);

// Orders of the data for an ensemble trained side by side (models/ensemble.hpp): the members
// share an epoch's batches but each walks them in its own shuffled order, so they take
// different paths and make different mistakes.  The training loop walks member 0's order
// (Task::batches returns epoch(e)); member(batch, k) is member k's batch at the same step.
class MemberOrders {
 public:
  using Batches = std::vector<std::vector<std::size_t>>;
  // make(epoch): the epoch's batches in member 0's order (a function of the epoch only);
  // member k > 0 walks them shuffled by a generator seeded from (seed, epoch, k).
  MemberOrders(std::function<Batches(std::size_t epoch)> make, std::size_t members,
               std::uint64_t seed);
  const Batches& epoch(std::size_t e);
  // Member k's batch at the step of `batch` (a batch of epoch(e), or one rank's share of it: then
  // the same share of member k's batch).
  std::vector<std::size_t> member(const std::vector<std::size_t>& batch, std::size_t k) const;

 private:
  std::function<Batches(std::size_t)> make_;
  std::size_t members_, epoch_ = SIZE_MAX;
  std::uint64_t seed_;
  Batches batches_;                               // member 0's order, for epoch_
  std::vector<std::vector<std::size_t>> orders_;  // orders_[k][step]: member k's batch index
  std::map<std::size_t, std::pair<std::size_t, std::size_t>>
      at_;  // an example -> (step, place in its batch)
};

}  // namespace tg::models

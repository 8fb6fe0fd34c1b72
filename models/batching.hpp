// Batches of sentences of similar length, for training and prediction.
#pragma once

#include <cstddef>
#include <vector>

#include "../autograd/generator.hpp"

namespace tg::models {

// Batches of sentences of similar length, in shuffled order: sentences are sorted by length
// inside windows of 50 batches, cut into batches of up to `batch_tokens` tokens (at most
// `max_batch` sentences), and the batches shuffled.  Returns sentence indices per batch.
std::vector<std::vector<std::size_t>> make_batches(const std::vector<std::size_t>& lengths,
                                                   std::size_t batch_tokens, std::size_t max_batch,
                                                   Generator* shuffle);
}  // namespace tg::models

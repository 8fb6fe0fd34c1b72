// Attention masks.  A mask is boolean, true where a query may attend to a key, and broadcasts
// to the logits' shape (B, H, T, S): a key padding mask is (B, 1, 1, S), a causal or graph mask
// (T, S).  A query whose keys are all masked gets zeros, and zero gradients (never NaN).
#pragma once

#include <vector>

#include "../../autograd/tensor.hpp"

namespace tg::nn {

// (T, S): query i, at position i + S - T, sees key j iff j <= i + S - T.
Mask causal_mask(std::size_t T, std::size_t S);
// (B, 1, 1, S): key j of sequence b is real iff j < lengths[b].
Mask padding_mask(const std::vector<std::size_t>& lengths, std::size_t S);
// Both masks, broadcast together.
Mask mask_and(const Mask& a, const Mask& b);

}  // namespace tg::nn

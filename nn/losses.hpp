// Losses.  Each returns a scalar () tensor; each is built from fused autograd ops or from
// composition, so it needs no backward code here.
#pragma once

#include "../autograd/ops.hpp"

namespace tg::nn {

// logits: (..., C), targets: (...) -> () mean over targets that are not ignored.
// (ignore_index, label_smoothing: see CrossEntropyOptions in autograd/ops.hpp.)
Tensor cross_entropy_loss(const Tensor& logits, const Ids& targets,
                          const CrossEntropyOptions& options = {});

// logits, targets (probabilities in [0, 1]): the same shape (...) -> () mean.
Tensor bce_with_logits_loss(const Tensor& logits, const Tensor& targets);

// prediction, target: the same shape (...) -> () mean of squared differences.  The shapes must
// be equal: a silently broadcast target is a classic source of wrong losses.
Tensor mse_loss(const Tensor& prediction, const Tensor& target);

}  // namespace tg::nn

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

// Minimum risk training (Shen et al. 2016): the expected cost of each example's candidates
// under the model's distribution renormalised over them and sharpened by alpha,
//   Q(y_k) = p(y_k)^alpha / sum_k' p(y_k')^alpha,   risk = sum_k Q(y_k) cost_k,
// -> () the mean risk over the examples.  seq_log_probs: (N, K) log p(y_k | x_n) of K candidates
// each; costs (N, K), e.g. 1 - sentence BLEU; valid (N, K) true where a candidate exists (an
// example may have fewer, when sampling drew duplicates).  Every example needs one candidate.
Tensor minimum_risk_loss(const Tensor& seq_log_probs, const Array<double>& costs, const Mask& valid,
                         double alpha);

}  // namespace tg::nn

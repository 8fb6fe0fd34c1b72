#include "losses.hpp"

namespace tg::nn {

Tensor cross_entropy_loss(const Tensor& logits, const Ids& targets,
                          const CrossEntropyOptions& options) {
  return cross_entropy(logits, targets, options);
}

Tensor bce_with_logits_loss(const Tensor& logits, const Tensor& targets) {
  return binary_cross_entropy_with_logits(logits, targets);
}

Tensor mse_loss(const Tensor& prediction, const Tensor& target) {
  if (!prediction.defined() || !target.defined() || prediction.shape() != target.shape())
    fail("mse_loss", "prediction and target must have one shape, got " +
                         (prediction.defined() ? shape_str(prediction.shape()) : "undefined") +
                         " and " + (target.defined() ? shape_str(target.shape()) : "undefined"));
  if (prediction.numel() == 0) fail("mse_loss", "the inputs are empty");
  Tensor d = prediction - target;
  return mean(d * d);
}

}  // namespace tg::nn

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

Tensor minimum_risk_loss(const Tensor& seq_log_probs, const Array<double>& costs, const Mask& valid,
                         double alpha) {
  const char* op = "minimum_risk_loss";
  if (!seq_log_probs.defined() || seq_log_probs.dim() != 2)
    fail(op, "seq_log_probs must be (N, K), got " +
                 (seq_log_probs.defined() ? shape_str(seq_log_probs.shape()) : "undefined"));
  const Shape& shape = seq_log_probs.shape();
  if (Shape(costs.shape().begin(), costs.shape().end()) != shape ||
      Shape(valid.shape().begin(), valid.shape().end()) != shape)
    fail(op, "costs " + shape_str(Shape(costs.shape().begin(), costs.shape().end())) +
                 " and valid " + shape_str(Shape(valid.shape().begin(), valid.shape().end())) +
                 " must match seq_log_probs " + shape_str(shape));
  if (!(alpha > 0)) fail(op, "alpha must be positive, got " + std::to_string(alpha));
  for (std::size_t n = 0; n < shape[0]; ++n) {
    bool any = false;
    for (std::size_t k = 0; k < shape[1]; ++k) any = any || valid(n, k);
    if (!any) fail(op, "example " + std::to_string(n) + " has no candidate");
  }
  const Tensor q = masked_softmax(seq_log_probs * alpha, valid);  // 0 where no candidate
  return mean(sum(q * Tensor(costs).to(seq_log_probs.dtype()), {1}));
}

}  // namespace tg::nn

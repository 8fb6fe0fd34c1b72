#include "dropout.hpp"

#include "../autograd/ops.hpp"

namespace tg::nn {

Dropout::Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {
  if (!(p >= 0.0 && p < 1.0)) fail("Dropout", "p must be in [0, 1), got " + std::to_string(p));
  draws_from(gen);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, *gen_, is_training()); }

Tensor Dropout::forward(const Tensor& x, const TokenPacking* packing) {
  return dropout(x, p_, *gen_, is_training(), packing ? packing->rows() : nullptr);
}

}  // namespace tg::nn

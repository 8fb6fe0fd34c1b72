#include "layer_norm.hpp"

#include "../autograd/ops.hpp"

namespace tg::nn {

LayerNorm::LayerNorm(std::size_t dim, double eps) : dim_(dim), eps_(eps) {
  if (dim == 0) fail("LayerNorm", "dim must be positive");
  if (!(eps > 0)) fail("LayerNorm", "eps must be positive, got " + std::to_string(eps));
  weight = register_parameter("weight", ones({dim}));
  bias = register_parameter("bias", zeros({dim}));
}

Tensor LayerNorm::forward(const Tensor& x) {
  if (!x.defined() || x.dim() < 1 || x.shape().back() != dim_)
    fail("LayerNorm", "the input's last dim must be " + std::to_string(dim_) + ", got x " +
                          (x.defined() ? shape_str(x.shape()) : "undefined"));
  check_input_dtype("LayerNorm", x);
  return layer_norm(x, weight, bias, eps_);
}

}  // namespace tg::nn

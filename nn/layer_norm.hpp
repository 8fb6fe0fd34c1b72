// LayerNorm: normalises each vector over its last dim, then scales and shifts it
// (Ba et al. 2016): y = (x - mean) / sqrt(var + eps) * weight + bias.
#pragma once

#include "module.hpp"

namespace tg::nn {

class LayerNorm : public Layer {
 public:
  explicit LayerNorm(std::size_t dim, double eps = 1e-5);

  // x: (..., C) -> (..., C)
  Tensor forward(const Tensor& x) override;

  Tensor weight;  // (C), starts at ones
  Tensor bias;    // (C), starts at zeros
  std::size_t dim() const { return dim_; }

 private:
  std::size_t dim_;
  double eps_;
};

}  // namespace tg::nn

// Linear: y = x W + b.
#pragma once

#include "../autograd/runtime/generator.hpp"
#include "module.hpp"

namespace tg::nn {

struct LinearOptions {
  std::size_t in = 0;
  std::size_t out = 0;
  bool bias = true;
};

class Linear : public Layer {
 public:
  // weight: Xavier-uniform; bias: zeros.
  Linear(const LinearOptions& options, Generator& gen);
  Linear(std::size_t in, std::size_t out, Generator& gen) : Linear({in, out, true}, gen) {}

  // x: (..., in) -> (..., out)
  Tensor forward(const Tensor& x) override;

  Tensor weight;  // (in, out)
  Tensor bias;    // (out); undefined when options.bias is false
  const LinearOptions& options() const { return options_; }

 private:
  LinearOptions options_;
};

}  // namespace tg::nn

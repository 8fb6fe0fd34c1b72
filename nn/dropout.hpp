// Dropout (Srivastava et al. 2014): in training mode, zeroes each element with probability p
// and scales the rest by 1 / (1 - p); in evaluation mode, passes x through.
#pragma once

#include "../autograd/runtime/generator.hpp"
#include "module.hpp"
#include "packing.hpp"

namespace tg::nn {

class Dropout : public Layer {
 public:
  // `gen` supplies the masks and must outlive the module (normally the training program's).
  Dropout(double p, Generator& gen);

  // x: (...) -> (...)
  Tensor forward(const Tensor& x) override;
  // With a packing (packing.hpp): x (N, C), the real tokens, dropped as at their padded places.
  // Null: forward(x).
  Tensor forward(const Tensor& x, const TokenPacking* packing);

  double p() const { return p_; }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace tg::nn

// Mlp: Linear layers with an activation (and optional dropout) between them.
//   widths {4, 32, 32, 2}:  Linear(4, 32), act, Linear(32, 32), act, Linear(32, 2)
// The transformer's position-wise feed-forward block is Mlp({d, ff, d}).
#pragma once

#include <memory>
#include <vector>

#include "activation.hpp"
#include "dropout.hpp"
#include "linear.hpp"

namespace tg::nn {

struct MlpOptions {
  std::vector<std::size_t> widths;  // at least {in, out}
  Activation activation = Activation::gelu;
  double dropout = 0.0;  // after each activation, in training mode
  bool bias = true;
};

class Mlp : public Layer {
 public:
  Mlp(const MlpOptions& options, Generator& gen);

  // x: (..., widths.front()) -> (..., widths.back())
  Tensor forward(const Tensor& x) override;
  // With a packing (packing.hpp): x (N, widths.front()), the real tokens, -> (N, widths.back()),
  // dropout as at their padded places.  Null: forward(x).
  Tensor forward(const Tensor& x, const TokenPacking* packing);

  std::vector<std::unique_ptr<Linear>> layers;  // registered as "0", "1", ...
  const MlpOptions& options() const { return options_; }

 private:
  MlpOptions options_;
  std::unique_ptr<Dropout> dropout_;
};

using FeedForward = Mlp;

}  // namespace tg::nn

// Conv1d: a convolution along the time axis, "same" size, as used on word sequences
// (Kim 2014): each output step reads the `width` steps centred on it.
//
//   x (B, T, in)  ->  (B, T, out),   y[b, t] = bias + sum_j x[b, t + j - width/2] W_j
//
// Steps before the start and after the end read zeros.  Padding inside a batch is not known
// here: zero the padded steps of x first if they must not leak into their neighbours.
// Built from ops that already have their backward (concat, slice, matmul): the width shifted
// copies of x side by side, (B, T, width * in), times W (width * in, out).
#pragma once

#include "../autograd/runtime/generator.hpp"
#include "module.hpp"

namespace tg::nn {

struct Conv1dOptions {
  std::size_t in = 0;
  std::size_t out = 0;
  std::size_t width = 3;  // odd, so that the window is centred
  bool bias = true;
};

class Conv1d : public Layer {
 public:
  // weight: Xavier-uniform over (width * in, out); bias: zeros.
  Conv1d(const Conv1dOptions& options, Generator& gen);

  // x: (B, T, in) -> (B, T, out)
  Tensor forward(const Tensor& x) override;

  Tensor weight;  // (width * in, out); rows j*in .. (j+1)*in - 1 read step t + j - width/2
  Tensor bias;    // (out); undefined when options.bias is false
  const Conv1dOptions& options() const { return options_; }

 private:
  Conv1dOptions options_;
};

}  // namespace tg::nn

#include "conv1d.hpp"

#include "../autograd/ops.hpp"
#include "init.hpp"

namespace tg::nn {

Conv1d::Conv1d(const Conv1dOptions& options, Generator& gen) : options_(options) {
  if (options.in == 0 || options.out == 0 || options.width % 2 == 0)
    fail("Conv1d", "in and out must be positive and width odd, got in " +
                       std::to_string(options.in) + ", out " + std::to_string(options.out) +
                       ", width " + std::to_string(options.width));
  weight = register_parameter("weight", zeros({options.width * options.in, options.out}));
  init::xavier_uniform(weight, gen);
  if (options.bias) bias = register_parameter("bias", zeros({options.out}));
}

Tensor Conv1d::forward(const Tensor& x) {
  if (!x.defined() || x.dim() != 3 || x.shape()[2] != options_.in)
    fail("Conv1d", "x must be (B, T, in = " + std::to_string(options_.in) + "), got " +
                       (x.defined() ? shape_str(x.shape()) : "undefined"));
  check_input_dtype("Conv1d", x);
  const std::size_t B = x.shape()[0], T = x.shape()[1], half = options_.width / 2;
  Tensor windows = x;  // width 1: the step itself
  if (half > 0) {
    const Tensor pad = zeros({B, half, options_.in}, x.dtype());
    const Tensor padded = concat({pad, x, pad}, 1);  // (B, T + 2 half, in)
    std::vector<Tensor> shifted;                     // shifted[j][b, t] = x[b, t + j - half]
    for (std::size_t j = 0; j < options_.width; ++j) shifted.push_back(slice(padded, 1, j, j + T));
    windows = concat(shifted, 2);  // (B, T, width * in)
  }
  Tensor y = matmul(windows, weight);
  return bias.defined() ? y + bias : y;
}

}  // namespace tg::nn

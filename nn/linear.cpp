#include "linear.hpp"

#include "../autograd/ops.hpp"
#include "init.hpp"

namespace tg::nn {

Linear::Linear(const LinearOptions& options, Generator& gen) : options_(options) {
  if (options.in == 0 || options.out == 0)
    fail("Linear", "in and out must be positive, got in " + std::to_string(options.in) + ", out " +
                       std::to_string(options.out));
  weight = register_parameter("weight", zeros({options.in, options.out}));
  init::xavier_uniform(weight, gen);
  if (options.bias) bias = register_parameter("bias", zeros({options.out}));
}

Tensor Linear::forward(const Tensor& x) {
  if (!x.defined() || x.dim() < 1 || x.shape().back() != options_.in)
    fail("Linear", "the input's last dim must be in = " + std::to_string(options_.in) + ", got x " +
                       (x.defined() ? shape_str(x.shape()) : "undefined"));
  check_input_dtype("Linear", x);
  if (x.dim() == 1) return reshape(forward(reshape(x, {1, -1})), {-1});  // (in) -> (out)
  return linear(x, weight, bias);                                        // x weight + bias
}

}  // namespace tg::nn

#include "activation.hpp"

#include "../autograd/ops.hpp"

namespace tg::nn {
Tensor activate(const Tensor& x, Activation a) {
  switch (a) {
    case Activation::relu: return relu(x);
    case Activation::gelu: return gelu(x);
    case Activation::gelu_tanh: return gelu(x, GeluForm::tanh);
    case Activation::tanh: return tg::tanh(x);
    case Activation::sigmoid: return sigmoid(x);
    case Activation::identity: return x;
  }
  fail("activate", "unknown activation");
}

}  // namespace tg::nn

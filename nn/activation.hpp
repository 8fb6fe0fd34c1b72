// Activation functions by name, as a function and as a layer (for Sequential and Mlp).
#pragma once

#include <string>

#include "../autograd/named_enum.hpp"
#include "module.hpp"

namespace tg::nn {

enum class Activation { relu, gelu, gelu_tanh, tanh, sigmoid, identity };

Tensor activate(const Tensor& x, Activation a);  // x: (...) -> (...)
// Names for command lines and model files: enum_name(a), enum_from_name<Activation>("gelu").
constexpr auto enum_table(Activation) {
  return named_values<Activation>("activation", {{Activation::relu, "relu"},
                                                 {Activation::gelu, "gelu"},
                                                 {Activation::gelu_tanh, "gelu_tanh"},
                                                 {Activation::tanh, "tanh"},
                                                 {Activation::sigmoid, "sigmoid"},
                                                 {Activation::identity, "identity"}});
}

class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(Activation a) : activation_(a) {}
  Tensor forward(const Tensor& x) override { return activate(x, activation_); }

 private:
  Activation activation_;
};

}  // namespace tg::nn

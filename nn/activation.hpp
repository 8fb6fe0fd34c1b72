// Activation functions by name, as a function and as a layer (for Sequential and Mlp).
#pragma once

#include <string>

#include "module.hpp"

namespace tg::nn {

enum class Activation { relu, gelu, gelu_tanh, tanh, sigmoid, identity };

Tensor activate(const Tensor& x, Activation a);  // x: (...) -> (...)
const char* activation_name(Activation a);
Activation activation_from_name(const std::string& name);  // "relu", "gelu", ...

class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(Activation a) : activation_(a) {}
  Tensor forward(const Tensor& x) override { return activate(x, activation_); }

 private:
  Activation activation_;
};

}  // namespace tg::nn

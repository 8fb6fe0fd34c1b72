#include "activation.hpp"

#include "../autograd/ops.hpp"

namespace tg::nn {
namespace {

constexpr std::pair<Activation, const char*> kNames[] = {
    {Activation::relu, "relu"}, {Activation::gelu, "gelu"},
    {Activation::gelu_tanh, "gelu_tanh"}, {Activation::tanh, "tanh"},
    {Activation::sigmoid, "sigmoid"}, {Activation::identity, "identity"},
};

}  // namespace

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

const char* activation_name(Activation a) {
  for (const auto& [act, name] : kNames)
    if (act == a) return name;
  return "?";
}

Activation activation_from_name(const std::string& name) {
  std::string known;
  for (const auto& [act, n] : kNames) {
    if (name == n) return act;
    known += known.empty() ? n : std::string(", ") + n;
  }
  fail("activation_from_name", "unknown activation '" + name + "' (known: " + known + ")");
}

}  // namespace tg::nn

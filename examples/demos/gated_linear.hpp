// GatedLinear, the worked example of README "Add your own layer":
// a gated linear unit (Dauphin et al. 2017), y = (x W + b) * sigmoid(x V + c).
#pragma once

#include "tapegrad.hpp"

class GatedLinear : public tg::nn::Layer {
 public:
  GatedLinear(std::size_t in, std::size_t out, tg::Generator& gen)
      : value_(in, out, gen), gate_(in, out, gen) {
    register_module("value", value_);  // parameters: value.weight, value.bias,
    register_module("gate", gate_);    //             gate.weight, gate.bias
  }

  // x: (..., in) -> (..., out)
  tg::Tensor forward(const tg::Tensor& x) override { return value_(x) * tg::sigmoid(gate_(x)); }

 private:
  tg::nn::Linear value_, gate_;
};

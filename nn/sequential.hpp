// Sequential: layers applied one after another, registered as "0", "1", ...
//
//   tg::nn::Sequential net;
//   net.add<tg::nn::Linear>(4, 16, gen);
//   net.add<tg::nn::ActivationLayer>(tg::nn::Activation::relu);
//   net.add<tg::nn::Linear>(16, 1, gen);
#pragma once

#include <memory>
#include <vector>

#include "module.hpp"

namespace tg::nn {

class Sequential : public Layer {
 public:
  // Constructs a layer of type L in place, appends it and returns it.
  template <class L, class... Args>
  L& add(Args&&... args) {
    auto layer = std::make_unique<L>(std::forward<Args>(args)...);
    L& ref = *layer;
    register_module(std::to_string(layers_.size()), ref);
    layers_.push_back(std::move(layer));
    return ref;
  }

  // x -> layer n-1( ... layer 0(x))
  Tensor forward(const Tensor& x) override;

  std::size_t size() const { return layers_.size(); }
  Layer& operator[](std::size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
};

}  // namespace tg::nn

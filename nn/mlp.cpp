#include "mlp.hpp"

namespace tg::nn {

Mlp::Mlp(const MlpOptions& options, Generator& gen) : options_(options) {
  if (options.widths.size() < 2)
    fail("Mlp", "widths needs at least {in, out}, got " + std::to_string(options.widths.size()) +
                    " entries");
  for (std::size_t i = 0; i + 1 < options.widths.size(); ++i) {
    layers.push_back(std::make_unique<Linear>(
        LinearOptions{options.widths[i], options.widths[i + 1], options.bias}, gen));
    register_module(std::to_string(i), *layers.back());
  }
  if (options.dropout > 0) {
    dropout_ = std::make_unique<Dropout>(options.dropout, gen);
    register_module("dropout", *dropout_);
  }
}

Tensor Mlp::forward(const Tensor& x) { return forward(x, nullptr); }

Tensor Mlp::forward(const Tensor& x, const TokenPacking* packing) {
  Tensor h = x;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    h = layers[i]->forward(h);
    if (i + 1 == layers.size()) break;  // no activation after the last layer
    h = activate(h, options_.activation);
    if (dropout_) h = dropout_->forward(h, packing);
  }
  return h;
}

}  // namespace tg::nn

#include "classifier.hpp"

#include <cmath>

#include "../autograd/ops.hpp"
#include "tagger.hpp"

namespace tg::models {

Classifier::Classifier(const ClassifierOptions& o, Generator& gen)
    : embed({.vocab = o.vocab, .dim = o.d_model, .padding_id = 0, .init_std = 1.0 / std::sqrt(double(o.d_model))}, gen),
      encoder({.d_model = o.d_model, .heads = o.heads, .ff = o.ff, .layers = o.layers, .dropout = o.dropout,
               .attention_dropout = o.dropout,
               .relative_k = o.positions == nn::PositionScheme::relative ? o.relative_k : 0}, gen),
      head(o.d_model, o.classes, gen),
      options_(o),
      drop_(o.dropout, gen) {
  positions = nn::make_positional_encoding({.scheme = o.positions, .dim = o.d_model, .max_len = o.max_len,
                                            .fourier_features = o.fourier_features,
                                            .fourier_hidden = o.fourier_hidden}, gen);
  register_module("embed", embed);
  if (positions) register_module("positions", *positions);
  register_module("encoder", encoder);
  register_module("head", head);
  register_module("drop", drop_);
}

Tensor Classifier::forward(const Ids& ids, std::vector<Tensor>* weights) {
  const Mask pad = key_padding_mask(ids);  // (B, 1, 1, T)
  Tensor x = embed(ids) * std::sqrt(static_cast<double>(options_.d_model));
  if (positions) x = positions->forward(x);
  Tensor h = encoder.forward(drop_(x), pad, weights);  // (B, T, C)
  // Mean over real tokens: sum_t h[b, t] keep[b, t] / count[b], keep (B, T, 1) in {0, 1}.
  const std::size_t B = ids.shape()[0], T = ids.shape()[1];
  Array<double> keep = Array<double>::from_shape({B, T, 1}), inv_count = Array<double>::from_shape({B, 1});
  for (std::size_t b = 0; b < B; ++b) {
    std::size_t count = 0;
    for (std::size_t t = 0; t < T; ++t) count += (keep(b, t, 0) = ids(b, t) != 0);
    inv_count(b, 0) = 1.0 / std::max<std::size_t>(count, 1);  // an empty sequence pools to 0
  }
  Tensor pooled = sum(h * Tensor(keep).to(h.dtype()), {1}) * Tensor(inv_count).to(h.dtype());  // (B, C)
  return head(pooled);
}

Tensor Classifier::loss(const Ids& ids, const Ids& labels) { return cross_entropy(forward(ids), labels); }

}  // namespace tg::models

#include "classifier.hpp"

#include <cmath>

#include "../autograd/ops.hpp"
#include "blocks.hpp"

namespace tg::models {

Pooling pooling_from_name(const std::string& name) {
  if (name == "mean") return Pooling::mean;
  if (name == "max") return Pooling::max;
  if (name == "mean-max") return Pooling::mean_max;
  fail("pooling", "unknown pooling '" + name + "' (mean, max or mean-max)");
}

std::string pooling_name(Pooling pooling) {
  switch (pooling) {
    case Pooling::mean: return "mean";
    case Pooling::max: return "max";
    case Pooling::mean_max: return "mean-max";
  }
  return "?";
}

std::string option_text(Pooling pooling) { return pooling_name(pooling); }

void parse_option(const std::string& text, Pooling& pooling, const std::string& what) {
  try {
    pooling = pooling_from_name(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": " + e.what());
  }
}

Classifier::Classifier(const ClassifierOptions& o, Generator& gen)
    : embed({.vocab = o.vocab, .dim = o.d_model, .padding_id = 0, .init_std = 1.0 / std::sqrt(double(o.d_model))}, gen),
      encoder({.d_model = o.d_model, .heads = o.heads, .ff = o.ff, .layers = o.layers, .dropout = o.dropout,
               .attention_dropout = o.dropout,
               .relative_k = o.positions == nn::PositionScheme::relative ? o.relative_k : 0}, gen),
      head(o.pooling == Pooling::mean_max ? 2 * o.d_model : o.d_model, o.classes, gen),
      options_(o),
      drop_(o.dropout, gen) {
  positions = nn::make_positional_encoding({.scheme = o.positions, .dim = o.d_model, .max_len = o.max_len,
                                            .fourier_features = o.fourier_features,
                                            .fourier_hidden = o.fourier_hidden}, gen);
  register_module("embed", embed);
  if (o.subword_buckets > 0) {
    subword_embed = std::make_unique<nn::SubwordEmbedding>(o.subword_buckets, o.d_model, o.subword_groups, gen);
    register_module("subword_embed", *subword_embed);
  }
  if (o.conv_width > 0) {
    conv = std::make_unique<nn::Conv1d>(nn::Conv1dOptions{.in = o.d_model, .out = o.d_model, .width = o.conv_width}, gen);
    register_module("conv", *conv);
  }
  if (positions) register_module("positions", *positions);
  register_module("encoder", encoder);
  register_module("head", head);
  register_module("drop", drop_);
}

Tensor Classifier::forward(const Ids& ids, const Ids* subwords, std::vector<Tensor>* weights) {
  const Mask pad = key_padding_mask(ids);  // (B, 1, 1, T); checks that ids are (B, T)
  // keep (B, T, 1): 1 at real tokens; an empty sequence (all padding) pools to 0.
  const std::size_t B = ids.shape()[0], T = ids.shape()[1];
  Array<double> keep = Array<double>::from_shape({B, T, 1}), inv_count = Array<double>::from_shape({B, 1});
  Mask padding = Mask::from_shape({B, T, 1}), empty = Mask::from_shape({B, 1});
  for (std::size_t b = 0; b < B; ++b) {
    std::size_t count = 0;
    for (std::size_t t = 0; t < T; ++t) {
      padding(b, t, 0) = ids(b, t) == 0;
      keep(b, t, 0) = padding(b, t, 0) ? 0.0 : 1.0;
      count += !padding(b, t, 0);
    }
    inv_count(b, 0) = 1.0 / std::max<std::size_t>(count, 1);
    empty(b, 0) = count == 0;
  }
  Tensor x = embed_words(embed, subword_embed.get(), ids, subwords, "Classifier");  // (B, T, C)
  x = x * std::sqrt(static_cast<double>(options_.d_model));
  if (conv) x = add_neighbours(*conv, drop_, x, ids);
  if (positions) x = positions->forward(x);
  Tensor h = encoder.forward(drop_(x), pad, weights);  // (B, T, C)
  Tensor mean_pooled, max_pooled;
  if (options_.pooling != Pooling::max)  // sum_t h[b, t] keep[b, t] / count[b]
    mean_pooled = sum(h * Tensor(keep).to(h.dtype()), {1}) * Tensor(inv_count).to(h.dtype());  // (B, C)
  if (options_.pooling != Pooling::mean)  // max_t over real tokens: padding can never win
    max_pooled = masked_fill(max(masked_fill(h, padding, -1e30), {1}), empty, 0.0);  // (B, C)
  if (options_.pooling == Pooling::mean) return head(mean_pooled);
  if (options_.pooling == Pooling::max) return head(max_pooled);
  return head(concat({mean_pooled, max_pooled}, 1));  // (B, 2C)
}

Tensor Classifier::loss(const Ids& ids, const Ids& labels, const Ids* subwords) {
  return cross_entropy(forward(ids, subwords), labels);
}

}  // namespace tg::models

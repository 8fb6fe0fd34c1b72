#include "tagger.hpp"

#include <cmath>

#include "../autograd/ops.hpp"

namespace tg::models {

namespace {

nn::TransformerOptions encoder_options(const TaggerOptions& o) {
  return {.d_model = o.d_model, .heads = o.heads, .ff = o.ff, .layers = o.layers, .dropout = o.dropout,
          .attention_dropout = o.dropout,
          .relative_k = o.positions == nn::PositionScheme::relative ? o.relative_k : 0};
}

}  // namespace

Tagger::Tagger(const TaggerOptions& o, Generator& gen)
    : embed({.vocab = o.vocab, .dim = o.d_model, .padding_id = 0, .init_std = 1.0 / std::sqrt(double(o.d_model))}, gen),
      encoder(encoder_options(o), gen),
      head(o.d_model, o.tags, gen),
      options_(o),
      drop_(o.dropout, gen) {
  positions = nn::make_positional_encoding({.scheme = o.positions, .dim = o.d_model, .max_len = o.max_len}, gen);
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

Tensor Tagger::forward(const Ids& ids, const Ids* subwords, std::vector<Tensor>* weights) {
  const Mask pad = key_padding_mask(ids);  // (B, 1, 1, T); checks that ids are (B, T)
  Tensor x = embed_words(embed, subword_embed.get(), ids, subwords, "Tagger");  // (B, T, C)
  x = x * std::sqrt(static_cast<double>(options_.d_model));
  if (conv) x = add_neighbours(*conv, drop_, x, ids);
  if (positions) x = positions->forward(x);
  x = drop_(x);
  return head(encoder.forward(x, pad, weights));  // (B, T, tags)
}

Tensor Tagger::loss(const Ids& ids, const Ids& tags, const Ids* subwords) {
  return cross_entropy(forward(ids, subwords), tags);
}

}  // namespace tg::models

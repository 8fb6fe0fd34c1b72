#include "translator.hpp"

#include <cmath>

#include "../autograd/ops.hpp"
#include "blocks.hpp"

namespace tg::models {
namespace {

nn::PositionOptions position_options(const TranslatorOptions& o) {
  return {.scheme = o.positions, .dim = o.d_model, .max_len = o.max_len, .mlp_hidden = o.mlp_hidden,
          .mlp_scale = o.mlp_scale};
}

}  // namespace

Translator::Translator(const TranslatorOptions& o, Generator& gen)
    : src_embed({.vocab = o.src_vocab, .dim = o.d_model, .padding_id = 0, .init_std = 1.0 / std::sqrt(double(o.d_model))}, gen),
      tgt_embed({.vocab = o.tgt_vocab, .dim = o.d_model, .padding_id = 0, .init_std = 1.0 / std::sqrt(double(o.d_model))}, gen),
      encoder(transformer_options(o), gen),
      decoder(transformer_options(o), gen),
      head(o.d_model, o.tgt_vocab, gen),
      options_(o),
      drop_(o.dropout, gen) {
  src_positions = nn::make_positional_encoding(position_options(o), gen);
  tgt_positions = nn::make_positional_encoding(position_options(o), gen);
  register_module("src_embed", src_embed);
  register_module("tgt_embed", tgt_embed);
  if (src_positions) register_module("src_positions", *src_positions);
  if (tgt_positions) register_module("tgt_positions", *tgt_positions);
  register_module("encoder", encoder);
  register_module("decoder", decoder);
  register_module("head", head);
  register_module("drop", drop_);
}

Tensor Translator::encode(const Ids& src) {
  Tensor x = src_embed(src) * std::sqrt(static_cast<double>(options_.d_model));
  if (src_positions) x = src_positions->forward(x);
  return encoder.forward(drop_(x), key_padding_mask(src));
}

Tensor Translator::decode(const Ids& tgt, const Tensor& memory, const Mask& src_mask,
                          nn::DecoderCache* cache, std::vector<Tensor>* cross_weights) {
  return head(decoder_states(tgt, memory, src_mask, cache, cross_weights));
}

Tensor Translator::decoder_states(const Ids& tgt, const Tensor& memory, const Mask& src_mask,
                                  nn::DecoderCache* cache, std::vector<Tensor>* cross_weights) {
  const std::size_t offset = cache ? cache->length() : 0;
  Tensor y = tgt_embed(tgt) * std::sqrt(static_cast<double>(options_.d_model));
  if (tgt_positions) y = tgt_positions->forward(y, offset);
  // Target padding only matters in training (whole sequences); the causal mask is added inside.
  std::optional<Mask> self_mask;
  if (!cache) self_mask = key_padding_mask(tgt);
  return decoder.forward(drop_(y), memory,
                         {.self_mask = self_mask, .memory_mask = src_mask, .cache = cache, .cross_weights = cross_weights});
}

Tensor Translator::loss(const Ids& src, const Ids& tgt_in, const Ids& tgt_out) {
  Tensor memory = encode(src);
  Tensor states = decoder_states(tgt_in, memory, key_padding_mask(src));  // (B, T, C)
  // The output layer (C x V, the largest product of a step) runs on the real target positions
  // only: padding adds nothing to the loss, so its logits need not exist.
  const auto C = static_cast<std::int64_t>(options_.d_model);
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < tgt_out.size(); ++i)
    if (tgt_out.data()[i] != 0) rows.push_back(i);
  Ids targets = Ids::from_shape({rows.size()});
  for (std::size_t r = 0; r < rows.size(); ++r) targets(r) = tgt_out.data()[rows[r]];
  Tensor logits = head(take_rows(reshape(states, {-1, C}), rows));  // (N, V), N real positions
  return cross_entropy(logits, targets, {.ignore_index = 0, .label_smoothing = options_.label_smoothing});
}

Tensor Translator::sequence_log_probs(const Ids& src, const Ids& tgt_in, const Ids& tgt_out) {
  const Tensor logp = log_softmax(decode(tgt_in, encode(src), key_padding_mask(src)));  // (B, T, V)
  Array<double> real = Array<double>::from_shape({tgt_out.shape()[0], tgt_out.shape()[1]});
  for (std::size_t i = 0; i < tgt_out.size(); ++i) real.data()[i] = tgt_out.data()[i] != 0;
  return sum(pick(logp, tgt_out) * Tensor(real).to(logp.dtype()), {1});
}

}  // namespace tg::models

#include "translator.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "../autograd/ops.hpp"
#include "blocks.hpp"

namespace tg::models {
Translator::Translator(const TranslatorOptions& o, Generator& gen)
    : src_embed(word_embedding(o.src_vocab, o.d_model), gen),
      tgt_embed(word_embedding(o.tgt_vocab, o.d_model), gen),
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
  if (o.non_autoregressive) {
    length_head = std::make_unique<nn::Linear>(o.d_model, 2 * o.length_offsets + 1, gen);
    register_module("length_head", *length_head);
  }
}

void Translator::require(bool non_autoregressive, const char* who) const {
  if (options_.non_autoregressive != non_autoregressive)
    throw std::invalid_argument(
        std::string("Translator::") + who + ": needs " +
        (non_autoregressive ? "a non-autoregressive" : "an autoregressive") + " model");
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
  // Target padding only matters in training (whole sequences); the causal mask, for an
  // autoregressive model, is added inside.
  std::optional<Mask> self_mask;
  if (!cache) self_mask = key_padding_mask(tgt);
  return decoder.forward(drop_(y), memory,
                         {.self_mask = self_mask,
                          .memory_mask = src_mask,
                          .cache = cache,
                          .cross_weights = cross_weights,
                          .causal = !options_.non_autoregressive});
}

// The output layer on the positions where targets is not 0, and the label-smoothed cross-entropy
// there: states (B, T, C), targets (B, T) -> ().  The output layer (C x V) is the largest product
// of a step; padding adds nothing to the loss, so its logits need not exist.
Tensor Translator::token_loss(const Tensor& states, const Ids& targets) {
  const auto C = static_cast<std::int64_t>(options_.d_model);
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < targets.size(); ++i)
    if (targets.data()[i] != 0) rows.push_back(i);
  Ids real = Ids::from_shape({rows.size()});
  for (std::size_t r = 0; r < rows.size(); ++r) real(r) = targets.data()[rows[r]];
  Tensor logits = head(take_rows(reshape(states, {-1, C}), rows));  // (N, V), N real positions
  return cross_entropy(logits, real,
                       {.ignore_index = 0, .label_smoothing = options_.label_smoothing});
}

Tensor Translator::loss(const Ids& src, const Ids& tgt_in, const Ids& tgt_out) {
  require(false, "loss");
  Tensor memory = encode(src);
  return token_loss(decoder_states(tgt_in, memory, key_padding_mask(src)), tgt_out);
}

Tensor Translator::sequence_log_probs(const Ids& src, const Ids& tgt_in, const Ids& tgt_out) {
  require(false, "sequence_log_probs");
  const Tensor logp = log_softmax(decode(tgt_in, encode(src), key_padding_mask(src)));  // (B, T, V)
  Array<double> real = Array<double>::from_shape({tgt_out.shape()[0], tgt_out.shape()[1]});
  for (std::size_t i = 0; i < tgt_out.size(); ++i) real.data()[i] = tgt_out.data()[i] != 0;
  return sum(pick(logp, tgt_out) * Tensor(real).to(logp.dtype()), {1});
}

// ---- non-autoregressive translation ---------------------------------------------------------

Tensor Translator::length_logits(const Tensor& memory, const Ids& src) {
  require(true, "length_logits");
  const Tensor pooled =
      mean_over_tokens(memory, src);  // (B, C): the mean over real source tokens; checks shapes
  return (*length_head)(pooled);      // (B, 2R + 1)
}

std::int64_t Translator::length_class(std::size_t source_length, std::size_t target_length) const {
  const auto R = static_cast<std::int64_t>(options_.length_offsets);
  const std::int64_t offset =
      static_cast<std::int64_t>(target_length) - static_cast<std::int64_t>(source_length);
  return std::clamp(offset, -R, R) + R;
}

std::size_t Translator::class_length(std::size_t source_length, std::int64_t length_class) const {
  const std::int64_t length = static_cast<std::int64_t>(source_length) + length_class -
                              static_cast<std::int64_t>(options_.length_offsets);
  return static_cast<std::size_t>(
      std::clamp<std::int64_t>(length, 1, static_cast<std::int64_t>(options_.max_len) - 1));
}

Tensor Translator::nat_loss(const Ids& src, const Ids& tgt, const Ids& gold) {
  require(true, "nat_loss");
  const auto shape_of = [](const Ids& a) {
    return shape_str(Shape(a.shape().begin(), a.shape().end()));
  };
  if (src.dimension() != 2 || tgt.dimension() != 2 || src.shape()[0] != tgt.shape()[0] ||
      tgt.shape() != gold.shape())
    throw std::invalid_argument("Translator::nat_loss: src is " + shape_of(src) + ", tgt " +
                                shape_of(tgt) + " and gold " + shape_of(gold) +
                                " (want (B, S), (B, T) and (B, T))");
  const Tensor memory = encode(src);
  const Tensor tokens = token_loss(decoder_states(tgt, memory, key_padding_mask(src)), gold);
  const std::size_t B = src.shape()[0];
  Ids lengths = Ids::from_shape({B});
  for (std::size_t b = 0; b < B; ++b) {
    std::size_t s = 0, t = 0;
    for (std::size_t j = 0; j < src.shape()[1]; ++j) s += src(b, j) != 0;
    for (std::size_t j = 0; j < tgt.shape()[1]; ++j) t += tgt(b, j) != 0;
    lengths(b) = length_class(s, t);
  }
  return tokens + cross_entropy(length_logits(memory, src), lengths) * options_.length_weight;
}

}  // namespace tg::models

#include "blocks.hpp"

#include <cmath>

#include "../autograd/ops.hpp"

namespace tg::models {

Mask key_padding_mask(const Ids& ids) {
  if (ids.dimension() != 2)
    fail("key_padding_mask",
         "ids must be (B, T), got " + shape_str(Shape(ids.shape().begin(), ids.shape().end())));
  Mask m = Mask::from_shape({ids.shape()[0], 1, 1, ids.shape()[1]});
  for (std::size_t i = 0; i < ids.size(); ++i) m.data()[i] = ids.data()[i] != 0;
  return m;
}

Tensor mean_over_tokens(const Tensor& h, const Ids& ids) {
  if (h.dim() != 3 || ids.dimension() != 2 || h.shape()[0] != ids.shape()[0] ||
      h.shape()[1] != ids.shape()[1])
    fail("mean_over_tokens", "h is " + shape_str(h.shape()) + " and ids " +
                                 shape_str(Shape(ids.shape().begin(), ids.shape().end())) +
                                 " (want (B, T, C) and (B, T))");
  // keep (B, T, 1): 1 at real tokens; inv_count (B, 1): 1 / their number.
  const std::size_t B = ids.shape()[0], T = ids.shape()[1];
  Array<double> keep = Array<double>::from_shape({B, T, 1}),
                inv_count = Array<double>::from_shape({B, 1});
  for (std::size_t b = 0; b < B; ++b) {
    std::size_t count = 0;
    for (std::size_t t = 0; t < T; ++t) count += (keep(b, t, 0) = ids(b, t) != 0);
    inv_count(b, 0) = 1.0 / std::max<std::size_t>(count, 1);
  }
  return sum(h * Tensor(keep).to(h.dtype()), {1}) * Tensor(inv_count).to(h.dtype());  // (B, C)
}

nn::EmbeddingOptions word_embedding(std::size_t vocab, std::size_t d_model) {
  return {.vocab = vocab,
          .dim = d_model,
          .padding_id = 0,
          .init_std = 1.0 / std::sqrt(static_cast<double>(d_model))};
}

SentenceEncoder::SentenceEncoder(const SentenceEncoderOptions& o, Generator& gen)
    : embed(word_embedding(o.vocab, o.d_model), gen),
      encoder(transformer_options(o), gen),
      drop(o.dropout, gen),
      options_(o) {
  positions = nn::make_positional_encoding(position_options(o), gen);
  register_module("embed", embed);
  if (o.subword_buckets > 0) {
    subword_embed =
        std::make_unique<nn::SubwordEmbedding>(o.subword_buckets, o.d_model, o.subword_groups, gen);
    register_module("subword_embed", *subword_embed);
  }
  if (o.conv_width > 0) {
    conv = std::make_unique<nn::Conv1d>(
        nn::Conv1dOptions{.in = o.d_model, .out = o.d_model, .width = o.conv_width}, gen);
    register_module("conv", *conv);
  }
  if (positions) register_module("positions", *positions);
  register_module("encoder", encoder);
  register_module("drop", drop);
}

Tensor SentenceEncoder::forward(const Ids& ids, const Ids* subwords, std::vector<Tensor>* weights,
                                const char* who) {
  const Mask pad = key_padding_mask(ids);  // (B, 1, 1, T); checks that ids are (B, T)
  Tensor x = embed(ids);                   // (B, T, C)
  if (subword_embed) {
    if (!subwords || subwords->dimension() != 3 || subwords->shape()[0] != ids.shape()[0] ||
        subwords->shape()[1] != ids.shape()[1])
      fail(who, "this model needs subword ids (B, T, K) matching ids " +
                    shape_str(Shape(ids.shape().begin(), ids.shape().end())) + ", got " +
                    (subwords ? shape_str(Shape(subwords->shape().begin(), subwords->shape().end()))
                              : "none"));
    x = x + (*subword_embed)(*subwords);
  }
  x = x * std::sqrt(static_cast<double>(options_.d_model));
  if (conv) {  // each word gets a mix of its neighbours before attention mixes the whole sentence
    Array<double> keep =
        xt::zeros<double>({ids.shape()[0], ids.shape()[1], std::size_t(1)});  // (B, T, 1)
    for (std::size_t i = 0; i < ids.size(); ++i) keep.data()[i] = ids.data()[i] != 0;
    x = x + drop(relu((*conv)(x * Tensor(keep).to(x.dtype()))));  // padding read as zeros
  }
  if (positions) x = positions->forward(x);
  return encoder.forward(drop(x), {.mask = pad,
                                   .weights = weights,
                                   .packing = skips_padding() ? std::optional(nn::TokenPacking(pad))
                                                              : std::nullopt});  // (B, T, C)
}

}  // namespace tg::models

#include "language_model.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "../autograd/ops.hpp"
#include "../nn/init.hpp"

namespace tg::models {
namespace {

std::string shape_of(const Ids& ids) {
  return shape_str(Shape(ids.shape().begin(), ids.shape().end()));
}

// The model's options as the blocks take them: every self-attention causal, with the scheme.
LanguageModelOptions checked(const LanguageModelOptions& o) {
  if (o.vocab == 0) throw std::invalid_argument("LanguageModel: the vocabulary is empty (vocab 0)");
  if (o.max_len == 0) throw std::invalid_argument("LanguageModel: max_len must be positive");
  return o;
}

}  // namespace

LanguageModel::LanguageModel(const LanguageModelOptions& o, Generator& gen)
    : embed(nn::EmbeddingOptions{.vocab = checked(o).vocab,
                                 .dim = o.d_model,
                                 .init_std = 1.0 / std::sqrt(static_cast<double>(o.d_model))},
            gen),
      blocks(transformer_options(o), gen),
      options_(o),
      drop_(o.dropout, gen) {
  positions = nn::make_positional_encoding(position_options(o), gen);
  register_module("embed", embed);
  if (positions) register_module("positions", *positions);
  register_module("blocks", blocks);
  if (!o.tie_embeddings) {
    head = std::make_unique<nn::Linear>(o.d_model, o.vocab, gen);
    register_module("head", *head);
  }
  register_module("drop", drop_);
  if (o.gpt2_init) init_as_gpt2(gen);
}

void LanguageModel::init_as_gpt2(Generator& gen) {
  const double into_residual = 0.02 / std::sqrt(2.0 * static_cast<double>(options_.layers));
  for (auto& [name, p] : named_parameters()) {
    // Weights and tables; biases stay 0, layer norms 1 and 0, and the positions' parameters that
    // start at 0 on purpose (T5's buckets, XL's u and v, kernelized attention's bias) too.
    if (p.dim() < 2 || !(name.ends_with("weight") || name.ends_with("table"))) continue;
    const bool last_of_sublayer =
        name.ends_with("out_proj.weight") || name.ends_with("ff.1.weight");
    nn::init::normal(p, 0.0, last_of_sublayer ? into_residual : 0.02, gen);
  }
}

std::size_t LanguageModel::longest() const {
  return options_.positions == nn::PositionScheme::learned
             ? options_.max_len
             : std::numeric_limits<std::size_t>::max();
}

void LanguageModel::check_length(std::size_t length, const std::string& who) const {
  if (length <= longest()) return;
  throw std::invalid_argument(who + ": positions '" + enum_name(options_.positions) +
                              "' are a table of " + std::to_string(options_.max_len) +
                              " positions (0 to " + std::to_string(options_.max_len - 1) +
                              ") and cannot read a sequence of " + std::to_string(length) +
                              " tokens (positions up to " + std::to_string(length - 1) +
                              "): use at most " + std::to_string(options_.max_len) +
                              " tokens, or a scheme that extrapolates");
}

Tensor LanguageModel::states(const Ids& ids, LanguageModelCache* cache) {
  if (ids.dimension() != 2 || ids.shape()[1] == 0)
    throw std::invalid_argument("LanguageModel: ids must be (B, T) with T > 0, got " +
                                shape_of(ids));
  const std::size_t offset = cache ? cache->length() : 0;
  if (cache && cache->length() > 0 && cache->layers[0].k.shape()[0] != ids.shape()[0])
    throw std::invalid_argument("LanguageModel: the cache holds " +
                                std::to_string(cache->layers[0].k.shape()[0]) + " sequences, ids " +
                                shape_of(ids));
  check_length(offset + ids.shape()[1], "LanguageModel");
  Tensor x = embed(ids);  // (B, T, C)
  if (!options_.gpt2_init) x = x * std::sqrt(static_cast<double>(options_.d_model));
  if (positions) x = positions->forward(x, offset);
  return blocks.forward(
      drop_(x), nn::EncodeOptions{.causal = true, .cache = cache ? &cache->layers : nullptr});
}

Tensor LanguageModel::forward(const Ids& ids, LanguageModelCache* cache) {
  const Tensor h = states(ids, cache);        // (B, T, C)
  if (head) return (*head)(h);                // (B, T, V)
  return linear(h, transpose(embed.weight));  // h (V, C)^T: (B, T, V)
}

Tensor LanguageModel::loss(const Ids& inputs, const Ids& targets) {
  if (inputs.shape() != targets.shape())
    throw std::invalid_argument("LanguageModel::loss: inputs are " + shape_of(inputs) +
                                " and targets " + shape_of(targets) + " (want the same (B, T))");
  return cross_entropy(forward(inputs), targets);
}

}  // namespace tg::models

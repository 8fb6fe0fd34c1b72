// Tagger: a label for every token.  Embeddings, a transformer encoder (relative-position
// attention by default) and a per-token classifier.
//   ids: (B, T), 0 = padding  ->  logits (B, T, tags)
#pragma once

#include <memory>

#include "../nn/conv1d.hpp"
#include "../nn/dropout.hpp"
#include "../nn/embedding.hpp"
#include "../nn/linear.hpp"
#include "../nn/positional.hpp"
#include "../nn/subword_embedding.hpp"
#include "../nn/transformer.hpp"
#include "blocks.hpp"

namespace tg::models {

struct TaggerOptions {
  std::size_t vocab = 0;  // word ids; 0 is padding
  std::size_t tags = 0;
  std::size_t d_model = 128, heads = 4, ff = 512, layers = 2;
  double dropout = 0.2;
  nn::PositionScheme positions = nn::PositionScheme::relative;
  std::size_t relative_k = 8;   // for PositionScheme::relative
  std::size_t max_len = 512;    // for PositionScheme::learned
  // > 0: hashed subword features (subword_ids in data.hpp) pooled by an nn::SubwordEmbedding
  // and added to the word embedding; lets the model tag unseen words.
  std::size_t subword_buckets = 1 << 15;
  std::vector<std::size_t> subword_groups = {1, 4, 19};  // SubwordOptions::groups(); empty: one pool
  // > 0: a convolution of this width over the word vectors before the encoder (add_neighbours).
  std::size_t conv_width = 5;

  // The options a model file stores (models/model_file.hpp); subword_groups comes from the
  // file's SubwordOptions.
  template <class F>
  void fields(F&& f) {
    f("vocab", vocab), f("tags", tags), f("d_model", d_model), f("heads", heads), f("ff", ff), f("layers", layers);
    f("dropout", dropout), f("positions", positions), f("relative_k", relative_k), f("max_len", max_len);
    f("subword_buckets", subword_buckets), f("conv_width", conv_width);
  }
};

class Tagger : public nn::Module {
 public:
  Tagger(const TaggerOptions& options, Generator& gen);

  // ids: (B, T) -> logits (B, T, tags); subwords: (B, T, K) feature ids, 0 = none (needed
  // when options.subword_buckets > 0).  `weights`, if given, receives each layer's attention.
  Tensor forward(const Ids& ids, const Ids* subwords = nullptr, std::vector<Tensor>* weights = nullptr);
  // Mean cross-entropy over the tags of real tokens (tags: (B, T), -100 at padding).
  Tensor loss(const Ids& ids, const Ids& tags, const Ids* subwords = nullptr);

  const TaggerOptions& options() const { return options_; }

  nn::Embedding embed;
  std::unique_ptr<nn::SubwordEmbedding> subword_embed;  // when subword_buckets > 0
  std::unique_ptr<nn::Conv1d> conv;                  // when conv_width > 0
  std::unique_ptr<nn::PositionalEncoding> positions;  // absolute schemes only
  nn::Encoder encoder;
  nn::Linear head;

 private:
  TaggerOptions options_;
  nn::Dropout drop_;
};

}  // namespace tg::models

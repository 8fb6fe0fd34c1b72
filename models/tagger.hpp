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

namespace tg::models {

struct TaggerOptions {
  std::size_t vocab = 0;  // word ids; 0 is padding
  std::size_t tags = 0;
  std::size_t d_model = 128, heads = 4, ff = 512, layers = 2;
  double dropout = 0.1;
  nn::PositionScheme positions = nn::PositionScheme::relative;
  std::size_t relative_k = 16;  // for PositionScheme::relative
  std::size_t max_len = 512;    // for PositionScheme::learned
  // > 0: hashed subword features (subword_ids in data.hpp) pooled by an nn::SubwordEmbedding
  // and added to the word embedding; lets the model tag unseen words.
  std::size_t subword_buckets = 0;
  std::vector<std::size_t> subword_groups;  // SubwordOptions::groups(); empty: one pool
  // > 0: a convolution of this width over the word vectors before the encoder (add_neighbours).
  std::size_t conv_width = 0;
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

// The key padding mask (B, 1, 1, T) of ids (B, T): true where the id is not 0.
Mask key_padding_mask(const Ids& ids);

// Word embeddings of ids (B, T), plus the pooled subword features (B, T, K) when the model has a
// subword table (then `subword_ids` must be given, matching ids): (B, T, C).  `who` names the
// model in errors.
Tensor embed_words(nn::Embedding& words, nn::SubwordEmbedding* subwords, const Ids& ids, const Ids* subword_ids,
                   const char* who);

// x + dropout(relu(conv(x))) for word vectors x (B, T, C) of ids (B, T): each word gets a mix of its
// neighbours ("not good") before attention mixes the whole sentence.  Padded steps (id 0) are
// read as zeros, so a sentence's result does not depend on the padding after it.
Tensor add_neighbours(nn::Conv1d& conv, nn::Dropout& drop, const Tensor& x, const Ids& ids);

}  // namespace tg::models

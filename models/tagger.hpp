// Tagger: a label for every token.  The sentence encoder (blocks.hpp: embeddings with subword
// features, a convolution, a transformer with relative-position attention by default) and a
// per-token classifier.
//   ids: (B, T), 0 = padding  ->  logits (B, T, tags)
#pragma once

#include "blocks.hpp"

namespace tg::models {

struct TaggerOptions {
  SentenceEncoderOptions encoder;  // relative positions by default
  std::size_t tags = 0;

  // The options a model file stores (model_file.hpp).
  template <class F>
  void fields(F&& f) {
    encoder.fields(f);
    f("tags", tags);
  }
};

class Tagger : public SentenceModel<TaggerOptions> {
 public:
  Tagger(const TaggerOptions& options, Generator& gen);

  // ids: (B, T) -> logits (B, T, tags); subwords: (B, T, K) feature ids, 0 = none (needed
  // when options.encoder.subword_buckets > 0).  `weights`, if given, receives each layer's
  // attention.
  Tensor forward(const Ids& ids, const Ids* subwords = nullptr,
                 std::vector<Tensor>* weights = nullptr);
  // Mean cross-entropy over the tags of real tokens (tags: (B, T), -100 at padding).
  Tensor loss(const Ids& ids, const Ids& tags, const Ids* subwords = nullptr);
};

}  // namespace tg::models

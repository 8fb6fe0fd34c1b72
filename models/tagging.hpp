// A trained tagger with everything needed to use it: the word input (vocabulary, subword
// features), the tag set, and one tagger or an ensemble predicting together.  Saved as, and
// loaded from, a model file of kind "tagger" (what `tapegrad-tagger train` writes).
//
//   auto tagger = models::TaggingPipeline::load("tagger.npz");
//   auto tags = tagger->predict({{"The", "old", "man", "the", "boat", "."}});   // tag ids
//   tagger->tags().word(tags[0][1])                                             // "NOUN"
#pragma once

#include <string>
#include <vector>

#include "tagger.hpp"
#include "word_pipeline.hpp"

namespace tg::models {

class TaggingPipeline : public WordPipeline<TaggingPipeline, Tagger> {
 public:
  static constexpr const char* kKind = "tagger";
  static constexpr const char* kLabels = "vocab/tags";
  static void with_labels(TaggerOptions& o, std::size_t n) { o.tags = n; }
  using WordPipeline::WordPipeline;

  // The members' mean cross-entropy over the tags of real tokens.  In training, words become
  // unknown with probability word_dropout, and rare words by rare-word dropout (alpha).
  Tensor loss(const std::vector<const Words*>& sentences, const std::vector<const Words*>& gold,
              double word_dropout = 0, double rare_word_dropout = 0);
  // The best tag (by the members' mean probability) of every word.  `weights`, if given,
  // receives the first member's attention (one (B, H, T, T) per layer) for the first batch.
  std::vector<std::vector<std::int64_t>> predict(const std::vector<Words>& sentences,
                                                 std::vector<Tensor>* weights = nullptr) const;

  const Vocab& tags() const { return labels_; }
};

}  // namespace tg::models

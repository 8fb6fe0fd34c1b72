// A trained tagger with everything needed to use it: the word input (vocabulary, subword
// features), the tag set, and one tagger or an ensemble predicting together.  Saved as, and
// loaded from, a model file of kind "tagger" (what `tapegrad-tagger train` writes).
//
//   auto tagger = models::TaggingPipeline::load("tagger.npz");
//   auto tags = tagger->predict({{"The", "old", "man", "the", "boat", "."}});   // tag ids
//   tagger->tags().word(tags[0][1])                                             // "NOUN"
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ensemble.hpp"
#include "tagger.hpp"
#include "word_input.hpp"

namespace tg::models {

class TaggingPipeline {
 public:
  static constexpr const char* kKind = "tagger";

  // A new, untrained ensemble of `members` taggers; options.vocab, tags and the subword
  // settings are taken from `input` and `tags`.
  TaggingPipeline(WordInput input, Vocab tags, TaggerOptions options, std::size_t members, std::uint64_t seed);
  static std::unique_ptr<TaggingPipeline> load(const std::string& path);
  // Writes the model file; `command` (the command line that trained it) goes into it.
  void save(const std::string& path, const std::string& command = "") const;

  // The members' mean cross-entropy over the tags of real tokens.  In training, words become
  // unknown with probability word_dropout, and rare words by rare-word dropout (alpha).
  Tensor loss(const std::vector<const Words*>& sentences, const std::vector<const Words*>& gold,
              double word_dropout = 0, double rare_word_dropout = 0);
  // The best tag (by the members' mean probability) of every word.  `weights`, if given,
  // receives the first member's attention (one (B, H, T, T) per layer) for the first batch.
  std::vector<std::vector<std::int64_t>> predict(const std::vector<Words>& sentences,
                                                 std::vector<Tensor>* weights = nullptr) const;

  const WordInput& input() const { return input_; }
  const Vocab& tags() const { return tags_; }
  Ensemble<Tagger>& net() { return *net_; }
  const Ensemble<Tagger>& net() const { return *net_; }
  Generator& gen() { return gen_; }  // dropout's draws (a training checkpoint saves it)

 private:
  Generator gen_;
  WordInput input_;
  Vocab tags_;
  std::unique_ptr<Ensemble<Tagger>> net_;
};

}  // namespace tg::models

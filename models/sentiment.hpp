// A trained sentence classifier with everything needed to use it: the word input (vocabulary,
// subword features), the labels, and one classifier or an ensemble predicting together.  Saved
// as, and loaded from, a model file of kind "sentiment" (what `tapegrad-sentiment train` writes).
//
//   auto classifier = models::SentimentPipeline::load("sentiment.npz");
//   auto probs = classifier->predict({{"a", "gorgeous", ",", "witty", "movie"}});   // (N, classes)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "classifier.hpp"
#include "ensemble.hpp"
#include "word_input.hpp"

namespace tg::models {

class SentimentPipeline {
 public:
  static constexpr const char* kKind = "sentiment";

  // A new, untrained ensemble of `members` classifiers; options.vocab, classes and the subword
  // settings are taken from `input` and `labels`.
  SentimentPipeline(WordInput input, Vocab labels, ClassifierOptions options, std::size_t members,
                    std::uint64_t seed);
  static std::unique_ptr<SentimentPipeline> load(const std::string& path);
  void save(const std::string& path, const std::string& command = "") const;

  // Member k's cross-entropy on its batch; a label of "" is ignored (an example outside the
  // member's bag).  In training, words become unknown with probability word_dropout.
  Tensor member_loss(std::size_t k, const std::vector<const Words*>& sentences,
                     const std::vector<const std::string*>& labels, double word_dropout = 0);
  // Class probabilities (N, classes) of each sentence: the members' mean (none for an empty
  // sentence).  `weights`, if
  // given, receives the first member's attention for the first batch.
  std::vector<std::vector<double>> predict(const std::vector<Words>& sentences,
                                           std::vector<Tensor>* weights = nullptr) const;

  const WordInput& input() const { return input_; }
  const Vocab& labels() const { return labels_; }
  Ensemble<Classifier>& net() { return *net_; }
  const Ensemble<Classifier>& net() const { return *net_; }
  Generator& gen() { return gen_; }

 private:
  Generator gen_;
  WordInput input_;
  Vocab labels_;
  std::unique_ptr<Ensemble<Classifier>> net_;
};

}  // namespace tg::models

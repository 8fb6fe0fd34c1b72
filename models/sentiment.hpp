// A trained sentence classifier with everything needed to use it: the word input (vocabulary,
// subword features), the labels, and one classifier or an ensemble predicting together.  Saved
// as, and loaded from, a model file of kind "sentiment" (what `tapegrad-sentiment train` writes).
//
//   auto classifier = models::SentimentPipeline::load("sentiment.npz");
//   auto probs = classifier->predict({{"a", "gorgeous", ",", "witty", "movie"}});   // (N, classes)
#pragma once

#include <string>
#include <vector>

#include "classifier.hpp"
#include "word_pipeline.hpp"

namespace tg::models {

class SentimentPipeline : public WordPipeline<SentimentPipeline, Classifier> {
 public:
  static constexpr const char* kKind = "sentiment";
  static constexpr const char* kLabels = "vocab/labels";
  static void with_labels(ClassifierOptions& o, std::size_t n) { o.classes = n; }
  using WordPipeline::WordPipeline;

  // Member k's cross-entropy on its batch; a label of "" is ignored (an example outside the
  // member's bag).  In training, words become unknown with probability word_dropout.
  Tensor member_loss(std::size_t k, const std::vector<const Words*>& sentences,
                     const std::vector<const std::string*>& labels, double word_dropout = 0);
  // Class probabilities (N, classes) of each sentence: the members' mean (none for an empty
  // sentence).  `weights`, if given, receives the first member's attention for the first batch.
  std::vector<std::vector<double>> predict(const std::vector<Words>& sentences,
                                           std::vector<Tensor>* weights = nullptr) const;
};

}  // namespace tg::models

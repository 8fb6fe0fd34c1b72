// Trained models with everything needed to use them: the word input (vocabulary, subword
// features), the label set, and one model or an ensemble predicting together.  Each is saved
// as, and loaded from, a model file (what the programs' `train` writes).
//
//   auto tagger = models::TaggingPipeline::load("tagger.npz");
//   auto tags = tagger->predict({{"The", "old", "man", "the", "boat", "."}});   // tag ids
//   tagger->tags().word(tags[0][1])                                             // "NOUN"
//
//   auto classifier = models::SentimentPipeline::load("sentiment.npz");
//   auto probs = classifier->predict({{"a", "gorgeous", ",", "witty", "movie"}});   // (N, classes)
#pragma once

#include "classifier.hpp"
#include "tagger.hpp"
#include "word_pipeline.hpp"

namespace tg::models {

// Part-of-speech tagging: a tag for every word (tapegrad-tagger).
class TaggingPipeline : public WordPipeline<TaggingPipeline, Tagger> {
 public:
  static constexpr FileNames kFile{"tagger", "vocab/tags"};
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

// Sentence classification: a label for every sentence (tapegrad-sentiment).
class SentimentPipeline : public WordPipeline<SentimentPipeline, Classifier> {
 public:
  static constexpr FileNames kFile{"sentiment", "vocab/labels"};
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

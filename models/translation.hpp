// A trained translator with everything needed to use it: the source and target vocabularies,
// whether it reads and writes lowercase, the subword model when its vocabularies hold pieces
// rather than words (models/data/subword_vocab.hpp), and the encoder-decoder.  Saved as, and loaded
// from, a model file of kind "translator" (what `tapegrad-translate train` writes).
//
//   auto t = models::TranslationPipeline::load("translator.npz");
//   t->translate_lines({"Ein Hund läuft im Schnee."}, {.beam = 4})   // {"A dog runs in the snow."}
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/subword_vocab.hpp"
#include "data/vocab.hpp"
#include "search.hpp"
#include "translator.hpp"

namespace tg::models {

using Words = std::vector<std::string>;

// Scheduled sampling's share of gold tokens at training step i: the inverse sigmoid decay of
// Bengio et al. 2015, k / (k + exp(i / k)), from about 1 down to 0 (k >= 1; larger k: slower).
double gold_share(std::size_t step, double k);
// The decoder's inputs for the second pass: position 0 (BOS) and padding as they are; every
// other position t keeps tgt_in[t] with probability gold_share, else takes predicted[t - 1]
// (the first pass's guess of the token at t).  tgt_in, predicted: (B, T).
Ids mix_inputs(const Ids& tgt_in, const Ids& predicted, double gold_share, Generator& gen);

// A non-autoregressive translator's training inputs, the conditional masked language model's
// (Ghazvininejad et al. 2019): in each row of tgt (B, T), 0 = padding, a count n is drawn
// uniformly from 1 .. the row's length, and n of its positions, drawn without replacement,
// become `mask`.  gold holds the token at the masked positions and 0 elsewhere.
struct MaskedTargets {
  Ids input, gold;
};
MaskedTargets mask_targets(const Ids& tgt, std::int64_t mask, Generator& gen);

// Minimum risk training (Shen et al. 2016) of a translator: see TranslationPipeline::mrt_loss.
struct MrtOptions {
  std::size_t samples = 8;   // candidates drawn per sentence (duplicates count once)
  double alpha = 0.005;      // the sharpness of the model's distribution over the candidates
  SamplingOptions sampling;  // how candidates are drawn (seed: set per step by mrt_loss)
};

class TranslationPipeline {
 public:
  static constexpr const char* kKind = "translator";
  // The target vocabulary starts <pad> <unk> <s> </s>, and <mask> for a non-autoregressive model.
  static constexpr std::int64_t kBos = 2, kEos = 3, kMask = 4;

  // A new, untrained translator; options.src_vocab and tgt_vocab are taken from the vocabularies.
  // With `subwords`, the vocabularies hold its pieces, and tokenize() splits words into them.
  TranslationPipeline(Vocab source, Vocab target, bool lower, TranslatorOptions options,
                      std::uint64_t seed, std::optional<SubwordVocab> subwords = std::nullopt);
  // A model file, in evaluation mode.  Its options keep the dropout it was trained with, which
  // acts again once the model is put in training mode (train --init goes on training it).
  static std::unique_ptr<TranslationPipeline> load(const std::string& path);
  void save(const std::string& path, const std::string& command = "") const;

  // The tokeniser input goes through (lowercasing when the model does), then the subword
  // model if there is one: a line -> the tokens the model reads (words or pieces).
  Words tokenize(const std::string& line) const;
  // Words -> the tokens the model reads: the words themselves, or their pieces.
  Words tokens_of(const Words& words) const;
  // The model's output tokens -> words (pieces joined back into words).
  Words words_of(const Words& tokens) const;
  // Label-smoothed cross-entropy of a batch of tokenised pairs; in training, source words
  // become unknown with probability word_dropout.  A non-autoregressive model: the conditional
  // masked language model's loss with the length loss (mask_targets, Translator::nat_loss).
  // gold_share < 1: scheduled sampling, the two-pass form of Mihaylova and Martins 2019 -- a first,
  // teacher-forced pass (no gradient) predicts every position, and the second pass reads each
  // target token as given with probability gold_share, else the first pass's prediction of it.
  Tensor loss(const std::vector<const Words*>& sources, const std::vector<const Words*>& targets,
              double word_dropout = 0, double gold_share = 1);
  // Minimum risk training's loss of a batch: `samples` candidates per sentence drawn from the
  // model (in evaluation mode, no gradient), each costing 1 - sentence BLEU+1 against its
  // reference (on words: pieces are joined back first), and the expected cost under the model's
  // probabilities of the candidates,
  // renormalised over them and sharpened by alpha (nn::minimum_risk_loss).  The draws come
  // from the pipeline's generator.  Sentences with an empty source or reference are skipped.
  Tensor mrt_loss(const std::vector<const Words*>& sources,
                  const std::vector<const Words*>& references, const MrtOptions& options);
  // Translations of tokenised sentences, as target tokens (search.bos, eos and mask are set
  // here): beam or greedy search, or mask-predict for a non-autoregressive model.
  std::vector<Words> translate(const std::vector<Words>& sentences, SearchOptions search) const;
  // `count` samples of each tokenised sentence (sample_search), as target tokens.
  std::vector<std::vector<Words>> sample(const std::vector<Words>& sentences, SearchOptions search,
                                         const SamplingOptions& sampling, std::size_t count) const;
  // Lines of text in, lines of text out ("" for an empty line).
  std::vector<std::string> translate_lines(const std::vector<std::string>& lines,
                                           const SearchOptions& search) const;
  // Output tokens (words or pieces) as text; a lowercasing model's sentences get their first
  // letter back.
  std::string text_of(const Words& words) const;
  // Cross-attention of decoder layer `layer` (mean over heads) while the decoder reads `target`
  // after `source`: one row per target token (+ the end, for an autoregressive model), one column
  // per source token.  A non-autoregressive model reads the whole finished output, no token
  // masked (mask-predict's last pass masked some), and an empty target as one mask token.
  std::vector<std::vector<double>> cross_attention(const Words& source, const Words& target,
                                                   std::size_t layer) const;

  const Vocab& source_vocab() const { return source_; }
  const Vocab& target_vocab() const { return target_; }
  bool lower() const { return lower_; }
  const std::optional<SubwordVocab>& subwords() const { return subwords_; }
  Translator& model() { return *model_; }
  const Translator& model() const { return *model_; }
  Generator& gen() { return gen_; }

 private:
  Ids source_ids(const std::vector<const Words*>& sentences) const;

  Generator gen_;
  Vocab source_, target_;
  bool lower_ = true;
  std::optional<SubwordVocab> subwords_;
  std::unique_ptr<Translator> model_;
};

}  // namespace tg::models

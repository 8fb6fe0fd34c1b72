// Training a translator on aligned text files, as `tapegrad-translate train` does, for any
// program: the files, the data read and cut into the tokens the model reads, a new translator
// made for the data (word or subword vocabularies) or one read to go on training, and the
// training loop's Task (cross-entropy, scheduled sampling or minimum risk training; dev BLEU by
// greedy search after each epoch).
//
//   models::ParallelFiles files;
//   files.in_folder("data/multi30k", "de", "en");
//   auto data = models::TranslationData::read(files, /*lower=*/true);
//   auto t = models::prepare_translator(data, nullptr, {.options = {.dropout = 0.3},
//   .subword_pieces = 8000}); nn::Task task = models::translation_task(*t, data, {}, 2000, 1);
//   nn::train(task, {.epochs = 30, .out = "translator.npz", .metric_name = "BLEU", .metric_percent
//   = false});
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../nn/training/loop.hpp"
#include "data/readers.hpp"
#include "translation.hpp"

namespace tg::models {

// The aligned files a translator trains on: each training source line's translation is the
// same line of the target file; the development pair scores it (BLEU).
struct ParallelFiles {
  std::string train_source, train_target, dev_source, dev_target;
  // A folder's train.SRC, train.TGT, val.SRC and val.TGT (Multi30k's names): the unset ones.
  void in_folder(const std::string& dir, const std::string& source_lang,
                 const std::string& target_lang);
};

// A translator's training data.  read() gives the words; tokenize() the tokens the model reads
// (the words, or their subword pieces) and the lengths the batches are cut by.
struct TranslationData {
  std::vector<Words> sources, targets;  // training pairs: words, then tokens
  std::vector<std::size_t> lengths;     // a pair's padded length in a batch: max(S, T + 1)
  std::vector<std::size_t> tokens;      // its real tokens, S + T + 1 (the progress line's tokens/s)
  std::vector<std::string> dev_sources, dev_references;  // lines, as BLEU scores them
  std::string train_source;                              // the file line numbers in errors refer to

  // The training pairs tokenised (lowercased when `lower`; malformed pairs skipped with their
  // line if `bad` says so) and the development lines as they are.
  static TranslationData read(const ParallelFiles& files, bool lower, BadLines* bad = nullptr);
  // Splits every word into `subwords`' pieces (none: the words stay tokens), measures each pair,
  // and checks that it fits the model's max_len (a DataError naming the pair's line).
  void tokenize(const std::optional<SubwordVocab>& subwords, std::size_t max_len);
  // What a batch's cross-entropy is a mean over: its target tokens, each sentence's end included.
  double target_tokens(const std::vector<std::size_t>& batch) const;
};

// How a new translator is made for its data.
struct TranslatorRecipe {
  TranslatorOptions options;  // vocabulary sizes come from the data
  bool lower = true;          // the model reads and writes lowercase
  std::size_t subword_pieces =
      0;  // > 0: one SentencePiece model of this many pieces, trained on both sides' words
  std::size_t min_count =
      1;  // word vocabularies: words seen fewer times are unknown (pieces: all kept)
  std::uint64_t seed = 1;  // initial weights and dropout
};

// The translator to train, with `data` (as read) tokenised for it: `initial` (a model file read
// to go on training, whose subword model and max_len decide), or else a new one made by `recipe`
// -- its subword model trained on the data's words, its vocabularies the data's tokens.
std::unique_ptr<TranslationPipeline> prepare_translator(
    TranslationData& data, std::unique_ptr<TranslationPipeline> initial,
    const TranslatorRecipe& recipe);

// What the translator learns from (tapegrad-translate train's --objective and its settings).
struct TranslationObjective {
  bool minimum_risk =
      false;  // MRT on sentence BLEU (TranslationPipeline::mrt_loss) instead of cross-entropy
  MrtOptions mrt;
  double word_dropout = 0;  // cross-entropy: source words become unknown with this probability
  double scheduled_k = 0;   // cross-entropy: > 0, scheduled sampling with gold_share(step, k)
};

// The training loop's Task for `t` on tokenised `data`: batches of about `batch_tokens` padded
// tokens shuffled from `seed`, the objective's loss, dev BLEU by greedy search (a non-
// autoregressive model: mask-predict of one length), and the model file with `command` in it.
// t and data must outlive the task.
nn::Task translation_task(TranslationPipeline& t, const TranslationData& data,
                          const TranslationObjective& objective, std::size_t batch_tokens,
                          std::uint64_t seed, const std::string& command = "");

}  // namespace tg::models

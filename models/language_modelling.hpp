// A trained language model with everything needed to use it: the tokens it reads text in
// (characters, or SentencePiece pieces: models/data/text_vocab.hpp) and the decoder-only
// transformer (language_model.hpp).
// Saved as, and loaded from, a model file of kind "language_model" (what `tapegrad-lm train`
// writes).  What it does with text:
//
//   auto lm = models::LanguageModelPipeline::load("lm.npz");
//   const auto ids = lm->encode(models::read_text("valid.txt"), "valid.txt");
//   lm->evaluate(ids, {.context = 256, .stride = 128}).bits_per_char     // 2.1
//   lm->generate(U"ROMEO:", {.tokens = 200, .sampling = {.top_k = 10}}).text
//
// and the training loop's Task, whose batches are random windows of the training text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../nn/training/loop.hpp"
#include "data/text_vocab.hpp"
#include "language_model.hpp"
#include "search.hpp"

namespace tg::models {

// How evaluate() reads a text: windows of `context` tokens (0: the model's trained context)
// that start `stride` tokens apart (0: `context`, windows that do not overlap).  Every token
// but the first is scored once: the first window scores all of its tokens, each later one only
// the tokens after the previous window's, so that with a stride below the context each token
// is read with at least context - stride tokens before it.  The last window ends at the text's
// end (it may overlap the one before more).
struct EvalOptions {
  std::size_t context = 0, stride = 0;
  std::size_t batch_tokens = 8192;  // windows run together, about this many tokens
};

struct Evaluation {
  double nats_per_token = 0;   // the mean of -ln p(token | the tokens before it in its window)
  double bits_per_char = 0;    // the same summed in bits and divided by the characters scored
  std::size_t tokens = 0;      // scored: the text's length - 1
  std::size_t characters = 0;  // those tokens' characters (= tokens where characters are tokens)
  std::size_t windows = 0;
  std::size_t context = 0, stride = 0;  // as used
};

struct GenerateOptions {
  std::size_t tokens = 256;  // how many to write
  SamplingOptions sampling;  // temperature, top-k, nucleus; the seed
  // With the key/value cache, each token costs one position; without it, a pass over all the
  // text it reads (the same distribution, for measuring what the cache saves).
  bool cache = true;
  // The most tokens the model reads at once (0: the context it was trained on, as nanoGPT crops
  // to its block size): past that, positions it never trained at would blur its text.
  std::size_t window = 0;
};

struct Generation {
  std::u32string text;  // the tokens written (after the prompt), as text
  double seconds = 0;   // writing them (the prompt's pass included)
};

class LanguageModelPipeline {
 public:
  static constexpr const char* kKind = "language_model";

  // A new, untrained model; options.vocab is taken from the vocabulary.
  LanguageModelPipeline(TextVocab vocab, LanguageModelOptions options, std::uint64_t seed);
  // The model's modules hold on to the generator: a pipeline stays where it was made.
  LanguageModelPipeline(const LanguageModelPipeline&) = delete;
  LanguageModelPipeline& operator=(const LanguageModelPipeline&) = delete;
  // A model file, in evaluation mode (its dropout acts again in training mode).
  static std::unique_ptr<LanguageModelPipeline> load(const std::string& path);
  void save(const std::string& path, const std::string& command = "") const;

  // Text -> token ids; a character the training text lacked is an error naming it and `what`.
  std::vector<std::int64_t> encode(const std::u32string& text, const std::string& what) const;

  // The mean cross-entropy of windows of `ids`: window b reads ids[s .. s + T - 1] and predicts
  // ids[s + 1 .. s + T] for s = starts[b], T = context.  -> ()
  Tensor loss(const std::vector<std::int64_t>& ids, const std::vector<std::size_t>& starts,
              std::size_t context);
  // The loss per token of a whole text (at least 2 tokens), read as EvalOptions says, in
  // evaluation mode.  A context the positions cannot read is an error naming the scheme and its
  // limit.
  Evaluation evaluate(const std::vector<std::int64_t>& ids, const EvalOptions& options) const;
  // `options.tokens` tokens drawn one after another after `prompt` (an empty prompt: a newline,
  // which the vocabulary must have).  The model reads at most `options.window` tokens (and no
  // more than its positions serve: a learned table's max_len): when the text reaches that, it
  // goes on from its last window / 2 tokens, read afresh.  Never <unk> (a vocabulary of pieces
  // has one).  Seeded: the same options write the same text.  In evaluation mode.
  Generation generate(const std::u32string& prompt, const GenerateOptions& options) const;

  const TextVocab& vocab() const { return vocab_; }
  LanguageModel& model() { return *model_; }
  const LanguageModel& model() const { return *model_; }
  Generator& gen() { return gen_; }  // dropout's draws (a training checkpoint saves it)

 private:
  Generator gen_;
  TextVocab vocab_;
  std::unique_ptr<LanguageModel> model_;
};

// How a language model trains: batches of `batch` windows of `context` + 1 tokens at random
// places in the training text, drawn from a generator seeded from (seed, epoch); an epoch is
// `steps` batches, after which the model is scored on the validation text (EvalOptions with the
// same context; the loop keeps the model of the lowest loss: TrainOptions::metric_is_loss).
struct WindowBatches {
  std::size_t context = 64, batch = 12, steps = 250;
  std::uint64_t seed = 1;
};
// The window starts of one epoch's batches (each in [0, N - context - 1], N = the text's length).
std::vector<std::vector<std::size_t>> random_windows(std::size_t text_length,
                                                     const WindowBatches& batches,
                                                     std::size_t epoch);

// nanoGPT's recipe for a small model on a CPU (tapegrad-lm's defaults): AdamW at 1e-3 with
// beta2 0.99, 100 steps of warm-up and a cosine decay to a tenth, weight decay 0.1 on matrices
// and tables only; the loop's metric is the validation loss.  Set epochs (an epoch is
// WindowBatches::steps) and the files.
nn::TrainOptions language_model_recipe();

// The training loop's Task for `lm` on token ids (the training and validation texts, which must
// outlive it, as must lm), and the model file with `command` in it.
nn::Task language_model_task(LanguageModelPipeline& lm, const std::vector<std::int64_t>& train,
                             const std::vector<std::int64_t>& valid, const WindowBatches& batches,
                             const std::string& command = "");

}  // namespace tg::models

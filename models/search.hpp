// Decoding a Translator: greedy search and beam search.  Each new token costs one decoder step:
// the decoder's key/value cache keeps the earlier positions (and the memory's projections).
//
//   sources: token ids of each source sentence (no padding)  ->  one Translation each
#pragma once

#include <cstdint>
#include <vector>

#include "translator.hpp"

namespace tg::models {

struct Translation {
  std::vector<std::int64_t> tokens;  // without BOS and EOS
  double log_prob = 0;               // of the tokens and the final EOS (if one was produced)
  bool finished = false;             // ended with EOS (not cut at the length limit)
};

struct SearchOptions {
  std::size_t beam = 4;  // 1: greedy
  double length_penalty =
      0.6;  // alpha: beams compare log_prob / ((5 + length) / 6)^alpha (Wu et al. 2016)
            // (non-autoregressive models: `beam` is the number of lengths tried)
  std::int64_t bos = 2, eos = 3;
  std::int64_t mask = 4;       // non-autoregressive models: the mask token
  std::size_t refine = 10;     // non-autoregressive models: mask-predict iterations (1: one pass)
  double max_len_ratio = 1.5;  // at most ratio * source length + extra tokens
  std::size_t max_len_extra = 10;
  std::size_t batch_sentences = 64;  // sentences decoded together (times `beam` rows)
};

// The most likely token at each step, until EOS or the length limit.
std::vector<Translation> greedy_search(Translator& model,
                                       const std::vector<std::vector<std::int64_t>>& sources,
                                       const SearchOptions& options);

// float32 logits (..., V) -> the log-probabilities of their r-th row of V, in double, in `out`.
void log_softmax_row(const Tensor& logits, std::size_t r, std::vector<double>& out);

// Sampling: each token drawn from the model's distribution, reshaped.
struct SamplingOptions {
  double temperature = 1.0;  // < 1 sharper, > 1 flatter: softmax(log p / temperature)
  std::size_t top_k = 0;     // > 0: only the k most likely tokens
  double top_p = 1.0;        // < 1: only the nucleus (Holtzman et al. 2020), see nucleus()
  std::uint64_t seed = 1;    // sentence i draws from a generator seeded from (seed, i)
};
// The nucleus of a distribution: the smallest set of most likely tokens whose probabilities
// reach p, most likely first (ties by id).
std::vector<std::size_t> nucleus(const std::vector<double>& probs, double p);
// The distribution a step draws from, given the model's log-probabilities: tempered, cut to
// the top k, then to the nucleus of top p, renormalised (0 for the tokens cut).
std::vector<double> sampling_distribution(const std::vector<double>& logp,
                                          const SamplingOptions& options);
// A token drawn from probs (summing to 1).
std::size_t draw(const std::vector<double>& probs, Generator& gen);
// Each token drawn from sampling_distribution, until EOS or the length limit.  For several
// samples of one sentence, pass it several times (each copy is its own sentence i).
std::vector<Translation> sample_search(Translator& model,
                                       const std::vector<std::vector<std::int64_t>>& sources,
                                       const SearchOptions& options,
                                       const SamplingOptions& sampling);

// Keeps the `beam` best partial translations of each sentence; a sentence is done when `beam`
// translations have ended (EOS among the `beam` best candidates of a step) or at the length
// limit; the best by length-penalised score wins.  With beam 1 this is greedy search.
std::vector<Translation> beam_search(Translator& model,
                                     const std::vector<std::vector<std::int64_t>>& sources,
                                     const SearchOptions& options);

// ---- non-autoregressive decoding -------------------------------------------------------------

// Mask-predict (Ghazvininejad et al. 2019) for a non-autoregressive model.  For each sentence the
// `beam` most likely lengths (a length beam) are decoded side by side: every position starts as
// the mask token and one pass predicts them all; then for iterations t = 1 .. refine - 1 the
// n = L (refine - t) / refine least confident tokens are masked again and re-predicted, the others
// kept.  The candidate with the best mean log-probability wins.  Predictions never are padding,
// BOS, EOS or the mask token.  Translation::log_prob is the sum of the chosen tokens' log-probs.
std::vector<Translation> mask_predict(Translator& model,
                                      const std::vector<std::vector<std::int64_t>>& sources,
                                      const SearchOptions& options);
// The n positions of lowest log-probability (ties: the earlier position first), in increasing
// position order: which tokens a mask-predict iteration masks again.
std::vector<std::size_t> least_confident(const std::vector<double>& log_probs, std::size_t n);

}  // namespace tg::models

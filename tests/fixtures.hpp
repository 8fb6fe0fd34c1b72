// Data and models that several test files share.  For this tree's tests only: the helpers a
// project outside it may use too are in testing.hpp, which is installed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace fixtures {

// Token ids (B, T) from B rows of ids, each padded with 0 (the padding id) to the longest row
// (T is at least 1).
inline tg::Ids make_ids(const std::vector<std::vector<std::int64_t>>& rows) {
  std::size_t T = 1;
  for (const auto& r : rows) T = std::max(T, r.size());
  tg::Ids ids = xt::zeros<std::int64_t>({rows.size(), T});
  for (std::size_t b = 0; b < rows.size(); ++b)
    for (std::size_t t = 0; t < rows[b].size(); ++t) ids(b, t) = rows[b][t];
  return ids;
}

// Tagging on a toy language: 48 sentences of 2 to `longest` words drawn from six, each word's
// tag its class (DET, NOUN, VERB), so a tagger can learn it exactly.
struct ToyTagging {
  std::vector<tg::models::Words> words, tags;
  std::vector<std::size_t> lengths;  // of each sentence, in words

  explicit ToyTagging(std::size_t longest) {
    const std::vector<std::string> w = {"the", "a", "dog", "cat", "runs", "sleeps"};
    const std::vector<std::string> t = {"DET", "DET", "NOUN", "NOUN", "VERB", "VERB"};
    tg::Generator gen(1);
    for (int i = 0; i < 48; ++i) {
      words.emplace_back(), tags.emplace_back();
      for (std::size_t j = 0, n = 2 + gen.below(longest - 1); j < n; ++j) {
        const std::size_t k = gen.below(w.size());
        words.back().push_back(w[k]), tags.back().push_back(t[k]);
      }
      lengths.push_back(words.back().size());
    }
  }

  // The tagger's loss on the sentences numbered in `batch`.
  tg::Tensor loss(tg::models::TaggingPipeline& tagger,
                  const std::vector<std::size_t>& batch) const {
    std::vector<const tg::models::Words*> ws, ts;
    for (std::size_t i : batch) ws.push_back(&words[i]), ts.push_back(&tags[i]);
    return tagger.loss(ws, ts);
  }
};

// A small tagger for it: one layer of width 16, its vocabulary built from the sentences.
inline std::unique_ptr<tg::models::TaggingPipeline> toy_tagger(const ToyTagging& toy) {
  return std::make_unique<tg::models::TaggingPipeline>(
      tg::models::WordInput{tg::models::Vocab::build(toy.words, 1, false),
                            tg::models::SubwordOptions{.buckets = 0}},
      tg::models::Vocab::closed({"DET", "NOUN", "VERB"}),
      tg::models::TaggerOptions{
          .encoder =
              {.d_model = 16, .heads = 2, .ff = 32, .layers = 1, .dropout = 0.0, .conv_width = 0}},
      1, 3);
}

}  // namespace fixtures

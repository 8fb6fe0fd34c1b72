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

// A small translator's options on 12 ids (one layer of width 16, no dropout); tests start from
// it and change the fields they study.
// Label smoothing stays at its default, 0.1.
inline tg::models::TranslatorOptions small_translator() {
  tg::models::TranslatorOptions o;
  o.src_vocab = o.tgt_vocab = 12;
  o.d_model = 16, o.heads = 2, o.ff = 32, o.layers = 1;
  o.dropout = 0.0;
  o.max_len = 16;
  return o;
}

// A translator that can learn to reverse sequences of up to 6 symbols from `vocab` ids: two
// layers of width 64, no dropout or label smoothing, positions up to 16 read by an MLP as
// position / 4.
inline tg::models::TranslatorOptions reverser_translator(std::size_t vocab) {
  tg::models::TranslatorOptions o = small_translator();
  o.src_vocab = o.tgt_vocab = vocab;
  o.d_model = 64, o.heads = 4, o.ff = 128, o.layers = 2;
  o.label_smoothing = 0.0;
  o.mlp_scale = 4;
  return o;
}

// A small tagger's options: `vocab` word ids, `tags` tags, one layer of width 8, no dropout,
// relative positions up to 2 apart, no subwords and no convolution; tests change what they study.
inline tg::models::TaggerOptions small_tagger(std::size_t vocab, std::size_t tags) {
  return {.encoder = {.vocab = vocab,
                      .d_model = 8,
                      .heads = 2,
                      .ff = 12,
                      .layers = 1,
                      .dropout = 0.0,
                      .relative_k = 2,
                      .subword_buckets = 0,
                      .subword_groups = {},
                      .conv_width = 0},
          .tags = tags};
}

}  // namespace fixtures

// Hashed subword features (shape, suffixes, character n-grams) for words a vocabulary lacks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tg::models {

// Hashed subword features that let a model see inside words (fastText-style): the word's shape
// (capitals, digits, punctuation: "Xx", "dd.d"), and the character n-grams (n = 2..5) of
// "<word>" in lowercase.  Each feature hashes to one of `buckets` ids (0 is padding).
//
// Grouped (the default): the features come in fixed slots, so that a model can pool each group
// on its own and add the groups -- the shape and the word's ending then count as much as all
// its n-grams together, instead of being thinned out among them:
//   slot 0: the shape;  slots 1-4: the last 1, 2, 3, 4 letters (lowercase; 0 when the word is
//   shorter);  slots 5...: the n-grams, shortest first.
// Not grouped (models saved before groups): the shape, then the n-grams, one pool.
struct SubwordOptions {
  std::size_t buckets = 1 << 15;
  std::size_t max_features = 24;  // per word, all slots (the longest n-grams are dropped first)
  bool grouped = true;
  static constexpr std::size_t kShapeSlots = 1, kSuffixSlots = 4;
  // The sizes of the groups for a model's pooling: {1, 4, the rest}, or {all} when not grouped.
  std::vector<std::size_t> groups() const;

  // The options a model file stores (nn/training/model_file.hpp).
  template <class F>
  void fields(F&& f) {
    f("subword_buckets", buckets), f("subword_features", max_features),
        f("subword_grouped", grouped);
  }
};
std::vector<std::int64_t> subword_ids(const std::string& word, const SubwordOptions& options);
}  // namespace tg::models

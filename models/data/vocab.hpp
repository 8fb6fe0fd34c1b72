// Word vocabularies (words <-> ids), and rare-word dropout for training.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../../autograd/runtime/generator.hpp"
#include "../../autograd/tensor.hpp"

namespace tg::models {

// A word vocabulary: id 0 is padding, id 1 the unknown word; the rest by frequency.
class Vocab {
 public:
  static constexpr std::int64_t kPad = 0, kUnk = 1;
  Vocab() = default;
  // Words seen at least min_count times (after lowercasing, if asked).  `specials` (such as
  // "<s>" and "</s>") take the ids after padding and the unknown word, 2, 3, ...
  static Vocab build(const std::vector<std::vector<std::string>>& sentences, std::size_t min_count,
                     bool lower, const std::vector<std::string>& specials = {});
  // A closed set (tags, labels): every entry is kept, in sorted order, with no pad or unknown.
  static Vocab closed(const std::vector<std::string>& items);

  std::int64_t id(const std::string& word) const;  // kUnk when unknown (throws if closed)
  // How often the word of `id` was seen by build() (0 for specials, and for vocabularies read
  // back from text, which keep no counts).
  std::size_t count(std::int64_t id) const;
  bool has_counts() const { return !counts_.empty(); }
  const std::string& word(std::int64_t id) const;
  std::size_t size() const { return words_.size(); }
  bool lower() const { return lower_; }

  // One entry a line (the first line holds the options), for saving inside a model file.
  std::string to_text() const;
  static Vocab from_text(const std::string& text, const std::string& where);

 private:
  std::vector<std::string> words_;
  std::vector<std::size_t> counts_;  // by id, from build() only
  std::map<std::string, std::int64_t> ids_;
  bool lower_ = false, closed_ = false;
};

// Rare-word dropout (Kiperwasser and Goldberg 2016), for training: each real word id becomes
// Vocab::kUnk with probability alpha / (alpha + its count in training).  Words seen once or
// twice -- the ones most like the unseen words of new text -- are often dropped, frequent words
// almost never, so a model learns to read rare words from their subword features.  Ids with no
// count (padding, the unknown word, specials) are left alone; the vocabulary must come from
// Vocab::build.
void drop_rare_words(Ids& ids, const Vocab& vocab, double alpha, Generator& gen);

// Word dropout, for training: each real word id (not padding) becomes Vocab::kUnk with
// probability p, so that a model learns to do without the word itself (from its subword
// features, or from the context).
void drop_words(Ids& ids, double p, Generator& gen);
}  // namespace tg::models

// Reading the example tasks' data, and turning words into ids.
//
// Formats (one reader each; a malformed line is reported with its file and line number):
//   CoNLL-U (UD treebanks): a token per line, 10 tab-separated columns, sentences separated by
//     blank lines; comment lines (#), multiword ranges (3-4) and empty nodes (8.1) are skipped.
//   sentence<TAB>label, with a header line (GLUE SST-2).
//   <label> <sentence> (SST in the "stsa" layout).
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "../autograd/generator.hpp"
#include "../autograd/tensor.hpp"

namespace tg::models {

// A problem in a data file: the message starts with "file:line: ".
class DataError : public std::runtime_error {
 public:
  DataError(const std::string& file, std::size_t line, const std::string& what)
      : std::runtime_error(file + ":" + std::to_string(line) + ": " + what) {}
};

// What a reader does with a malformed line: stop with its DataError (the default, `bad` null
// or skip false), or skip it -- with the sentence it belongs to -- and count it here.
struct BadLines {
  bool skip = false;
  std::size_t skipped = 0;
  std::vector<std::string> first;  // the first few messages, "file:line: what"
  void add(const std::string& message);
};

struct TaggedSentence {
  std::vector<std::string> words;
  std::vector<std::string> tags;  // UPOS
};

struct LabeledSentence {
  std::vector<std::string> words;
  std::string label;
};

// Every reader also rejects text that is not UTF-8.
std::vector<TaggedSentence> read_conllu(const std::string& path, BadLines* bad = nullptr);
std::vector<LabeledSentence> read_tsv(const std::string& path, BadLines* bad = nullptr);  // sentence<TAB>label + header
std::vector<LabeledSentence> read_label_first(const std::string& path, BadLines* bad = nullptr);  // <label> <sentence>
// Picks the sentiment reader from the file's first line: a "sentence<TAB>label" header, or not.
std::vector<LabeledSentence> read_labeled(const std::string& path, BadLines* bad = nullptr);

// Aligned files (translation): line i of one is the translation of line i of the other.  Each
// line is tokenised with tokenize() (text.hpp); empty lines and text that is not UTF-8 are
// errors naming the file and line (skipped with their pair if `bad` says so); files of
// different lengths always stop.
struct SentencePair {
  std::vector<std::string> source, target;
};
std::vector<SentencePair> read_parallel(const std::string& source_path, const std::string& target_path, bool lower,
                                        BadLines* bad = nullptr);
// The lines of a text file as they are (line endings removed), e.g. references for BLEU; a line
// that is not UTF-8 is a DataError.
std::vector<std::string> read_lines(const std::string& path);

std::vector<std::string> split_words(const std::string& text);  // on whitespace
std::string lowercase(const std::string& word);                 // ASCII letters; UTF-8 kept

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
};
std::vector<std::int64_t> subword_ids(const std::string& word, const SubwordOptions& options);

// Batches of sentences of similar length, in shuffled order: sentences are sorted by length
// inside windows of 50 batches, cut into batches of up to `batch_tokens` tokens (at most
// `max_batch` sentences), and the batches shuffled.  Returns sentence indices per batch.
std::vector<std::vector<std::size_t>> make_batches(const std::vector<std::size_t>& lengths,
                                                   std::size_t batch_tokens, std::size_t max_batch,
                                                   Generator* shuffle);

}  // namespace tg::models

// Readers of the tasks' data files; every reader also rejects text that is not UTF-8.
//
// Formats (one reader each; a malformed line is reported with its file and line number):
//   CoNLL-U (UD treebanks): a token per line, 10 tab-separated columns, sentences separated by
//     blank lines; comment lines (#), multiword ranges (3-4) and empty nodes (8.1) are skipped.
//   sentence<TAB>label, with a header line (GLUE SST-2).
//   <label> <sentence> (SST in the "stsa" layout).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace tg::models {

// A problem in a data file: the message starts with "file:line: " ("file: " for line 0, a
// problem with the whole file, such as "train.tsv: cannot open the file: No such file or
// directory").
class DataError : public std::runtime_error {
 public:
  DataError(const std::string& file, std::size_t line, const std::string& what)
      : std::runtime_error(where(file, line) + what) {}

 private:
  static std::string where(const std::string& file, std::size_t line) {
    return line ? file + ":" + std::to_string(line) + ": " : file + ": ";
  }
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

// The words of each sentence (TaggedSentence, LabeledSentence), and how many there are.
template <class Sentence>
std::vector<std::vector<std::string>> words_of(const std::vector<Sentence>& sentences) {
  std::vector<std::vector<std::string>> out;
  for (const auto& s : sentences) out.push_back(s.words);
  return out;
}
std::vector<std::size_t> lengths_of(const std::vector<std::vector<std::string>>& sentences);

// Every reader also rejects text that is not UTF-8.
std::vector<TaggedSentence> read_conllu(const std::string& path, BadLines* bad = nullptr);
std::vector<LabeledSentence> read_tsv(const std::string& path,
                                      BadLines* bad = nullptr);  // sentence<TAB>label + header
std::vector<LabeledSentence> read_label_first(const std::string& path,
                                              BadLines* bad = nullptr);  // <label> <sentence>
// Picks the sentiment reader from the file's first line: a "sentence<TAB>label" header, or not.
std::vector<LabeledSentence> read_labeled(const std::string& path, BadLines* bad = nullptr);

// Aligned files (translation): line i of one is the translation of line i of the other.  Each
// line is tokenised with tokenize() (text.hpp); empty lines and text that is not UTF-8 are
// errors naming the file and line (skipped with their pair if `bad` says so); files of
// different lengths always stop.
struct SentencePair {
  std::vector<std::string> source, target;
};
std::vector<SentencePair> read_parallel(const std::string& source_path,
                                        const std::string& target_path, bool lower,
                                        BadLines* bad = nullptr);
// The lines of a text file as they are (line endings removed), e.g. references for BLEU; a line
// that is not UTF-8 is a DataError.
std::vector<std::string> read_lines(const std::string& path);
// Source lines and their reference translations, aligned (for BLEU): every source line must hold
// a sentence, and the files must have as many lines.
struct AlignedLines {
  std::vector<std::string> sources, references;
};
AlignedLines read_aligned(const std::string& source_path, const std::string& reference_path);

}  // namespace tg::models

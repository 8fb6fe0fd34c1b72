#include "readers.hpp"

#include <utf8.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>

#include "text.hpp"

namespace tg::models {
namespace {

std::ifstream open(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(path, 0, std::string("cannot open the file: ") + std::strerror(errno));
  return in;
}

// Calls f(line, number) for every line of the file, without its line ending (\n or \r\n).
// A line that is not UTF-8, or whose f throws a DataError, stops the reading -- or, when `bad`
// says skip, is counted there and followed by on_skip() (which drops what the line belonged to).
template <class F, class G>
void for_each_line(const std::string& path, BadLines* bad, F f, G on_skip) {
  std::ifstream in = open(path);
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    try {
      const auto invalid = utf8::find_invalid(line.begin(), line.end());
      if (invalid != line.end())
        throw DataError(path, number,
                        "not UTF-8 text (invalid byte at offset " +
                            std::to_string(invalid - line.begin()) + ")");
      f(line, number);
    } catch (const DataError& e) {
      if (!bad || !bad->skip) throw;
      bad->add(e.what());
      on_skip();
    }
  }
}

template <class F>
void for_each_line(const std::string& path, F f) {
  for_each_line(path, nullptr, f, [] {});
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> cols;
  std::size_t start = 0;
  while (true) {
    const auto tab = line.find('\t', start);
    cols.push_back(line.substr(start, tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return cols;
}

bool is_blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); });
}

// The labelled-sentence readers' skeleton: parse(line, number) gives each line's sentence, or
// nothing for a line that holds none (blank, a header), or throws a DataError (see for_each_line).
template <class Parse>
std::vector<LabeledSentence> read_labeled(const std::string& path, BadLines* bad, Parse parse) {
  std::vector<LabeledSentence> out;
  for_each_line(
      path, bad,
      [&](const std::string& line, std::size_t number) {
        if (auto s = parse(line, number)) out.push_back(std::move(*s));
      },
      [] {});
  return out;
}

}  // namespace

std::vector<std::size_t> lengths_of(const std::vector<std::vector<std::string>>& sentences) {
  std::vector<std::size_t> out;
  for (const auto& s : sentences) out.push_back(s.size());
  return out;
}

void BadLines::add(const std::string& message) {
  ++skipped;
  if (first.size() < 5) first.push_back(message);
}

std::vector<TaggedSentence> read_conllu(const std::string& path, BadLines* bad) {
  std::vector<TaggedSentence> out;
  TaggedSentence current;
  bool started = false, broken = false;  // the sentence has a line; one of its lines was skipped
  const auto finish = [&] {
    if (!broken && !current.words.empty()) out.push_back(std::move(current));
    current = {};
    started = broken = false;
  };
  for_each_line(
      path, bad,
      [&](const std::string& line, std::size_t number) {
        if (is_blank(line)) {
          const bool empty_sentence = started && current.words.empty() && !broken;
          finish();
          if (empty_sentence)
            throw DataError(path, number, "the sentence ending here has no tokens");
          return;
        }
        started = true;
        if (line[0] == '#') return;
        const auto cols = split_tabs(line);
        if (cols.size() != 10)
          throw DataError(
              path, number,
              "expected 10 tab-separated columns (CoNLL-U), found " + std::to_string(cols.size()));
        const std::string& id = cols[0];
        if (id.find('-') != std::string::npos || id.find('.') != std::string::npos)
          return;  // 3-4, 8.1
        if (id.empty() ||
            !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c); }))
          throw DataError(path, number, "the token id '" + id + "' is not a number");
        if (cols[1].empty() || cols[3].empty())
          throw DataError(path, number, "empty word form or UPOS tag");
        current.words.push_back(cols[1]);
        current.tags.push_back(cols[3]);
      },
      [&] { broken = started = true; });
  finish();
  return out;
}

std::vector<LabeledSentence> read_tsv(const std::string& path, BadLines* bad) {
  return read_labeled(
      path, bad,
      [&](const std::string& line, std::size_t number) -> std::optional<LabeledSentence> {
        if (number == 1) {
          if (line.rfind("sentence\t", 0) != 0)
            throw DataError(path, number, "expected the header 'sentence<TAB>label'");
          return std::nullopt;
        }
        if (is_blank(line)) return std::nullopt;
        const auto cols = split_tabs(line);
        if (cols.size() != 2)
          throw DataError(
              path, number,
              "expected 'sentence<TAB>label', found " + std::to_string(cols.size()) + " columns");
        LabeledSentence s{split_words(cols[0]), cols[1]};
        if (s.words.empty()) throw DataError(path, number, "the sentence is empty");
        if (s.label.empty()) throw DataError(path, number, "the label is empty");
        return s;
      });
}

std::vector<LabeledSentence> read_label_first(const std::string& path, BadLines* bad) {
  return read_labeled(
      path, bad,
      [&](const std::string& line, std::size_t number) -> std::optional<LabeledSentence> {
        if (is_blank(line)) return std::nullopt;
        auto words = split_words(line);
        LabeledSentence s{std::vector<std::string>(words.begin() + 1, words.end()), words[0]};
        if (s.words.empty())
          throw DataError(path, number, "expected '<label> <sentence>', found no sentence");
        return s;
      });
}

std::vector<LabeledSentence> read_labeled(const std::string& path, BadLines* bad) {
  std::ifstream in = open(path);
  std::string first;
  std::getline(in, first);
  return first.rfind("sentence\t", 0) == 0 ? read_tsv(path, bad) : read_label_first(path, bad);
}

// ---- parallel text ---------------------------------------------------------------------

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  for_each_line(path, [&](const std::string& line, std::size_t) { lines.push_back(line); });
  return lines;
}

AlignedLines read_aligned(const std::string& source_path, const std::string& reference_path) {
  AlignedLines a{read_lines(source_path), read_lines(reference_path)};
  for (std::size_t i = 0; i < a.sources.size(); ++i)
    if (a.sources[i].empty())
      throw DataError(source_path, i + 1, "empty line (every line must hold a sentence)");
  if (a.sources.size() != a.references.size())
    throw std::runtime_error(source_path + " has " + std::to_string(a.sources.size()) +
                             " lines but " + reference_path + " has " +
                             std::to_string(a.references.size()) + " (the files must be aligned)");
  return a;
}

std::vector<SentencePair> read_parallel(const std::string& source_path,
                                        const std::string& target_path, bool lower, BadLines* bad) {
  // Read both files whole first: a misaligned pair of files always stops, whatever `bad` says.
  const auto raw_lines = [](const std::string& path) {
    std::ifstream in = open(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(std::move(line));
    }
    return lines;
  };
  const auto source = raw_lines(source_path), target = raw_lines(target_path);
  if (source.size() != target.size()) {
    const bool target_short = target.size() < source.size();
    throw DataError(target_short ? target_path : source_path,
                    std::min(source.size(), target.size()) + 1,
                    "the file ends here, but " + (target_short ? source_path : target_path) +
                        " has " + std::to_string(std::max(source.size(), target.size())) +
                        " lines (the files must be aligned)");
  }
  const auto sentence = [&](const std::string& path, const std::string& line, std::size_t number) {
    std::vector<std::string> words;
    try {
      words = tokenize(line, lower);
    } catch (const std::invalid_argument& e) {
      throw DataError(path, number, e.what());
    }
    if (words.empty())
      throw DataError(path, number, "empty line (every line must hold a sentence)");
    return words;
  };
  std::vector<SentencePair> pairs;
  for (std::size_t i = 0; i < source.size(); ++i) {
    try {
      auto src = sentence(source_path, source[i], i + 1);
      pairs.push_back({std::move(src), sentence(target_path, target[i], i + 1)});
    } catch (const DataError& e) {
      if (!bad || !bad->skip) throw;
      bad->add(e.what());  // the pair goes, both sides
    }
  }
  return pairs;
}

}  // namespace tg::models

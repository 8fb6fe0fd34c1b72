#include "data.hpp"

#include "text.hpp"

#include <utf8.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <numeric>
#include <sstream>

namespace tg::models {
namespace {

std::ifstream open(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(path, 0, "cannot open the file");
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
        throw DataError(path, number, "not UTF-8 text (invalid byte at offset " + std::to_string(invalid - line.begin()) + ")");
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

}  // namespace

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string lowercase(const std::string& word) {
  std::string out = word;
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
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
  for_each_line(path, bad, [&](const std::string& line, std::size_t number) {
    if (is_blank(line)) {
      const bool empty_sentence = started && current.words.empty() && !broken;
      finish();
      if (empty_sentence) throw DataError(path, number, "the sentence ending here has no tokens");
      return;
    }
    started = true;
    if (line[0] == '#') return;
    const auto cols = split_tabs(line);
    if (cols.size() != 10)
      throw DataError(path, number, "expected 10 tab-separated columns (CoNLL-U), found " + std::to_string(cols.size()));
    const std::string& id = cols[0];
    if (id.find('-') != std::string::npos || id.find('.') != std::string::npos) return;  // 3-4, 8.1
    if (id.empty() || !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c); }))
      throw DataError(path, number, "the token id '" + id + "' is not a number");
    if (cols[1].empty() || cols[3].empty()) throw DataError(path, number, "empty word form or UPOS tag");
    current.words.push_back(cols[1]);
    current.tags.push_back(cols[3]);
  }, [&] { broken = started = true; });
  finish();
  return out;
}

std::vector<LabeledSentence> read_tsv(const std::string& path, BadLines* bad) {
  std::vector<LabeledSentence> out;
  for_each_line(path, bad, [&](const std::string& line, std::size_t number) {
    if (number == 1) {
      if (line.rfind("sentence\t", 0) != 0)
        throw DataError(path, number, "expected the header 'sentence<TAB>label'");
      return;
    }
    if (is_blank(line)) return;
    const auto cols = split_tabs(line);
    if (cols.size() != 2) throw DataError(path, number, "expected 'sentence<TAB>label', found " + std::to_string(cols.size()) + " columns");
    LabeledSentence s{split_words(cols[0]), cols[1]};
    if (s.words.empty()) throw DataError(path, number, "the sentence is empty");
    if (s.label.empty()) throw DataError(path, number, "the label is empty");
    out.push_back(std::move(s));
  }, [] {});
  return out;
}

std::vector<LabeledSentence> read_label_first(const std::string& path, BadLines* bad) {
  std::vector<LabeledSentence> out;
  for_each_line(path, bad, [&](const std::string& line, std::size_t number) {
    if (is_blank(line)) return;
    auto words = split_words(line);
    LabeledSentence s{std::vector<std::string>(words.begin() + 1, words.end()), words[0]};
    if (s.words.empty()) throw DataError(path, number, "expected '<label> <sentence>', found no sentence");
    out.push_back(std::move(s));
  }, [] {});
  return out;
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

std::vector<SentencePair> read_parallel(const std::string& source_path, const std::string& target_path, bool lower,
                                        BadLines* bad) {
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
    throw DataError(target_short ? target_path : source_path, std::min(source.size(), target.size()) + 1,
                    "the file ends here, but " + (target_short ? source_path : target_path) + " has " +
                        std::to_string(std::max(source.size(), target.size())) + " lines (the files must be aligned)");
  }
  const auto sentence = [&](const std::string& path, const std::string& line, std::size_t number) {
    std::vector<std::string> words;
    try {
      words = tokenize(line, lower);
    } catch (const std::invalid_argument& e) {
      throw DataError(path, number, e.what());
    }
    if (words.empty()) throw DataError(path, number, "empty line (every line must hold a sentence)");
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

// ---- vocabulary -----------------------------------------------------------------------

Vocab Vocab::build(const std::vector<std::vector<std::string>>& sentences, std::size_t min_count, bool lower,
                   const std::vector<std::string>& specials) {
  std::map<std::string, std::size_t> counts;
  for (const auto& s : sentences)
    for (const auto& w : s) ++counts[lower ? lowercase(w) : w];
  std::vector<std::pair<std::string, std::size_t>> kept;
  for (const auto& [w, c] : counts)
    if (c >= min_count) kept.emplace_back(w, c);
  std::stable_sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  Vocab v;
  v.lower_ = lower;
  v.words_ = {"<pad>", "<unk>"};
  v.words_.insert(v.words_.end(), specials.begin(), specials.end());
  v.counts_.assign(v.words_.size(), 0);  // padding, unknown and specials count 0
  for (const auto& [w, c] : kept)
    if (std::find(specials.begin(), specials.end(), w) == specials.end()) {
      v.words_.push_back(w);
      v.counts_.push_back(c);
    }
  for (std::size_t i = 0; i < v.words_.size(); ++i) v.ids_[v.words_[i]] = static_cast<std::int64_t>(i);
  return v;
}

std::size_t Vocab::count(std::int64_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= words_.size())
    throw std::out_of_range("Vocab::count: id " + std::to_string(id) + " outside 0 to " + std::to_string(words_.size()) + " - 1");
  return static_cast<std::size_t>(id) < counts_.size() ? counts_[id] : 0;
}

Vocab Vocab::closed(const std::vector<std::string>& items) {
  Vocab v;
  v.closed_ = true;
  v.words_ = items;
  std::sort(v.words_.begin(), v.words_.end());
  v.words_.erase(std::unique(v.words_.begin(), v.words_.end()), v.words_.end());
  for (std::size_t i = 0; i < v.words_.size(); ++i) v.ids_[v.words_[i]] = static_cast<std::int64_t>(i);
  return v;
}

std::int64_t Vocab::id(const std::string& word) const {
  auto it = ids_.find(lower_ ? lowercase(word) : word);
  if (it != ids_.end()) return it->second;
  if (closed_) {
    std::string known;
    for (const auto& w : words_) known += (known.empty() ? "" : ", ") + w;
    throw std::invalid_argument("unknown label '" + word + "' (known: " + known + ")");
  }
  return kUnk;
}

const std::string& Vocab::word(std::int64_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= words_.size())
    throw std::invalid_argument("Vocab: id " + std::to_string(id) + " is outside 0.." + std::to_string(words_.size() - 1));
  return words_[static_cast<std::size_t>(id)];
}

std::string Vocab::to_text() const {
  std::string out = std::string("vocab lower=") + (lower_ ? "1" : "0") + " closed=" + (closed_ ? "1" : "0") + "\n";
  for (const auto& w : words_) out += w + "\n";
  return out;
}

Vocab Vocab::from_text(const std::string& text, const std::string& where) {
  std::istringstream in(text);
  std::string header;
  std::getline(in, header);
  if (header.rfind("vocab lower=", 0) != 0) throw std::runtime_error(where + ": not a vocabulary");
  Vocab v;
  v.lower_ = header.find("lower=1") != std::string::npos;
  v.closed_ = header.find("closed=1") != std::string::npos;
  for (std::string w; std::getline(in, w);) {
    if (!v.ids_.emplace(w, static_cast<std::int64_t>(v.words_.size())).second)
      throw std::runtime_error(where + ": the vocabulary repeats '" + w + "'");
    v.words_.push_back(w);
  }
  if (v.words_.empty() || (!v.closed_ && v.words_.size() < 2)) throw std::runtime_error(where + ": the vocabulary is empty");
  return v;
}

void drop_rare_words(Ids& ids, const Vocab& vocab, double alpha, Generator& gen) {
  if (!(alpha >= 0)) throw std::invalid_argument("drop_rare_words: alpha must be >= 0, got " + std::to_string(alpha));
  if (alpha == 0) return;
  if (!vocab.has_counts())
    throw std::invalid_argument("drop_rare_words: the vocabulary has no counts (only Vocab::build keeps them, not from_text)");
  for (auto& id : ids) {
    const std::size_t count = vocab.count(id);
    if (count == 0) continue;  // padding, the unknown word, specials
    const double p = alpha / (alpha + static_cast<double>(count));
    if ((gen.next_u64() >> 32) < static_cast<std::uint64_t>(p * 4294967296.0)) id = Vocab::kUnk;
  }
}

// ---- subwords ---------------------------------------------------------------------------

namespace {

std::uint64_t fnv1a(const std::string& s, std::uint64_t salt) {
  std::uint64_t h = 1469598103934665603ULL ^ salt;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// "Xxxx" -> "Xx", "1,000" -> "d,d": each run of one character class becomes one symbol.
std::string shape(const std::string& word) {
  std::string s;
  for (unsigned char c : word) {
    char k = std::isupper(c) ? 'X' : std::islower(c) ? 'x' : std::isdigit(c) ? 'd' : c >= 128 ? 'u' : static_cast<char>(c);
    if (s.empty() || s.back() != k) s += k;
  }
  return s;
}

}  // namespace

std::vector<std::size_t> SubwordOptions::groups() const {
  if (!grouped) return {max_features};
  if (max_features <= kShapeSlots + kSuffixSlots)
    throw std::invalid_argument("subword features: grouped features need more than " +
                                std::to_string(kShapeSlots + kSuffixSlots) + " slots, got " + std::to_string(max_features));
  return {kShapeSlots, kSuffixSlots, max_features - kShapeSlots - kSuffixSlots};
}

std::vector<std::int64_t> subword_ids(const std::string& word, const SubwordOptions& o) {
  if (o.buckets < 2)
    throw std::invalid_argument("subword features: buckets must be at least 2 (0 is padding), got " + std::to_string(o.buckets));
  std::vector<std::int64_t> ids;
  const auto hash = [&](const std::string& feature, std::uint64_t salt) {
    return 1 + static_cast<std::int64_t>(fnv1a(feature, salt) % (o.buckets - 1));
  };
  const auto add = [&](const std::string& feature, std::uint64_t salt) {
    if (ids.size() < o.max_features) ids.push_back(hash(feature, salt));
  };
  add(shape(word), 1);
  const std::string lower = lowercase(word);
  if (o.grouped) {
    o.groups();  // checks the slot count
    for (std::size_t n = 1; n <= SubwordOptions::kSuffixSlots; ++n)  // bytes: a UTF-8 letter may be cut
      ids.push_back(n <= lower.size() ? hash(lower.substr(lower.size() - n) + ">", 3) : 0);
  }
  const std::string w = "<" + lower + ">";
  for (std::size_t n = 2; n <= 5; ++n)  // shorter n-grams first: they generalise best
    for (std::size_t i = 0; i + n <= w.size(); ++i) add(w.substr(i, n), 2);
  return ids;
}

// ---- batching ---------------------------------------------------------------------------

std::vector<std::vector<std::size_t>> make_batches(const std::vector<std::size_t>& lengths, std::size_t batch_tokens,
                                                   std::size_t max_batch, Generator* shuffle) {
  std::vector<std::size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  if (shuffle)
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle->below(i)]);
  // Sort by length inside windows, so batches hold similar lengths but vary between epochs.
  const std::size_t window = std::max<std::size_t>(1, 50 * max_batch);
  for (std::size_t start = 0; start < order.size(); start += window) {
    auto end = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), start + window));
    std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(start), end,
                     [&](std::size_t a, std::size_t b) { return lengths[a] < lengths[b]; });
  }
  std::vector<std::vector<std::size_t>> batches;
  std::vector<std::size_t> current;
  std::size_t longest = 0;
  for (std::size_t i : order) {
    const std::size_t next_longest = std::max(longest, lengths[i]);
    if (!current.empty() && (current.size() >= max_batch || next_longest * (current.size() + 1) > batch_tokens)) {
      batches.push_back(std::move(current));
      current = {};
      longest = 0;
    }
    current.push_back(i);
    longest = std::max(longest, lengths[i]);
  }
  if (!current.empty()) batches.push_back(std::move(current));
  if (shuffle)
    for (std::size_t i = batches.size(); i > 1; --i) std::swap(batches[i - 1], batches[shuffle->below(i)]);
  return batches;
}

}  // namespace tg::models

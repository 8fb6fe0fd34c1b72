#include "vocab.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "text.hpp"

namespace tg::models {

Vocab Vocab::build(const std::vector<std::vector<std::string>>& sentences, std::size_t min_count,
                   bool lower, const std::vector<std::string>& specials) {
  std::map<std::string, std::size_t> counts;
  for (const auto& s : sentences)
    for (const auto& w : s) ++counts[lower ? lowercase_text(w) : w];
  std::vector<std::pair<std::string, std::size_t>> kept;
  for (const auto& [w, c] : counts)
    if (c >= min_count) kept.emplace_back(w, c);
  std::stable_sort(kept.begin(), kept.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
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
  for (std::size_t i = 0; i < v.words_.size(); ++i)
    v.ids_[v.words_[i]] = static_cast<std::int64_t>(i);
  return v;
}

std::size_t Vocab::count(std::int64_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= words_.size())
    throw std::out_of_range("Vocab::count: id " + std::to_string(id) + " outside 0 to " +
                            std::to_string(words_.size()) + " - 1");
  return static_cast<std::size_t>(id) < counts_.size() ? counts_[id] : 0;
}

Vocab Vocab::closed(const std::vector<std::string>& items) {
  Vocab v;
  v.closed_ = true;
  v.words_ = items;
  std::sort(v.words_.begin(), v.words_.end());
  v.words_.erase(std::unique(v.words_.begin(), v.words_.end()), v.words_.end());
  for (std::size_t i = 0; i < v.words_.size(); ++i)
    v.ids_[v.words_[i]] = static_cast<std::int64_t>(i);
  return v;
}

std::int64_t Vocab::id(const std::string& word) const {
  auto it = ids_.find(lower_ ? lowercase_text(word) : word);
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
    throw std::invalid_argument("Vocab: id " + std::to_string(id) + " is outside 0.." +
                                std::to_string(words_.size() - 1));
  return words_[static_cast<std::size_t>(id)];
}

std::string Vocab::to_text() const {
  std::string out = std::string("vocab lower=") + (lower_ ? "1" : "0") +
                    " closed=" + (closed_ ? "1" : "0") + "\n";
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
  if (v.words_.empty() || (!v.closed_ && v.words_.size() < 2))
    throw std::runtime_error(where + ": the vocabulary is empty");
  return v;
}

void drop_rare_words(Ids& ids, const Vocab& vocab, double alpha, Generator& gen) {
  if (!(alpha >= 0))
    throw std::invalid_argument("drop_rare_words: alpha must be >= 0, got " +
                                std::to_string(alpha));
  if (alpha == 0) return;
  if (!vocab.has_counts())
    throw std::invalid_argument(
        "drop_rare_words: the vocabulary has no counts (only Vocab::build keeps them, not "
        "from_text)");
  for (auto& id : ids) {
    const std::size_t count = vocab.count(id);
    if (count == 0) continue;  // padding, the unknown word, specials
    const double p = alpha / (alpha + static_cast<double>(count));
    if ((gen.next_u64() >> 32) < static_cast<std::uint64_t>(p * 4294967296.0)) id = Vocab::kUnk;
  }
}

void drop_words(Ids& ids, double p, Generator& gen) {
  if (!(p >= 0 && p <= 1))
    throw std::invalid_argument("drop_words: p must be in [0, 1], got " + std::to_string(p));
  if (p == 0) return;
  const auto threshold = static_cast<std::uint64_t>(p * 4294967296.0);
  for (auto& id : ids)
    if (id != Vocab::kPad && (gen.next_u64() >> 32) < threshold) id = Vocab::kUnk;
}

}  // namespace tg::models

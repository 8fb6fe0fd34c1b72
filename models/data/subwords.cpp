#include "subwords.hpp"

#include <cctype>
#include <stdexcept>
#include <string>

#include "text.hpp"

namespace tg::models {

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
    char k = std::isupper(c)   ? 'X'
             : std::islower(c) ? 'x'
             : std::isdigit(c) ? 'd'
             : c >= 128        ? 'u'
                               : static_cast<char>(c);
    if (s.empty() || s.back() != k) s += k;
  }
  return s;
}

}  // namespace

std::vector<std::size_t> SubwordOptions::groups() const {
  if (!grouped) return {max_features};
  if (max_features <= kShapeSlots + kSuffixSlots)
    throw std::invalid_argument("subword features: grouped features need more than " +
                                std::to_string(kShapeSlots + kSuffixSlots) + " slots, got " +
                                std::to_string(max_features));
  return {kShapeSlots, kSuffixSlots, max_features - kShapeSlots - kSuffixSlots};
}

std::vector<std::int64_t> subword_ids(const std::string& word, const SubwordOptions& o) {
  if (o.buckets < 2)
    throw std::invalid_argument(
        "subword features: buckets must be at least 2 (0 is padding), got " +
        std::to_string(o.buckets));
  std::vector<std::int64_t> ids;
  const auto hash = [&](const std::string& feature, std::uint64_t salt) {
    return 1 + static_cast<std::int64_t>(fnv1a(feature, salt) % (o.buckets - 1));
  };
  const auto add = [&](const std::string& feature, std::uint64_t salt) {
    if (ids.size() < o.max_features) ids.push_back(hash(feature, salt));
  };
  add(shape(word), 1);
  const std::string lower = lowercase_text(word);
  if (o.grouped) {
    o.groups();  // checks the slot count
    for (std::size_t n = 1; n <= SubwordOptions::kSuffixSlots;
         ++n)  // bytes: a UTF-8 letter may be cut
      ids.push_back(n <= lower.size() ? hash(lower.substr(lower.size() - n) + ">", 3) : 0);
  }
  const std::string w = "<" + lower + ">";
  for (std::size_t n = 2; n <= 5; ++n)  // shorter n-grams first: they generalise best
    for (std::size_t i = 0; i + n <= w.size(); ++i) add(w.substr(i, n), 2);
  return ids;
}
}  // namespace tg::models

#include "characters.hpp"

#include <utf8.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "readers.hpp"

namespace tg::models {
namespace {

// The byte offset of the first byte that is not UTF-8, or npos.
std::size_t invalid_utf8_offset(const std::string& text) {
  const auto bad = utf8::find_invalid(text.begin(), text.end());
  return bad == text.end() ? std::string::npos : static_cast<std::size_t>(bad - text.begin());
}

std::string invalid_utf8_message(std::size_t offset) {
  return "not UTF-8 text (invalid byte at offset " + std::to_string(offset) + ")";
}

}  // namespace

std::u32string decode_utf8(const std::string& text) {
  if (const std::size_t bad = invalid_utf8_offset(text); bad != std::string::npos)
    throw std::invalid_argument(invalid_utf8_message(bad));
  std::u32string out;
  utf8::utf8to32(text.begin(), text.end(), std::back_inserter(out));
  return out;
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  utf8::utf32to8(text.begin(), text.end(), std::back_inserter(out));
  return out;
}

std::u32string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, 0, std::string("cannot open the file: ") + std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad())
    throw DataError(path, 0, std::string("cannot read the file: ") + std::strerror(errno));
  if (bytes.empty()) throw DataError(path, 0, "the file is empty: there is no text to read");
  if (const std::size_t bad = invalid_utf8_offset(bytes); bad != std::string::npos) {
    const auto line = std::count(bytes.begin(), bytes.begin() + bad, '\n') + 1;
    throw DataError(path, static_cast<std::size_t>(line), invalid_utf8_message(bad));
  }
  return decode_utf8(bytes);
}

std::string describe_char(char32_t c) {
  if (c == U'\n') return "'\\n'";
  if (c == U'\t') return "'\\t'";
  if (c == U'\r') return "'\\r'";
  char code[16];
  std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(c));
  if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0)) return code;  // control characters
  std::string out(1, '\'');  // appended piece by piece: GCC 12 warns of "'" + a temporary
  out += encode_utf8(std::u32string(1, c));
  return out.append("' (").append(code).append(")");
}

std::pair<std::u32string, std::u32string> split_text(const std::u32string& text, double share) {
  if (!(share > 0 && share < 1))
    throw std::invalid_argument("split_text: the share must be in (0, 1), got " +
                                std::to_string(share));
  const auto n = static_cast<std::size_t>(std::floor(share * static_cast<double>(text.size())));
  return {text.substr(0, n), text.substr(n)};
}

// ---- the vocabulary -------------------------------------------------------------------------

CharVocab CharVocab::build(const std::u32string& text) {
  if (text.empty()) throw std::invalid_argument("CharVocab::build: the text is empty");
  CharVocab v;
  v.chars_ = text;
  std::sort(v.chars_.begin(), v.chars_.end());
  v.chars_.erase(std::unique(v.chars_.begin(), v.chars_.end()), v.chars_.end());
  return v;
}

CharVocab CharVocab::from_text(const std::string& text, const std::string& where) {
  CharVocab v;
  try {
    v.chars_ = decode_utf8(text);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(where + ": the character vocabulary is " + e.what());
  }
  if (v.chars_.empty() ||
      std::adjacent_find(v.chars_.begin(), v.chars_.end(),
                         [](char32_t a, char32_t b) { return a >= b; }) != v.chars_.end())
    throw std::runtime_error(where +
                             ": the character vocabulary must hold distinct characters in order");
  return v;
}

std::string CharVocab::to_text() const { return encode_utf8(chars_); }

char32_t CharVocab::character(std::int64_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= chars_.size())
    throw std::invalid_argument("CharVocab: id " + std::to_string(id) +
                                " is outside the vocabulary of " + std::to_string(chars_.size()) +
                                " characters");
  return chars_[static_cast<std::size_t>(id)];
}

bool CharVocab::contains(char32_t c) const {
  return std::binary_search(chars_.begin(), chars_.end(), c);
}

std::vector<std::int64_t> CharVocab::encode(const std::u32string& text,
                                            const std::string& what) const {
  std::vector<std::int64_t> ids;
  ids.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto it = std::lower_bound(chars_.begin(), chars_.end(), text[i]);
    if (it == chars_.end() || *it != text[i])
      throw std::invalid_argument(
          what + ": the character " + describe_char(text[i]) + " (character " + std::to_string(i) +
          ") is not in the vocabulary of " + std::to_string(chars_.size()) + " characters");
    ids.push_back(it - chars_.begin());
  }
  return ids;
}

std::u32string CharVocab::decode(const std::vector<std::int64_t>& ids) const {
  std::u32string out;
  out.reserve(ids.size());
  for (std::int64_t id : ids) out.push_back(character(id));
  return out;
}

}  // namespace tg::models

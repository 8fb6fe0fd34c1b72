// Text as a sequence of characters, for a character-level language model: a text file read as
// Unicode code points, the vocabulary of the characters it holds, and the usual split of one
// text into a training part and a validation part.
//
//   const std::u32string text = models::read_text("data/tinyshakespeare/input.txt");
//   const auto [train, valid] = models::split_text(text, 0.9);   // 90% / 10% of the characters
//   const models::CharVocab vocab = models::CharVocab::build(train);   // 65 characters
//   const std::vector<std::int64_t> ids = vocab.encode(valid, "the validation text");
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tg::models {

// A whole UTF-8 file as code points.  Throws a DataError naming the file when it cannot be
// read, is empty, or is not UTF-8 (with the byte offset of the first bad byte).
std::u32string read_text(const std::string& path);
// UTF-8 text as code points; text that is not UTF-8 is a std::invalid_argument, "not UTF-8
// text (invalid byte at offset 12)".  (The tokeniser of text.hpp decodes with it too.)
std::u32string decode_utf8(const std::string& text);
std::string encode_utf8(const std::u32string& text);
// One character as it reads in a message: itself, or an escape for a control character
// ("\n", "U+0007").
std::string describe_char(char32_t c);

// The first floor(share * N) characters of the text, and the rest.  share in (0, 1).
std::pair<std::u32string, std::u32string> split_text(const std::u32string& text, double share);

// The share of a single text that trains, the rest validating: nanoGPT's split of Tiny
// Shakespeare, the first 90% of the characters.
constexpr double kTrainShare = 0.9;

// The characters of a text, each a token: ids 0 .. V - 1 in code point order.  No padding and
// no unknown character: a character the vocabulary lacks is an error.
class CharVocab {
 public:
  CharVocab() = default;
  // Every distinct character of `text` (which must not be empty).
  static CharVocab build(const std::u32string& text);
  // The characters in order, as a model file stores them (to_text), back; `where` names the
  // file in errors.
  static CharVocab from_text(const std::string& text, const std::string& where);
  std::string to_text() const;  // the characters in id order, as UTF-8

  std::size_t size() const { return chars_.size(); }
  char32_t character(std::int64_t id) const;  // throws on an id outside [0, V)
  bool contains(char32_t c) const;
  // The ids of text's characters; a character the vocabulary lacks is a std::invalid_argument
  // naming it, its offset and `what` ("the prompt").
  std::vector<std::int64_t> encode(const std::u32string& text, const std::string& what) const;
  std::u32string decode(const std::vector<std::int64_t>& ids) const;

 private:
  std::u32string chars_;  // sorted, distinct
};

}  // namespace tg::models

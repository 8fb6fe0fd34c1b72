// The tokens a language model reads a text in: its characters (CharVocab, characters.hpp), or
// subword pieces of a SentencePiece unigram model (Kudo 2018) trained on the text's lines, with
// the newline a token of its own.  Either way the tokens spell the text back exactly: spaces,
// runs of spaces and empty lines included.
//
//   const TextVocab chars = CharVocab::build(train);          // 65 tokens for Tiny Shakespeare
//   const TextVocab pieces = TextVocab::pieces(train, 512);   // 512 pieces and the newline
//   const auto ids = pieces.encode(U"ROMEO:\nI will.", "the prompt");  // ROMEO : \n I ▁will .
//   pieces.decode(ids)                                        // U"ROMEO:\nI will." again
//
// Pieces never cross a line or a word: a space starts the word after it ("▁will"), nothing is
// added at a line's start, and no whitespace is dropped or merged.  A character the training
// text lacks is an error naming it, for pieces as for characters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "characters.hpp"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace tg::models {

class TextVocab {
 public:
  // Characters as the tokens: ids 0 .. V - 1 as the CharVocab has them.
  TextVocab(CharVocab characters);  // NOLINT(google-explicit-constructor): a CharVocab is one
  // A unigram model of `size` pieces (one of them <unk>, which no text encodes to) trained on the
  // lines of `text`, and the newline as token `size`.  Throws naming the size when the text
  // cannot fill it, or when `text` is empty.
  static TextVocab pieces(const std::u32string& text, std::size_t size);
  // The vocabulary as a model file keeps it (characters_text(), pieces_bytes()); empty pieces:
  // characters.  `where` names the file in errors.
  static TextVocab from_saved(const std::string& characters, const std::string& pieces,
                              const std::string& where);

  std::size_t size() const;  // tokens: the model's V
  bool has_pieces() const { return processor_ != nullptr; }
  // The characters that may appear in a text: every one of the training text.
  const CharVocab& characters() const { return chars_; }
  std::string characters_text() const { return chars_.to_text(); }
  const std::string& pieces_bytes() const { return bytes_; }  // empty for characters

  // The ids of a text's tokens; a character the training text lacked is a std::invalid_argument
  // naming it, its offset and `what`.
  std::vector<std::int64_t> encode(const std::u32string& text, const std::string& what) const;
  // One token's text (throws on an id outside [0, V)); <unk> reads as U+FFFD, the replacement
  // character.
  const std::u32string& token(std::int64_t id) const;
  std::u32string decode(const std::vector<std::int64_t>& ids) const;
  // The id of <unk>, which no text encodes to (so a model should not write it); -1 for
  // characters, which have none.
  std::int64_t unknown_id() const { return unknown_id_; }
  // The characters the tokens ids[from ..] spell: what "bits per character" divides by.
  std::size_t characters_in(const std::vector<std::int64_t>& ids, std::size_t from = 0) const;

 private:
  TextVocab() = default;
  CharVocab chars_;
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> processor_;  // pieces only
  std::string bytes_;                  // the serialised SentencePiece model (pieces only)
  std::vector<std::u32string> texts_;  // each token's text, by id
  std::int64_t unknown_id_ = -1;
};

}  // namespace tg::models

#include "text_vocab.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

namespace tg::models {
namespace {

constexpr char32_t kSpaceMark = U'\u2581';     // "▁": SentencePiece writes a space as this
constexpr char32_t kUnknown = U'\uFFFD';       // what <unk> reads as
constexpr std::size_t kLongestLine = 1000000;  // bytes: SentencePiece skips longer training lines

// The lines of a text (without their newlines) as UTF-8, one a sentence for SentencePiece's
// trainer; empty lines are skipped (they hold nothing to learn pieces from).
class TextLines : public sentencepiece::SentenceIterator {
 public:
  explicit TextLines(const std::u32string& text) : text_(text) { fill(); }
  bool done() const override { return done_; }
  void Next() override { fill(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void fill() {
    line_.clear();
    while (line_.empty() && next_ < text_.size()) {
      const std::size_t end = std::min(text_.find(U'\n', next_), text_.size());
      line_ = encode_utf8(text_.substr(next_, end - next_));
      next_ = end + 1;
    }
    done_ = line_.empty();
  }
  const std::u32string& text_;
  std::size_t next_ = 0;
  std::string line_;
  bool done_ = false;
};

}  // namespace

TextVocab::TextVocab(CharVocab characters) : chars_(std::move(characters)) {
  for (std::size_t id = 0; id < chars_.size(); ++id)
    texts_.emplace_back(1, chars_.character(static_cast<std::int64_t>(id)));
}

TextVocab TextVocab::pieces(const std::u32string& text, std::size_t size) {
  const std::string what = "TextVocab::pieces (" + std::to_string(size) + " pieces)";
  if (text.empty()) throw std::invalid_argument(what + ": the text is empty");
  if (text.find(kSpaceMark) != std::u32string::npos)
    throw std::invalid_argument(what + ": the text holds " + describe_char(kSpaceMark) +
                                ", which SentencePiece reserves for a space");
  if (size < 8)  // as SubwordVocab: room for <unk> and a few characters at the least
    throw std::invalid_argument(what + ": a vocabulary needs at least 8 pieces");
  for (std::size_t start = 0, line = 1; start < text.size(); ++line) {
    const std::size_t end = std::min(text.find(U'\n', start), text.size());
    if (const std::size_t bytes = encode_utf8(text.substr(start, end - start)).size();
        bytes > kLongestLine)
      throw std::invalid_argument(what + ": line " + std::to_string(line) + " is " +
                                  std::to_string(bytes) + " bytes long; SentencePiece trains on " +
                                  "lines of at most " + std::to_string(kLongestLine));
    start = end + 1;
  }
  TextLines lines(text);
  if (lines.done()) throw std::invalid_argument(what + ": the text has no characters but newlines");
  const std::unordered_map<std::string, std::string> options = {
      {"model_type", "unigram"},
      {"vocab_size", std::to_string(size)},
      {"character_coverage", "1.0"},  // every character of the text is a piece
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},  // the pieces spell the text and nothing else
      {"remove_extra_whitespaces", "false"},
      {"allow_whitespace_only_pieces", "true"},  // runs of spaces (verse indents) are pieces
      {"split_digits", "false"},
      {"bos_id", "-1"},  // the model reads one running text: no sentence marks
      {"eos_id", "-1"},
      {"max_sentence_length", std::to_string(kLongestLine)},  // no line is skipped (checked above)
      {"num_threads", "1"},
      {"input_sentence_size", "0"},  // every line: no random subset, so training is repeatable
      {"minloglevel", "2"},          // training reports only errors
  };
  std::string bytes;
  if (const auto status = sentencepiece::SentencePieceTrainer::Train(options, &lines, &bytes);
      !status.ok())
    throw std::invalid_argument(what + ": SentencePiece: " + status.ToString());
  return from_saved(CharVocab::build(text).to_text(), bytes, what);
}

TextVocab TextVocab::from_saved(const std::string& characters, const std::string& pieces,
                                const std::string& where) {
  TextVocab v(CharVocab::from_text(characters, where));
  if (pieces.empty()) return v;
  auto processor = std::make_shared<sentencepiece::SentencePieceProcessor>();
  if (const auto status = processor->LoadFromSerializedProto(pieces); !status.ok())
    throw std::runtime_error(where + ": not a SentencePiece model (" + status.ToString() + ")");
  v.texts_.clear();
  for (int id = 0; id < processor->GetPieceSize(); ++id) {
    if (processor->IsUnknown(id) || processor->IsControl(id)) {
      v.texts_.emplace_back(1, kUnknown);
      continue;
    }
    std::u32string piece = decode_utf8(processor->IdToPiece(id));
    std::replace(piece.begin(), piece.end(), kSpaceMark, U' ');
    v.texts_.push_back(std::move(piece));
  }
  v.texts_.emplace_back(1, U'\n');
  v.unknown_id_ = processor->unk_id();
  v.processor_ = std::move(processor);
  v.bytes_ = pieces;
  return v;
}

std::size_t TextVocab::size() const { return texts_.size(); }

std::vector<std::int64_t> TextVocab::encode(const std::u32string& text,
                                            const std::string& what) const {
  std::vector<std::int64_t> ids = chars_.encode(text, what);  // names a character it lacks
  if (!processor_) return ids;
  ids.clear();
  const auto newline = static_cast<std::int64_t>(texts_.size() - 1);
  std::vector<int> line_ids;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find(U'\n', start), text.size());
    if (const auto status =
            processor_->Encode(encode_utf8(text.substr(start, end - start)), &line_ids);
        !status.ok())
      throw std::runtime_error(
          what + ": SentencePiece cannot split line " +
          std::to_string(std::count(text.begin(), text.begin() + start, U'\n') + 1) + ": " +
          status.ToString());
    if (std::find(line_ids.begin(), line_ids.end(), processor_->unk_id()) != line_ids.end())
      throw std::runtime_error(
          what + ": SentencePiece has no piece for part of line " +
          std::to_string(std::count(text.begin(), text.begin() + start, U'\n') + 1) +
          " (<unk>): the text would not spell back");
    ids.insert(ids.end(), line_ids.begin(), line_ids.end());
    if (end == text.size()) break;
    ids.push_back(newline);
    start = end + 1;
  }
  return ids;
}

const std::u32string& TextVocab::token(std::int64_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= texts_.size())
    throw std::invalid_argument("TextVocab::token: id " + std::to_string(id) +
                                " is outside the vocabulary of " + std::to_string(texts_.size()) +
                                " tokens");
  return texts_[static_cast<std::size_t>(id)];
}

std::u32string TextVocab::decode(const std::vector<std::int64_t>& ids) const {
  std::u32string out;
  for (std::int64_t id : ids) out += token(id);
  return out;
}

std::size_t TextVocab::characters_in(const std::vector<std::int64_t>& ids, std::size_t from) const {
  std::size_t n = 0;
  for (std::size_t i = from; i < ids.size(); ++i) n += token(ids[i]).size();
  return n;
}

}  // namespace tg::models

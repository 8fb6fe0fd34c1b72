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

// A text's lines without their newlines: n newlines, n + 1 lines (the last empty when the text
// ends with a newline).
std::vector<std::u32string> lines_of(const std::u32string& text) {
  std::vector<std::u32string> lines;
  for (std::size_t start = 0;;) {
    const std::size_t end = std::min(text.find(U'\n', start), text.size());
    lines.push_back(text.substr(start, end - start));
    if (end == text.size()) return lines;
    start = end + 1;
  }
}

// Lines, as UTF-8, one a sentence for SentencePiece's trainer; empty lines are skipped (they
// hold nothing to learn pieces from).
class TextLines : public sentencepiece::SentenceIterator {
 public:
  explicit TextLines(const std::vector<std::string>& lines) : lines_(lines) { skip_empty(); }
  bool done() const override { return next_ == lines_.size(); }
  void Next() override {
    ++next_;
    skip_empty();
  }
  const std::string& value() const override { return lines_[next_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void skip_empty() {
    while (next_ < lines_.size() && lines_[next_].empty()) ++next_;
  }
  const std::vector<std::string>& lines_;
  std::size_t next_ = 0;
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
  std::vector<std::string> utf8_lines;
  for (const std::u32string& line : lines_of(text)) {
    utf8_lines.push_back(encode_utf8(line));
    if (const std::size_t bytes = utf8_lines.back().size(); bytes > kLongestLine)
      throw std::invalid_argument(what + ": line " + std::to_string(utf8_lines.size()) + " is " +
                                  std::to_string(bytes) + " bytes long; SentencePiece trains on " +
                                  "lines of at most " + std::to_string(kLongestLine));
  }
  TextLines lines(utf8_lines);
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
  const std::vector<std::u32string> lines = lines_of(text);
  std::vector<int> line_ids;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) ids.push_back(newline);
    if (const auto status = processor_->Encode(encode_utf8(lines[i]), &line_ids); !status.ok())
      throw std::runtime_error(what + ": SentencePiece cannot split line " + std::to_string(i + 1) +
                               ": " + status.ToString());
    if (std::find(line_ids.begin(), line_ids.end(), processor_->unk_id()) != line_ids.end())
      throw std::runtime_error(what + ": SentencePiece has no piece for part of line " +
                               std::to_string(i + 1) + " (<unk>): the text would not spell back");
    ids.insert(ids.end(), line_ids.begin(), line_ids.end());
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

#include "subword_vocab.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <stdexcept>
#include <unordered_map>

namespace tg::models {

namespace {

const std::string kWordStart =
    "\xE2\x96\x81";  // "▁", U+2581: SentencePiece's mark of a word's start

// The training text for SentencePiece: one sentence a line, its words joined by spaces.
class SentenceLines : public sentencepiece::SentenceIterator {
 public:
  explicit SentenceLines(const std::vector<std::vector<std::string>>& sentences)
      : sentences_(sentences) {
    fill();
  }
  bool done() const override { return next_ > sentences_.size(); }
  void Next() override { fill(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void fill() {  // the line of sentence next_ (skipping empty ones), then next_ moves on
    line_.clear();
    while (next_ < sentences_.size() && sentences_[next_].empty()) ++next_;
    if (next_ < sentences_.size())
      for (const auto& w : sentences_[next_]) line_ += (line_.empty() ? "" : " ") + w;
    ++next_;
  }
  const std::vector<std::vector<std::string>>& sentences_;
  std::size_t next_ = 0;
  std::string line_;
};

}  // namespace

SubwordVocab SubwordVocab::train(const std::vector<std::vector<std::string>>& sentences,
                                 std::size_t size) {
  if (size < 8)
    throw std::invalid_argument("subword vocabulary: size " + std::to_string(size) +
                                " is below 8 pieces");
  SentenceLines lines(sentences);
  if (lines.done()) throw std::invalid_argument("subword vocabulary: no words to train on");
  const std::unordered_map<std::string, std::string> options = {
      {"model_type", "unigram"},
      {"vocab_size", std::to_string(size)},
      {"character_coverage", "1.0"},  // every letter of the text is a piece: no <unk> inside words
      {"normalization_rule_name",
       "identity"},  // the tokeniser normalised already; pieces join back exactly
      {"split_digits", "false"},
      {"num_threads", "1"},
      {"input_sentence_size", "0"},  // every sentence: no random subset, so training is repeatable
      {"minloglevel", "2"},          // training reports only errors
  };
  std::string bytes;
  const auto status = sentencepiece::SentencePieceTrainer::Train(options, &lines, &bytes);
  if (!status.ok())
    throw std::invalid_argument("subword vocabulary of " + std::to_string(size) +
                                " pieces: SentencePiece: " + status.ToString());
  return from_bytes(bytes, "a new subword vocabulary");
}

SubwordVocab SubwordVocab::from_bytes(const std::string& bytes, const std::string& where) {
  auto processor = std::make_shared<sentencepiece::SentencePieceProcessor>();
  if (const auto status = processor->LoadFromSerializedProto(bytes); !status.ok())
    throw std::runtime_error(where + ": not a SentencePiece model (" + status.ToString() + ")");
  SubwordVocab v;
  v.processor_ = std::move(processor);
  v.bytes_ = bytes;
  return v;
}

std::vector<std::string> SubwordVocab::encode(const std::vector<std::string>& words) const {
  std::vector<std::string> pieces;
  for (const auto& word : words) {
    std::vector<std::string> p;
    if (const auto status = processor_->Encode(word, &p); !status.ok())
      throw std::runtime_error("subword vocabulary: cannot split '" + word +
                               "': " + status.ToString());
    pieces.insert(pieces.end(), p.begin(), p.end());
  }
  return pieces;
}

std::vector<std::string> SubwordVocab::decode(const std::vector<std::string>& pieces) {
  std::vector<std::string> words;
  bool new_word = true;  // the next piece starts a word even without "▁": first, or after <unk>
  for (const auto& piece : pieces) {
    if (piece == "<unk>") {  // never glued to a word: the model could not say what it was
      words.push_back(piece);
      new_word = true;
      continue;
    }
    const bool marked = piece.compare(0, kWordStart.size(), kWordStart) == 0;
    std::string rest = marked ? piece.substr(kWordStart.size()) : piece;
    if (marked || new_word) words.push_back(std::move(rest));
    else words.back() += rest;
    new_word = false;
  }
  std::erase_if(words, [](const std::string& w) { return w.empty(); });  // a lone "▁"
  return words;
}

std::size_t SubwordVocab::size() const {
  return static_cast<std::size_t>(processor_->GetPieceSize());
}

}  // namespace tg::models

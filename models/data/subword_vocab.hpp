// Subword vocabularies: words split into pieces by a SentencePiece unigram model (Kudo 2018;
// Kudo and Richardson 2018), so that a translator meets no unknown words -- a rare word becomes
// a few frequent pieces instead ("schneebedeckten" -> "▁schnee" "bedeckt" "en").
//
// The model is trained by the SentencePiece library (Debian's libsentencepiece-dev) on the
// words of the training text, after tapegrad's own tokeniser has split off punctuation and
// lowercased (models/data/text.hpp); it is stored as bytes inside a model file.  Pieces never cross
// words: a word's first piece starts with "▁" (U+2581), so pieces map back to words exactly.
//
//   auto sp = SubwordVocab::train(sentences, 8000);   // sentences: lists of words
//   auto pieces = sp.encode({"ein", "schneebedeckter", "berg"});
//   auto words = SubwordVocab::decode(pieces);          // the three words again
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace tg::models {

class SubwordVocab {
 public:
  // A unigram model of exactly `size` pieces (its specials <unk> <s> </s> included) trained on
  // the words of `sentences`; throws naming the size the text allows when it is too large.
  static SubwordVocab train(const std::vector<std::vector<std::string>>& sentences,
                            std::size_t size);
  // A model from bytes() (e.g. read back from a model file); `where` names the source in errors.
  static SubwordVocab from_bytes(const std::string& bytes, const std::string& where);

  // Words -> pieces, every word its own pieces, in order.
  std::vector<std::string> encode(const std::vector<std::string>& words) const;
  // Pieces -> words: a word starts at each piece that begins with "▁".  Any piece list decodes
  // (a model's output may begin without "▁"; such a piece starts a word all the same).  An
  // unknown piece ("<unk>", the vocabulary's word for it) stands alone as a word.
  static std::vector<std::string> decode(const std::vector<std::string>& pieces);

  std::size_t size() const;                            // pieces in the model
  const std::string& bytes() const { return bytes_; }  // the serialised model

 private:
  SubwordVocab() = default;  // made by train() or from_bytes() only: never without a model
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> processor_;
  std::string bytes_;
};

}  // namespace tg::models

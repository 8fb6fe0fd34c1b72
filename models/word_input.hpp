// The input side of the tagger and the sentence classifier: words to ids through a vocabulary
// and, when the model reads them, hashed subword features of each word.
//
//   sentences (tokenised) -> ids (B, T), 0 = padding;  subword ids (B, T, K), 0 = none
#pragma once

#include <string>
#include <vector>

#include "../autograd/tensor.hpp"
#include "../nn/training/model_file.hpp"
#include "data/batching.hpp"
#include "data/subwords.hpp"
#include "data/vocab.hpp"

namespace tg::models {

using Words = std::vector<std::string>;

struct WordInput {
  Vocab words;
  SubwordOptions subwords;  // buckets 0: no subword features

  // ids (B, T) and subword ids (B, T, K) of a batch of sentences; T is the longest sentence
  // (at least 1), K is 0 without subword features.
  void encode(const std::vector<const Words*>& sentences, Ids& ids, Ids& subs) const;
  // What a model's forward takes for its subword ids: nullptr without subword features.
  const Ids* subwords_of(const Ids& subs) const { return subwords.buckets > 0 ? &subs : nullptr; }

  // Calls f(indices, ids, subs) for batches of sentences of similar length (up to 4000 tokens),
  // in order of length; indices says which sentences each batch holds.  Empty sentences are
  // left out: there is nothing to predict for them.
  template <class F>
  void for_each_batch(const std::vector<Words>& sentences, F&& f) const {
    std::vector<std::size_t> lengths, real;
    for (std::size_t i = 0; i < sentences.size(); ++i)
      if (!sentences[i].empty()) lengths.push_back(sentences[i].size()), real.push_back(i);
    for (auto batch : make_batches(lengths, 4000, 128, nullptr)) {
      std::vector<const Words*> ptrs;
      for (std::size_t& i : batch) {
        i = real[i];
        ptrs.push_back(&sentences[i]);
      }
      Ids ids, subs;
      encode(ptrs, ids, subs);
      f(batch, ids, subs);
    }
  }

  // The vocabulary ("vocab/words") and the subword options, in a model file.
  void save(nn::ModelFile& file) const;
  static WordInput load(const nn::ModelFile& file);
};

}  // namespace tg::models

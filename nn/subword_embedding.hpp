// SubwordEmbedding: one vector per word from its hashed subword features (models/data.hpp's
// subword_ids: shape, endings, character n-grams), so that a model can represent words it has
// never seen from the pieces it has.
//
//   subwords (B, T, K) feature ids, 0 = no feature  ->  (B, T, C)
//
// The K slots are cut into consecutive groups (sizes in `groups`; empty: one group of all K).
// Each group is pooled by the mean of its real features' vectors, and the groups' means are
// added: a word's shape or ending then counts as much as all its n-grams together, instead of
// being thinned out among them.  A word without features gets zeros.
#pragma once

#include <vector>

#include "embedding.hpp"

namespace tg::nn {

class SubwordEmbedding : public Module {
 public:
  SubwordEmbedding(std::size_t buckets, std::size_t dim, std::vector<std::size_t> groups,
                   Generator& gen);

  Tensor forward(const Ids& subwords);
  Tensor operator()(const Ids& subwords) { return forward(subwords); }

  Embedding table;  // (buckets, C); row 0 is padding
  const std::vector<std::size_t>& groups() const { return groups_; }

 private:
  std::vector<std::size_t> groups_;
};

}  // namespace tg::nn

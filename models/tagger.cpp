#include "tagger.hpp"

#include "../autograd/ops.hpp"

namespace tg::models {

Tagger::Tagger(const TaggerOptions& o, Generator& gen)
    : SentenceModel(o, o.encoder.d_model, o.tags, gen) {}

Tensor Tagger::forward(const Ids& ids, const Ids* subwords, std::vector<Tensor>* weights) {
  return head(encoder.forward(ids, subwords, weights, "Tagger"));  // (B, T, C) -> (B, T, tags)
}

Tensor Tagger::loss(const Ids& ids, const Ids& tags, const Ids* subwords) {
  return cross_entropy(forward(ids, subwords), tags);
}

}  // namespace tg::models

#include "tagger.hpp"

#include "../autograd/ops.hpp"

namespace tg::models {

Tagger::Tagger(const TaggerOptions& o, Generator& gen)
    : encoder(o.encoder, gen), head(o.encoder.d_model, o.tags, gen), options_(o) {
  adopt(encoder);
  register_module("head", head);
}

Tensor Tagger::forward(const Ids& ids, const Ids* subwords, std::vector<Tensor>* weights) {
  return head(encoder.forward(ids, subwords, weights, "Tagger"));  // (B, T, C) -> (B, T, tags)
}

Tensor Tagger::loss(const Ids& ids, const Ids& tags, const Ids* subwords) {
  return cross_entropy(forward(ids, subwords), tags);
}

}  // namespace tg::models

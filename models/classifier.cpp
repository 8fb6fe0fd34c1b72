#include "classifier.hpp"

#include <algorithm>

#include "../autograd/ops.hpp"
#include "blocks.hpp"

namespace tg::models {

Classifier::Classifier(const ClassifierOptions& o, Generator& gen)
    : SentenceModel(o, o.pooling == Pooling::mean_max ? 2 * o.encoder.d_model : o.encoder.d_model,
                    o.classes, gen) {}

Tensor Classifier::forward(const Ids& ids, const Ids* subwords, std::vector<Tensor>* weights) {
  return head(
      pool(encoder.forward(ids, subwords, weights, "Classifier"), ids));  // (B, C) -> (B, classes)
}

Tensor Classifier::pool(const Tensor& h, const Ids& ids) const {
  Tensor mean_pooled, max_pooled;
  if (options_.pooling != Pooling::max) mean_pooled = mean_over_tokens(h, ids);  // (B, C)
  if (options_.pooling != Pooling::mean) {  // max over real tokens: padding can never win
    // padding (B, T, 1): true at padding; empty (B, 1): true for a row of padding alone.
    const std::size_t B = ids.shape()[0], T = ids.shape()[1];
    Mask padding = Mask::from_shape({B, T, 1}), empty = Mask::from_shape({B, 1});
    for (std::size_t b = 0; b < B; ++b) {
      empty(b, 0) = true;
      for (std::size_t t = 0; t < T; ++t) {
        padding(b, t, 0) = ids(b, t) == 0;
        empty(b, 0) = empty(b, 0) && padding(b, t, 0);
      }
    }
    max_pooled = masked_fill(max(masked_fill(h, padding, -1e30), {1}), empty, 0.0);  // (B, C)
  }
  if (options_.pooling == Pooling::mean) return mean_pooled;
  if (options_.pooling == Pooling::max) return max_pooled;
  return concat({mean_pooled, max_pooled}, 1);  // (B, 2C)
}

Tensor Classifier::loss(const Ids& ids, const Ids& labels, const Ids* subwords) {
  return cross_entropy(forward(ids, subwords), labels);
}

}  // namespace tg::models

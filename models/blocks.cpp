#include "blocks.hpp"

#include "../autograd/ops.hpp"

namespace tg::models {

Mask key_padding_mask(const Ids& ids) {
  if (ids.dimension() != 2) fail("key_padding_mask", "ids must be (B, T), got " + shape_str(Shape(ids.shape().begin(), ids.shape().end())));
  Mask m = Mask::from_shape({ids.shape()[0], 1, 1, ids.shape()[1]});
  for (std::size_t i = 0; i < ids.size(); ++i) m.data()[i] = ids.data()[i] != 0;
  return m;
}

Tensor embed_words(nn::Embedding& words, nn::SubwordEmbedding* subwords, const Ids& ids, const Ids* subword_ids,
                   const char* who) {
  Tensor x = words(ids);  // (B, T, C)
  if (!subwords) return x;
  if (!subword_ids || subword_ids->dimension() != 3 || subword_ids->shape()[0] != ids.shape()[0] ||
      subword_ids->shape()[1] != ids.shape()[1])
    fail(who, "this model needs subword ids (B, T, K) matching ids " + shape_str(Shape(ids.shape().begin(), ids.shape().end())) +
                  ", got " + (subword_ids ? shape_str(Shape(subword_ids->shape().begin(), subword_ids->shape().end())) : "none"));
  return x + (*subwords)(*subword_ids);
}

Tensor add_neighbours(nn::Conv1d& conv, nn::Dropout& drop, const Tensor& x, const Ids& ids) {
  if (ids.dimension() != 2 || x.dim() != 3 || x.shape()[0] != ids.shape()[0] || x.shape()[1] != ids.shape()[1])
    fail("add_neighbours", "x must be (B, T, C) for ids (B, T), got x " + shape_str(x.shape()) + " and ids " +
                               shape_str(Shape(ids.shape().begin(), ids.shape().end())));
  Array<double> keep = xt::zeros<double>({ids.shape()[0], ids.shape()[1], std::size_t(1)});
  for (std::size_t i = 0; i < ids.size(); ++i) keep.data()[i] = ids.data()[i] != 0;
  return x + drop(relu(conv(x * Tensor(keep).to(x.dtype()))));
}

}  // namespace tg::models

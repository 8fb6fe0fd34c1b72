#include "subword_embedding.hpp"

#include <cmath>

#include "../autograd/ops.hpp"

namespace tg::nn {

SubwordEmbedding::SubwordEmbedding(std::size_t buckets, std::size_t dim,
                                   std::vector<std::size_t> groups, Generator& gen)
    : table(
          {.vocab = buckets, .dim = dim, .padding_id = 0, .init_std = 1.0 / std::sqrt(double(dim))},
          gen),
      groups_(std::move(groups)) {
  for (std::size_t g : groups_)
    if (g == 0) fail("SubwordEmbedding", "a group of 0 slots");
  // Registered as the weight itself, so that a model's "<name>.weight" stays as it was when the
  // model held a plain Embedding here.
  register_parameter("weight", table.weight);
}

Tensor SubwordEmbedding::forward(const Ids& subwords) {
  if (subwords.dimension() != 3)
    fail("SubwordEmbedding",
         "subword ids must be (B, T, K), got " +
             shape_str(Shape(subwords.shape().begin(), subwords.shape().end())));
  const std::size_t K = subwords.shape()[2];
  return embedding_bags(table.weight, subwords,
                        groups_.empty() ? std::vector<std::size_t>{K} : groups_);
}

}  // namespace tg::nn

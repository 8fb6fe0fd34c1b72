#include "embedding.hpp"

#include <xtensor/xview.hpp>

#include "../autograd/ops.hpp"
#include "init.hpp"

namespace tg::nn {

Embedding::Embedding(const EmbeddingOptions& options, Generator& gen) : options_(options) {
  if (options.vocab == 0 || options.dim == 0)
    fail("Embedding", "vocab and dim must be positive, got vocab " + std::to_string(options.vocab) +
                          ", dim " + std::to_string(options.dim));
  if (options.padding_id < -1 || options.padding_id >= static_cast<std::int64_t>(options.vocab))
    fail("Embedding", "padding_id " + std::to_string(options.padding_id) +
                          " is outside the table of " + std::to_string(options.vocab) +
                          " rows (use -1 for none)");
  weight = register_parameter("weight", zeros({options.vocab, options.dim}));
  init::normal(weight, 0.0, options.init_std, gen);
  if (options.padding_id >= 0) {
    auto& w = weight.data<float>();
    xt::view(w, options.padding_id) = 0.0f;
  }
}

Tensor Embedding::forward(const Ids& ids) { return embedding(weight, ids, options_.padding_id); }

}  // namespace tg::nn

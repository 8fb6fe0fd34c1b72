// Embedding: a table of V vectors of C values, looked up by token id.
#pragma once

#include "../autograd/runtime/generator.hpp"
#include "module.hpp"

namespace tg::nn {

struct EmbeddingOptions {
  std::size_t vocab = 0;         // V
  std::size_t dim = 0;           // C
  std::int64_t padding_id = -1;  // this row starts at zero and gets no gradient (-1: none)
  double init_std = 1.0;         // rows start as N(0, init_std^2)
};

class Embedding : public Module {
 public:
  Embedding(const EmbeddingOptions& options, Generator& gen);

  // ids: (...) -> (..., C).  Throws on an id outside [0, V).
  Tensor forward(const Ids& ids);
  Tensor operator()(const Ids& ids) { return forward(ids); }

  Tensor weight;  // (V, C)
  const EmbeddingOptions& options() const { return options_; }

 private:
  EmbeddingOptions options_;
};

}  // namespace tg::nn

// LanguageModel: a decoder-only transformer (GPT; Radford et al. 2018, 2019) that reads tokens
// and gives, at every position, the distribution of the next token.
//   ids (B, T) -> logits (B, T, V): logits[b, t] predict ids[b, t + 1] from ids[b, 0..t].
//
//   x = embed(ids) * sqrt(C)
//   x = dropout(positions(x))                   (absolute schemes; the others live in attention)
//   h = blocks(x)                               pre-LayerNorm layers of causal self-attention and
//                                               a GELU feed-forward block, then a LayerNorm
//   logits = h embed.weight^T                   (tied; or an output layer of its own)
//
// Every scheme of positions works (nn/positions/scheme.hpp), and kernelized attention.  Only a
// learned table has an end: it reads positions 0 .. max_len - 1 and nothing past them; the other
// schemes give any position an encoding, which is what an extrapolation study measures.
//
// With a cache, forward reads only the newest tokens and attends to the cached keys and values
// of the earlier ones, at positions offset by the cache's length: text is written token by
// token at the cost of one position a step.
#pragma once

#include <limits>
#include <memory>

#include "../nn/embedding.hpp"
#include "../nn/linear.hpp"
#include "../nn/positions/absolute.hpp"
#include "../nn/transformer.hpp"
#include "blocks.hpp"

namespace tg::models {

struct LanguageModelOptions {
  std::size_t vocab = 0;  // V
  // The defaults: nanoGPT's recipe for a CPU (4 layers of width 128, context 64).
  std::size_t d_model = 128, heads = 4, ff = 512, layers = 4;
  double dropout = 0.0;  // on the input, the attention weights and each sublayer's output
  nn::PositionScheme positions = nn::PositionScheme::learned;
  std::size_t relative_k = 16;  // relative, kernelized: offsets clipped to [-k, k]
  nn::AttentionKind attention = nn::AttentionKind::softmax;  // or kernelized (Luo et al. 2021)
  std::size_t kernel_features = 64;                          // kernelized: random features
  std::size_t max_len =
      64;  // learned: the table's rows, the longest text it reads; gaussian's scale
  std::size_t mlp_hidden = 64;                              // mlp
  double mlp_scale = 64;                                    // mlp: the MLP reads position / scale
  std::size_t fourier_features = 64, fourier_hidden = 128;  // fourier
  bool tie_embeddings = true;  // the output layer is the embedding's table (no bias)
  std::size_t context = 64;    // the windows it was trained on (evaluation's default)
  // GPT-2's initialisation (as nanoGPT): every matrix and table N(0, 0.02^2), the projections
  // back into the residual stream (attention's out_proj, the feed-forward's last layer)
  // N(0, (0.02 / sqrt(2 layers))^2), and the embeddings added unscaled (positions' parameters
  // that start at 0 keep doing so).  false: the library's
  // initialisation (Xavier, embeddings N(0, 1 / C) scaled by sqrt(C)), which files written
  // before this option keep.
  bool gpt2_init = false;

  // The options a model file stores (nn/training/model_file.hpp; transformer_fields: blocks.hpp).
  template <class F>
  void fields(F&& f) {
    f("vocab", vocab), transformer_fields(*this, f);
    f("fourier_features", fourier_features), f("fourier_hidden", fourier_hidden);
    f("tie_embeddings", tie_embeddings), f("context", context), f("gpt2_init", gpt2_init);
  }
};

// The keys and values of the positions read so far, one KvCache per layer.
struct LanguageModelCache {
  std::vector<nn::KvCache> layers;
  std::size_t length() const { return layers.empty() ? 0 : layers[0].length(); }
};

class LanguageModel : public nn::Module {
 public:
  LanguageModel(const LanguageModelOptions& options, Generator& gen);

  // ids: (B, T) -> logits (B, T, V).  With a cache, ids hold the T tokens after its length()
  // earlier ones, and the cache grows by T.
  Tensor forward(const Ids& ids, LanguageModelCache* cache = nullptr);
  // The same without the output layer: (B, T, C).
  Tensor states(const Ids& ids, LanguageModelCache* cache = nullptr);
  // inputs, targets: (B, T) -> () the mean cross-entropy of targets[b, t] given inputs[b, 0..t].
  Tensor loss(const Ids& inputs, const Ids& targets);

  // The longest sequence the positions can read: max_len for a learned table, else no limit.
  std::size_t longest() const;
  // Throws std::invalid_argument naming `who`, the scheme, its limit and `length` when the
  // positions cannot read a sequence of `length` tokens.
  void check_length(std::size_t length, const std::string& who) const;

  const LanguageModelOptions& options() const { return options_; }

  nn::Embedding embed;
  std::unique_ptr<nn::PositionalEncoding> positions;  // absolute schemes only
  nn::Encoder blocks;                                 // causal self-attention: a decoder
  std::unique_ptr<nn::Linear> head;                   // only when the embeddings are not tied

 private:
  void init_as_gpt2(Generator& gen);  // LanguageModelOptions::gpt2_init
  LanguageModelOptions options_;
  nn::Dropout drop_;
};

}  // namespace tg::models

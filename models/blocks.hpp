// Blocks the models here are built from: the padding mask of a batch of ids, the mean over its
// real tokens, and the sentence encoder that the tagger and the classifier share (word embeddings
// with subword features, a convolution over neighbouring words, positions, a transformer encoder).
#pragma once

#include <memory>
#include <vector>

#include "../autograd/tensor.hpp"
#include "../nn/conv1d.hpp"
#include "../nn/dropout.hpp"
#include "../nn/embedding.hpp"
#include "../nn/linear.hpp"
#include "../nn/positions/absolute.hpp"
#include "../nn/subword_embedding.hpp"
#include "../nn/transformer.hpp"

namespace tg::models {

// The key padding mask (B, 1, 1, T) of ids (B, T): true where the id is not 0.
Mask key_padding_mask(const Ids& ids);

// The mean of h over the positions whose id is not 0: h (B, T, C), ids (B, T) -> (B, C).  A row of
// padding alone gives zeros.  The classifier's mean pooling, the translator's length input.
Tensor mean_over_tokens(const Tensor& h, const Ids& ids);

// The transformer stack of a model's options (any struct with d_model, heads, ff, layers,
// dropout, positions, relative_k, attention and kernel_features: the sentence encoder's, the
// translator's).  The scheme goes to every self-attention as it is: attention builds what lives
// inside it (nn/attention/multihead.hpp), and the model adds an absolute scheme's module to its
// input (nn::make_positional_encoding).
template <class Options>
nn::TransformerOptions transformer_options(const Options& o) {
  nn::TransformerOptions t{
      .ff = o.ff, .layers = o.layers, .dropout = o.dropout, .attention_dropout = o.dropout};
  nn::copy_self_attention(o, t);
  return t;
}

// The options of a model's absolute positions module (nn::make_positional_encoding), from its
// options struct (the sentence encoder's, the translator's, the language model's); fourier's
// settings when the struct has them.
template <class Options>
nn::PositionOptions position_options(const Options& o) {
  nn::PositionOptions p{.scheme = o.positions,
                        .dim = o.d_model,
                        .max_len = o.max_len,
                        .mlp_hidden = o.mlp_hidden,
                        .mlp_scale = o.mlp_scale};
  if constexpr (requires { o.fourier_features; })
    p.fourier_features = o.fourier_features, p.fourier_hidden = o.fourier_hidden;
  return p;
}

// The options of a model's word embedding: row 0 (padding) stays zero, rows start as
// N(0, 1 / d_model) (the model scales them by sqrt(d_model)).
nn::EmbeddingOptions word_embedding(std::size_t vocab, std::size_t d_model);

// The model-file fields (model_file.hpp) that the sentence encoder's and the translator's options
// share, by the names both write: the transformer's and the absolute positions' settings.
template <class Options, class F>
void transformer_fields(Options& o, F&& f) {
  f("d_model", o.d_model), f("heads", o.heads), f("ff", o.ff), f("layers", o.layers);
  f("dropout", o.dropout), f("positions", o.positions), f("relative_k", o.relative_k);
  f("max_len", o.max_len), f("mlp_hidden", o.mlp_hidden), f("mlp_scale", o.mlp_scale);
  f("attention", o.attention), f("kernel_features", o.kernel_features);
}

struct SentenceEncoderOptions {
  std::size_t vocab = 0;  // word ids; 0 is padding
  std::size_t d_model = 128, heads = 4, ff = 512, layers = 2;
  double dropout = 0.2;  // on the inputs, in attention and in the feed-forward layers
  nn::PositionScheme positions = nn::PositionScheme::relative;
  std::size_t relative_k = 8;  // relative, kernelized: offsets clipped to [-k, k]
  nn::AttentionKind attention = nn::AttentionKind::softmax;  // or kernelized (Luo et al. 2021)
  std::size_t kernel_features = 64;                          // kernelized: random features
  std::size_t max_len = 512;                                 // learned
  std::size_t mlp_hidden = 64;                               // mlp
  double mlp_scale = 512;                                    // mlp: the MLP reads position / scale
  std::size_t fourier_features = 64, fourier_hidden = 128;   // fourier
  // > 0: hashed subword features (subwords.hpp) pooled by an nn::SubwordEmbedding and added to
  // the word embedding, so that unseen words ("unfunny") are read from their pieces.
  std::size_t subword_buckets = 1 << 15;
  std::vector<std::size_t> subword_groups = {1, 4,
                                             19};  // SubwordOptions::groups(); empty: one pool
  // > 0: a convolution of this width over the word vectors before the encoder, so that
  // neighbouring words ("not good") are read together.
  std::size_t conv_width = 5;
  // Run the encoder's layers on the real tokens only (nn/packing.hpp): the same
  // values at real tokens, less work on padded batches.  Softmax attention only (kernelized
  // attention runs padded).  Not stored in model files.
  bool skip_padding = true;

  // The options a model file stores (model_file.hpp); subword_groups comes from the file's
  // SubwordOptions.
  template <class F>
  void fields(F&& f) {
    f("vocab", vocab), transformer_fields(*this, f);
    f("fourier_features", fourier_features), f("fourier_hidden", fourier_hidden);
    f("subword_buckets", subword_buckets), f("conv_width", conv_width);
  }
};

// Words to contextual vectors: ids (B, T) -> (B, T, C).
//   x = embed(ids) [+ subword features]) * sqrt(C)
//   x = x + dropout(relu(conv(x)))          (with a convolution; padding read as zeros)
//   x = dropout(positions(x))               (absolute schemes; relative ones live in attention)
//   h = encoder(x, padding mask)
class SentenceEncoder : public nn::Module {
 public:
  SentenceEncoder(const SentenceEncoderOptions& options, Generator& gen);

  // ids: (B, T), 0 = padding -> (B, T, C).  subwords: (B, T, K) feature ids, 0 = none (needed
  // when options.subword_buckets > 0).  `weights`, if given, receives each layer's attention
  // (B, H, T, T).  `who` names the model in errors.
  Tensor forward(const Ids& ids, const Ids* subwords, std::vector<Tensor>* weights,
                 const char* who);
  const SentenceEncoderOptions& options() const { return options_; }
  // skip_padding, where the attention allows it (softmax, not kernelized).
  bool skips_padding() const {
    return options_.skip_padding && options_.attention == nn::AttentionKind::softmax;
  }

  nn::Embedding embed;
  std::unique_ptr<nn::SubwordEmbedding> subword_embed;  // when subword_buckets > 0
  std::unique_ptr<nn::Conv1d> conv;                     // when conv_width > 0
  std::unique_ptr<nn::PositionalEncoding> positions;    // absolute schemes only
  nn::Encoder encoder;
  nn::Dropout drop;

 private:
  SentenceEncoderOptions options_;
};

// The base of the tagger and the classifier: the sentence encoder and an output layer `head`.
// Options has `encoder` (SentenceEncoderOptions).  The encoder's parameters keep their own
// names ("embed.weight", "encoder.0.attn...") beside "head.weight" and "head.bias".
template <class Options>
class SentenceModel : public nn::Module {
 public:
  const Options& options() const { return options_; }

  SentenceEncoder encoder;
  nn::Linear head;

 protected:
  SentenceModel(const Options& options, std::size_t head_in, std::size_t head_out, Generator& gen)
      : encoder(options.encoder, gen), head(head_in, head_out, gen), options_(options) {
    adopt(encoder);
    register_module("head", head);
  }

  Options options_;
};

}  // namespace tg::models

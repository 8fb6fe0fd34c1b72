// Transformer blocks (Vaswani et al. 2017): encoder and decoder layers and stacks of them.
//
// Pre-LayerNorm (the default; Xiong et al. 2020), each sublayer f is
//   x = x + dropout(f(norm(x)))         and the stack ends with a LayerNorm;
// post-LayerNorm (the original):
//   x = norm(x + dropout(f(x))).
// Positions come from outside (a PositionalEncoding added to the embeddings) or from inside
// self-attention (TransformerOptions::positions): the blocks work with either.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "activation.hpp"
#include "attention/multihead.hpp"
#include "dropout.hpp"
#include "layer_norm.hpp"
#include "mlp.hpp"

namespace tg::nn {

struct TransformerOptions {
  std::size_t d_model = 0;  // C
  std::size_t heads = 1;    // H
  std::size_t ff = 0;       // width of the feed-forward block
  std::size_t layers = 1;
  double dropout = 0.1;            // on each sublayer's output and inside the feed-forward block
  double attention_dropout = 0.1;  // on the attention weights
  Activation activation = Activation::gelu;
  bool pre_norm = true;
  // The scheme of positions and its settings, for every self-attention: what lives inside
  // attention (relative, rope, alibi, t5, xl) is built there; none and the absolute schemes add
  // nothing (see AttentionOptions::positions).
  PositionScheme positions = PositionScheme::none;
  std::size_t relative_k = 0;  // relative (then > 0), kernelized: offsets clipped to [-k, k]
  bool relative_skewed = true;
  // Kernelized self-attention (attention/kernelized.hpp): m random features, and its bias b_r
  // as its relative positions.
  AttentionKind attention = AttentionKind::softmax;
  std::size_t kernel_features = 64;
};

// Copies what self-attention is made of -- d_model, heads, the scheme of positions, relative_k,
// the kind of attention and kernel_features -- from one options struct to another: a model's
// options to TransformerOptions (models/blocks.hpp), TransformerOptions to AttentionOptions
// (which calls the kind `kind` where the others say `attention`).
template <class From, class To>
void copy_self_attention(const From& from, To& to) {
  to.d_model = from.d_model, to.heads = from.heads;
  to.positions = from.positions, to.relative_k = from.relative_k;
  if constexpr (requires { to.kind; }) to.kind = from.attention;
  else to.attention = from.attention;
  to.kernel_features = from.kernel_features;
}

class EncoderLayer : public Module {
 public:
  EncoderLayer(const TransformerOptions& options, Generator& gen);
  // x: (B, T, C), mask over (query, key) pairs (e.g. padding_mask) -> (B, T, C)
  Tensor forward(const Tensor& x, const std::optional<Mask>& mask = std::nullopt,
                 Tensor* weights = nullptr);
  // x: (B, T, C) -> (B, T, C), `call` going to self-attention as it is: a mask, causal
  // attention, a key/value cache (x then holds the newest positions), the weights.
  Tensor forward(const Tensor& x, const AttendOptions& call);

  MultiheadAttention self_attn;
  FeedForward ff;
  LayerNorm norm1, norm2;
  Dropout drop;

 private:
  bool pre_norm_;
};

// A stack of options.layers layers, registered as "0", "1", ..., and for pre-norm stacks a
// final LayerNorm ("final_norm"): what Encoder and Decoder are built on (transformer.cpp
// defines it for their two kinds of layer).  After set_checkpointing() (module.hpp) each layer
// runs as one nn::checkpoint in training: the stack's forward keeps only the layers' inputs, and
// backward computes each layer again (not when attention weights or a decoding cache are asked
// for: those calls run the layers as they are).
template <class Layer>
class LayerStack : public Module {
 public:
  std::vector<std::unique_ptr<Layer>> layers;  // "0", "1", ...
  std::unique_ptr<LayerNorm> final_norm;       // pre-norm stacks only

 protected:
  LayerStack(const char* who, const TransformerOptions& options,
             Generator& gen);  // `who` names it in errors
  // h through the layers in order, then the final norm.  With `kept` (checkpointing), each
  // layer keeps its inputs alone, h and `extra`, and backward runs it again as
  // again(layer, inputs, *kept); else run(i, h, w) runs layer i, w receiving its attention
  // weights when `weights` asks for them (each layer's are appended there).  Defined in
  // transformer.cpp, for Encoder and Decoder.
  template <class Kept, class Again, class Run>
  Tensor through_layers(Tensor h, const std::vector<Tensor>& extra,
                        const std::shared_ptr<const Kept>& kept, Again again, Run run,
                        std::vector<Tensor>* weights);
};

// What one call of an encoder stack may add, all optional:
//   enc.forward(x, {.causal = true, .cache = &cache})
// A stack whose self-attention is causal is a decoder-only transformer (GPT): each position
// sees itself and the positions before it, and with a cache it decodes token by token.
struct EncodeOptions {
  std::optional<Mask> mask;  // over (query, key) pairs, e.g. padding_mask
  bool causal = false;
  // Incremental decoding (causal): one KvCache per layer, resized to the layers at the first
  // call; x holds only the new positions, and the cache grows by T.
  std::vector<KvCache>* cache = nullptr;
  std::vector<Tensor>* weights = nullptr;  // receives each layer's attention weights (B, H, T, S)
  // Skip padding (packing.hpp): the layers run their position-wise parts, and fused attention,
  // on the real tokens only; x and the result stay (B, T, C), the result zero at padding (where the
  // padded step leaves values no real token reads).  The real tokens' values keep their bits.
  std::optional<TokenPacking> packing;
};

class Encoder : public LayerStack<EncoderLayer> {
 public:
  Encoder(const TransformerOptions& options, Generator& gen);
  // x: (B, T, C) -> (B, T, C).  `weights`, if given, receives each layer's attention weights.
  Tensor forward(const Tensor& x, const std::optional<Mask>& mask = std::nullopt,
                 std::vector<Tensor>* weights = nullptr);
  // x: (B, T, C) -> (B, T, C), with the options above.
  Tensor forward(const Tensor& x, const EncodeOptions& call);
};

// What one decoder layer keeps between decoding steps.
struct DecoderLayerCache {
  KvCache self;   // keys and values of the target positions so far
  KvCache cross;  // keys and values of the memory, computed at the first step
};

struct DecoderCache {
  std::vector<DecoderLayerCache> layers;
  std::size_t length() const { return layers.empty() ? 0 : layers[0].self.length(); }
  // Keeps batch rows `rows` (in that order, repeats allowed), as beam search needs when it
  // reorders its hypotheses or drops finished sentences.  `with_memory`: the cross-attention
  // keys and values too (not needed when rows stay within each sentence's beams).
  void select(const std::vector<std::size_t>& rows, bool with_memory);
};

// What one call of a decoder layer may add, all optional.
struct DecodeLayerOptions {
  std::optional<Mask> self_mask;       // e.g. target padding (with the causal mask, if causal)
  std::optional<Mask> memory_mask;     // source padding
  DecoderLayerCache* cache = nullptr;  // incremental decoding: y holds only the newest positions
  Tensor* cross_weights = nullptr;     // receives the cross-attention weights (B, H, T, S)
  bool causal = true;  // false: every position sees every other (a non-autoregressive decoder)
};

class DecoderLayer : public Module {
 public:
  DecoderLayer(const TransformerOptions& options, Generator& gen);
  // y: (B, T, C) target positions, memory: (B, S, C) encoder output -> (B, T, C).
  Tensor forward(const Tensor& y, const Tensor& memory, const DecodeLayerOptions& call = {});

  MultiheadAttention self_attn, cross_attn;
  FeedForward ff;
  LayerNorm norm1, norm2, norm3;
  Dropout drop;

 private:
  bool pre_norm_;
};

// What one call of the decoder may add, all optional:
//   dec.forward(y, memory, {.memory_mask = src_pad, .cache = &cache})
struct DecodeOptions {
  std::optional<Mask> self_mask;    // e.g. target padding (with the causal mask, if causal)
  std::optional<Mask> memory_mask;  // source padding
  DecoderCache* cache =
      nullptr;  // incremental decoding: pass only the new positions; the cache grows by T
  std::vector<Tensor>* cross_weights =
      nullptr;         // receives each layer's cross-attention (B, H, T, S)
  bool causal = true;  // false: no causal mask (a non-autoregressive decoder; no cache then)
};

class Decoder : public LayerStack<DecoderLayer> {
 public:
  Decoder(const TransformerOptions& options, Generator& gen);
  // y: (B, T, C), memory: (B, S, C) -> (B, T, C).
  Tensor forward(const Tensor& y, const Tensor& memory, const DecodeOptions& call = {});
};

}  // namespace tg::nn

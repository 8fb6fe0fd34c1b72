// Multi-head attention (Vaswani et al. 2017) with masks (masks.hpp), positions inside
// self-attention (../positions/scheme.hpp says which schemes live here; in_attention.hpp what
// they compute), kernelized attention (kernelized.hpp) and a key/value cache for incremental
// decoding.
#pragma once

#include <memory>
#include <optional>

#include "../../autograd/ops.hpp"
#include "../../autograd/runtime/generator.hpp"
#include "../linear.hpp"
#include "../module.hpp"
#include "../packing.hpp"
#include "../positions/scheme.hpp"
#include "kernelized.hpp"
#include "masks.hpp"

namespace tg::nn {

// q: (B, H, T, D), k: (B, H, S, D), v: (B, H, S, D) -> (B, H, T, D):
//   softmax(q k^T / sqrt(D), masked) v.
// `weights`, when given, receives the attention weights (B, H, T, S) (before dropout).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const std::optional<Mask>& mask = std::nullopt,
                                    Tensor* weights = nullptr);

struct AttentionOptions {
  std::size_t d_model = 0;  // C
  std::size_t heads = 1;    // H; D = C / H
  double dropout = 0.0;     // on the attention weights, in training mode
  bool bias = true;
  // Positions inside self-attention: the scheme (../positions/scheme.hpp) and its settings.
  // Self-attention builds what the scheme's kind asks for: Shaw's tables (relative), a bias
  // (alibi, t5), a rotation (rope) or Transformer-XL's terms (xl).  None and the absolute schemes
  // add nothing here (a model adds the absolute ones to its input), so a model may pass its
  // scheme to every self-attention as it is.  Cross-attention takes none.
  //   Kernelized attention brings its own relative positions, the bias b_r over offsets clipped
  // to relative_k, whatever the scheme: with it "relative" names that bias and adds no Shaw
  // tables, none and the absolute schemes leave it as it is, and the others are refused.
  PositionScheme positions = PositionScheme::none;
  std::size_t relative_k = 0;  // relative (then > 0), kernelized: offsets clipped to [-k, k]
  // How Shaw's relative logits are computed: skewed (O(T D) extra memory, Huang et al. 2018) or
  // direct (materialises a (T, S, D) tensor of embeddings; kept for tests and teaching).
  bool relative_skewed = true;
  double rope_base = 10000;                            // rope
  std::size_t t5_buckets = 32, t5_max_distance = 128;  // t5
  // One kernel per (batch, head) for the whole of attention (tg::fused_attention), or the
  // composed ops below (products, masked softmax, dropout: the reference, and what a reader can
  // follow op by op).  Both give the same results to float rounding; asking for the weights
  // runs the composed ops.
  bool fused = true;
  // Kernelized attention (kernelized.hpp; self-attention only: cross-attention stays softmax),
  // with its bias b_r as its relative positions (see positions above).
  AttentionKind kind = AttentionKind::softmax;
  std::size_t kernel_features = 64;  // m, the random features
};

// Keys and values of the positions seen so far, (B, H, S, D) each: decoding one new token then
// costs one step, not a pass over the whole prefix.
struct KvCache {
  Tensor k, v;
  std::size_t length() const { return k.defined() ? k.shape()[2] : 0; }
};

// What one call of attention may add to its input, all optional:
//   attn.forward(x, {.mask = pad, .causal = true, .cache = &cache, .weights = &w})
struct AttendOptions {
  std::optional<Mask> mask;   // broadcasts to the logits (B, H, T, S); true = may attend
  bool causal = false;        // self-attention: query i sees keys up to its own position
  KvCache* cache = nullptr;   // incremental decoding (see forward and forward_cross)
  Tensor* weights = nullptr;  // receives the attention weights (B, H, T, S), before dropout
  // Self-attention on real tokens only (nn/packing.hpp): x holds them packed, (N, C), and so
  // does the result; the projections run on those rows alone, and fused attention too (one block
  // per sentence, when every sentence's real tokens come first).  Not with a cache.
  std::optional<TokenPacking> packing;
};

class MultiheadAttention : public Module {
 public:
  // `gen` initialises the weights and draws the dropout masks, so it must outlive the module.
  MultiheadAttention(const AttentionOptions& options, Generator& gen);

  // Self-attention.  x: (B, T, C) -> (B, T, C).  With a cache, x holds the T newest positions;
  // their keys and values are appended to the cache and attention runs over all of them.  With
  // a packing, x: (N, C) -> (N, C), the real tokens alone.
  Tensor forward(const Tensor& x, const AttendOptions& call = {});

  // Cross-attention: queries from x (B, T, C), keys and values from memory (B, S, C) -> (B, T, C).
  // call.mask masks memory positions; with a cache, memory's keys and values are computed once
  // and reused.  There is no causal cross-attention.
  Tensor forward_cross(const Tensor& x, const Tensor& memory, const AttendOptions& call = {});

  Linear in_proj;   // (C, 3C): [q | k | v]
  Linear out_proj;  // (C, C)
  // What the positions add (k = relative_k), each defined only with its scheme:
  Tensor rel_key, rel_value;        // (2k + 1, D) each: relative (softmax)
  Tensor t5_bias;                   // (buckets, H): t5
  std::unique_ptr<Linear> xl_proj;  // W_R (C, C), no bias: xl
  Tensor xl_u, xl_v;                // (H, D) each: xl
  Tensor kernel_omega;              // (m, D) random features, a buffer (AttentionKind::kernelized)
  Tensor kernel_bias;  // (2k + 1, H) b_r for r = -k .. k, a parameter (AttentionKind::kernelized)
  // The terms of positions (in multihead_positions.cpp; the private ones below too):
  // c_r = exp(b_clip(r)) for r = -(S-1) .. S-1: (H, 2S - 1).
  Tensor kernel_coefficients(std::size_t S);
  // Transformer-XL's position terms of the logits, before scaling: q (B, H, T, D), k (B, H, S, D)
  // -> (B, H, T, S) = (q_i + v).W_R R_(pos_i - j) + u.k_j, by one product per distance and a skew.
  Tensor xl_logits(const Tensor& q, const Tensor& k, bool causal);
  const AttentionOptions& options() const { return options_; }

 private:
  Tensor self_attend(const Tensor& qkv, const AttendOptions& call);
  bool fuses(const AttendOptions& call) const;
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<Mask>& mask,
                bool causal, Tensor* weights, const Tensor& bias = Tensor());
  Tensor position_bias(std::size_t T, std::size_t S, bool causal,
                       Dtype dtype);  // (H, T, S), or none
  AttentionArgs fused_args(const std::optional<Mask>& mask, bool causal);
  Tensor relative_logits(const Tensor& q, std::size_t S, bool causal);
  Tensor relative_values(const Tensor& attn, bool causal);
  Tensor split_heads(const Tensor& x) const;  // (B, T, C) -> (B, H, T, D)
  Tensor merge_heads(const Tensor& x) const;  // (B, H, T, D) -> (B, T, C)
  void check_input(const char* what, const Tensor& x) const;

  AttentionOptions options_;
  std::size_t head_dim_;
  Generator* gen_;
  // What this attention adds for its scheme: shaw, bias, rotation, xl, or none (no scheme, an
  // absolute one, or kernelized attention, whose bias b_r is its own).
  PositionKind inside_;
};

}  // namespace tg::nn

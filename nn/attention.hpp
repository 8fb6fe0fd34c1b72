// Attention (Vaswani et al. 2017) with masks, relative positions (Shaw et al. 2018) and a
// key/value cache for incremental decoding.
//
// Masks are boolean, true where a query may attend to a key, and broadcast to the logits'
// shape (B, H, T, S): a key padding mask is (B, 1, 1, S), a causal or graph mask (T, S).
// A query whose keys are all masked gets zeros, and zero gradients (never NaN).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../autograd/named_enum.hpp"
#include "../autograd/runtime/generator.hpp"
#include "../autograd/ops.hpp"
#include "linear.hpp"
#include "module.hpp"

namespace tg::nn {

// (T, S): query i, at position i + S - T, sees key j iff j <= i + S - T.
Mask causal_mask(std::size_t T, std::size_t S);
// (B, 1, 1, S): key j of sequence b is real iff j < lengths[b].
Mask padding_mask(const std::vector<std::size_t>& lengths, std::size_t S);
// Both masks, broadcast together.
Mask mask_and(const Mask& a, const Mask& b);

// q: (B, H, T, D), k: (B, H, S, D), v: (B, H, S, D) -> (B, H, T, D):
//   softmax(q k^T / sqrt(D), masked) v.
// `weights`, when given, receives the attention weights (B, H, T, S) (before dropout).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const std::optional<Mask>& mask = std::nullopt,
                                    Tensor* weights = nullptr);

// Positions that live inside self-attention and add nothing to the input (beside Shaw's
// relative embeddings, relative_k).  Query i and key j sit at positions p_i and p_j (with a
// cache, the new queries come after the cached keys).
//   rope  (Su et al. 2021):    queries and keys rotated pair by pair by the angle p theta_i,
//                              theta_i = base^(-2i/D), so q.k depends on p_i - p_j only;
//   alibi (Press et al. 2022): logits + -m_h |p_i - p_j|, slopes m_h = 2^(-8 (h + 1) / H);
//   t5    (Raffel et al. 2020): logits + a learned scalar per (bucket of p_j - p_i, head);
//   xl    (Dai et al. 2019):   logits q_i.k_j + q_i.W_R R_(i-j) + u.k_j + v.W_R R_(i-j), R the
//                              sinusoid of the offset, W_R (C, C) and u, v (H, D) learned.
enum class AttentionPositions { none, rope, alibi, t5, xl };

// The slopes of ALiBi for H heads: 2^(-8/H), 2^(-16/H), ..., 2^(-8) (H = 8: 1/2 ... 1/256).
std::vector<double> alibi_slopes(std::size_t heads);
// T5's bucket of a relative position r = p_j - p_i.  Bidirectional: half the buckets for each
// sign (r > 0 in the upper half); causal: all for the past (r <= 0; the future gets 0).  Within
// a half, distances below half of it are exact, larger ones logarithmic up to max_distance.
std::int64_t t5_bucket(std::int64_t r, bool bidirectional, std::size_t buckets, std::size_t max_distance);
// RoPE: x (B, H, T, D), D even, the T positions offset .. offset + T - 1 -> x rotated.
Tensor rope_rotate(const Tensor& x, std::size_t offset, double base = 10000);

// Softmax attention, or kernelized attention with relative positions (Luo et al. 2021,
// "Stable, Fast and Accurate: Kernelized Attention with Relative Positional Encoding"):
//   z_i = phi(q_i) . sum_j c_(j-i) phi(k_j) v_j^T  /  phi(q_i) . sum_j c_(j-i) phi(k_j)
// with phi Performer's positive random features (FAVOR+, Choromanski et al. 2021) and
// c_r = exp(b_r), b_r a learned bias per head and offset (clipped to [-k, k]).  The sums over j
// are Toeplitz products, computed by FFT in O(n log n) (tg::toeplitz_matmul): no (T, S) matrix.
enum class AttentionKind { softmax, kernelized };
constexpr auto enum_table(AttentionKind) {
  return named_values<AttentionKind>("kind of attention",
                                     {{AttentionKind::softmax, "softmax"}, {AttentionKind::kernelized, "kernelized"}});
}

// FAVOR+ features, drawn once: m rows, in blocks of D orthogonal directions (Gram-Schmidt of
// Gaussian vectors), each row scaled to the length of its own Gaussian vector, so that every
// row is distributed as N(0, I_D) while rows in a block are orthogonal.  -> (m, D)
Array<double> orthogonal_gaussian_features(std::size_t m, std::size_t D, Generator& gen);

// Positive random features of x (B, H, T, D) for the rows w_f of omega (m, D):
//   phi(x)_f = exp(w_f . x' - |x'|^2 / 2) / sqrt(m),  x' = x / D^(1/4),
// so that E[phi(q) . phi(k)] = exp(q . k / sqrt(D)), the kernel of softmax attention.  Every
// query row (`queries`), or every (batch, head) block of keys, is scaled by a constant that
// keeps its largest exponent at 0; the constants cancel in kernelized attention's ratio.
// -> (B, H, T, m)
Tensor favor_features(const Tensor& x, const Tensor& omega, bool queries);

// Kernelized attention from features: phi_q (B, H, T, m), phi_k (B, H, S, m), v (B, H, S, D),
// c (H, 2S - 1) the coefficients of offsets j - p_i = -(S-1) .. S-1 (queries at positions
// S - T .. S - 1), mask broadcasting to (B, H, T, S) -> (B, H, T, D).  A query with no key gets
// zeros.  By FFT when T = S and the mask masks keys only ((B, 1, 1, S)); otherwise, with
// `direct`, or when `weights` asks for them (B, H, T, S), by the (T, S) matrix of weights (the
// reference the FFT is tested against).
Tensor kernelized_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, const Tensor& c,
                            const std::optional<Mask>& mask, bool causal, bool direct = false,
                            Tensor* weights = nullptr);

struct AttentionOptions {
  std::size_t d_model = 0;  // C
  std::size_t heads = 1;    // H; D = C / H
  double dropout = 0.0;     // on the attention weights, in training mode
  bool bias = true;
  // Shaw et al. relative positions: > 0 adds learned embeddings of the offset j - i, clipped to
  // [-k, k], to keys and values (one table each, shared across heads).  Self-attention only.
  std::size_t relative_k = 0;
  // How relative logits are computed: skewed (O(T D) extra memory, Huang et al. 2018) or direct
  // (materialises a (T, S, D) tensor of embeddings; kept for tests and teaching).
  bool relative_skewed = true;
  // rope, alibi or t5 (self-attention only; see AttentionPositions above).
  AttentionPositions positions = AttentionPositions::none;
  double rope_base = 10000;                                 // rope
  std::size_t t5_buckets = 32, t5_max_distance = 128;       // t5
  // One kernel per (batch, head) for the whole of attention (tg::fused_attention), or the
  // composed ops below (products, masked softmax, dropout: the reference, and what a reader can
  // follow op by op).  Both give the same results to float rounding; asking for the weights
  // runs the composed ops.
  bool fused = true;
  // Kernelized attention (self-attention only; its relative bias is its scheme of positions,
  // so it takes no relative_k or positions).  Cross-attention stays softmax.
  AttentionKind kind = AttentionKind::softmax;
  std::size_t kernel_features = 64;   // m, the random features
  std::size_t kernel_distance = 64;   // b_r for offsets clipped to [-k, k]
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
};

class MultiheadAttention : public Module {
 public:
  // `gen` initialises the weights and draws the dropout masks, so it must outlive the module.
  MultiheadAttention(const AttentionOptions& options, Generator& gen);

  // Self-attention.  x: (B, T, C) -> (B, T, C).  With a cache, x holds the T newest positions;
  // their keys and values are appended to the cache and attention runs over all of them.
  Tensor forward(const Tensor& x, const AttendOptions& call = {});

  // Cross-attention: queries from x (B, T, C), keys and values from memory (B, S, C) -> (B, T, C).
  // call.mask masks memory positions; with a cache, memory's keys and values are computed once
  // and reused.  There is no causal cross-attention.
  Tensor forward_cross(const Tensor& x, const Tensor& memory, const AttendOptions& call = {});

  Linear in_proj;   // (C, 3C): [q | k | v]
  Linear out_proj;  // (C, C)
  Tensor rel_key, rel_value;  // (2k + 1, D) each, when relative_k > 0
  Tensor t5_bias;             // (buckets, H), with AttentionPositions::t5
  std::unique_ptr<Linear> xl_proj;  // W_R (C, C), no bias, with AttentionPositions::xl
  Tensor xl_u, xl_v;                 // (H, D) each, with AttentionPositions::xl
  Tensor kernel_omega;  // (m, D) random features, a buffer (AttentionKind::kernelized)
  Tensor kernel_bias;   // (2k + 1, H) b_r for r = -k .. k, a parameter (AttentionKind::kernelized)
  // c_r = exp(b_clip(r)) for r = -(S-1) .. S-1: (H, 2S - 1).
  Tensor kernel_coefficients(std::size_t S);
  // Transformer-XL's position terms of the logits, before scaling: q (B, H, T, D), k (B, H, S, D)
  // -> (B, H, T, S) = (q_i + v).W_R R_(pos_i - j) + u.k_j, by one product per distance and a skew.
  Tensor xl_logits(const Tensor& q, const Tensor& k, bool causal);
  const AttentionOptions& options() const { return options_; }

 private:
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<Mask>& mask,
                bool causal, Tensor* weights, const Tensor& bias = Tensor());
  Tensor position_bias(std::size_t T, std::size_t S, bool causal, Dtype dtype);  // (H, T, S), or none
  AttentionArgs fused_args(const std::optional<Mask>& mask, bool causal);
  Tensor relative_logits(const Tensor& q, std::size_t S, bool causal);
  Tensor relative_values(const Tensor& attn, bool causal);
  Tensor split_heads(const Tensor& x) const;  // (B, T, C) -> (B, H, T, D)
  Tensor merge_heads(const Tensor& x) const;  // (B, H, T, D) -> (B, T, C)
  void check_input(const char* what, const Tensor& x) const;

  AttentionOptions options_;
  std::size_t head_dim_;
  Generator* gen_;
};

}  // namespace tg::nn

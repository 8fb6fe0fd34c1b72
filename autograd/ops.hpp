// Every differentiable op in tapegrad.  Each is defined in one ops_*.cpp file with its
// backward directly below its forward.  Shapes use the legend in shape.hpp; binary
// elementwise ops broadcast like NumPy.  Bad arguments throw std::invalid_argument naming the
// op, the rule and the shapes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/generator.hpp"
#include "tensor.hpp"

namespace tg {

// ---- elementwise (ops_elementwise.cpp) ---------------------------------------------------
// a: (...a), b: (...b) -> broadcast(...a, ...b)
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);  // a^b; the gradient for b needs a > 0
// x: (...) -> (...)
Tensor add(const Tensor& x, double s);
Tensor mul(const Tensor& x, double s);
Tensor pow(const Tensor& x, double p);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);  // gradient 0 at 0
Tensor tanh(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);         // gradient 0 at 0
enum class GeluForm { exact, tanh };  // x Phi(x), or the tanh approximation of it
Tensor gelu(const Tensor& x, GeluForm form = GeluForm::exact);
// v y'(x) for y = gelu(x): GELU's backward as an op (its vjp and jvp), differentiable again.
Tensor gelu_backward(const Tensor& v, const Tensor& x, GeluForm form = GeluForm::exact);
// Piecewise constant, so constants (not recorded): sign(x) in {-1, 0, 1}, and the mask x > 0.
Tensor sign(const Tensor& x);
Mask positive(const Tensor& x);

// mask, a, b broadcast together: y = mask ? a : b
Tensor where(const Mask& mask, const Tensor& a, const Tensor& b);
// x: (...), mask broadcastable to x's shape: y = mask ? value : x
Tensor masked_fill(const Tensor& x, const Mask& mask, double value);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& x, double s);
Tensor operator+(double s, const Tensor& x);
Tensor operator-(const Tensor& x, double s);
Tensor operator-(double s, const Tensor& x);
Tensor operator*(const Tensor& x, double s);
Tensor operator*(double s, const Tensor& x);
Tensor operator/(const Tensor& x, double s);
Tensor operator/(double s, const Tensor& x);

// ---- shape (ops_shape.cpp); each returns a new tensor (no views) ---------------------------
// x: (...) -> shape; one entry may be -1 (inferred)
Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape);
// x: (d0, ..., dn) -> (d[perm[0]], ..., d[perm[n]])
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& perm);
// swaps two axes
Tensor transpose(const Tensor& x, std::int64_t axis0 = -2, std::int64_t axis1 = -1);
// x: (..., n, ...) -> (..., stop - start, ...) along `axis`, 0 <= start <= stop <= n
// (negative start/stop count from the end, as in Python)
Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t stop);
// x: (..., n, ...) -> (..., before + n + after, ...): x between zeros along `axis`.  The adjoint
// of slice (its backward), an op of its own so that it differentiates again.
Tensor pad(const Tensor& x, std::int64_t axis, std::size_t before, std::size_t after);
// xs: k tensors equal but along `axis` -> sizes summed along `axis`
Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis);
// xs: k tensors of one shape (...) -> a new axis of size k at `axis`
Tensor stack(const std::vector<Tensor>& xs, std::int64_t axis = 0);
// A copy, recorded: gradients and tangents pass straight through.
Tensor clone(const Tensor& x);
// x: (...x) -> shape, where (...x) broadcasts to shape: the values repeated (NumPy's broadcast_to)
Tensor expand(const Tensor& x, const Shape& shape);
// The adjoint of expand: x: (...) -> shape, summed over every axis `shape` broadcasts along
// (the gradient of a broadcast input).  Returns x itself when the shapes are equal.
Tensor sum_to(const Tensor& x, const Shape& shape);
// x: (N, ...) -> (R, ...): out[r] = x[rows[r]] (rows may repeat; the backward adds them up).
// Beam search uses it to reorder its cached keys and values.
Tensor take_rows(const Tensor& x, const std::vector<std::size_t>& rows);
// x: (R, ...) -> (n, ...): out[rows[r]] += x[r], zeros in the rows never named.  The adjoint of
// take_rows (its backward); rows.size() == R, each row < n.
Tensor scatter_add_rows(const Tensor& x, const std::vector<std::size_t>& rows, std::size_t n);
// The rows of x (..., C), its leading axes read as one: x as (n, C) -> (R, C), out[r] =
// x[rows[r]]; rows strictly increasing.  What nn::TokenPacking packs real tokens with.
Tensor gather_rows(const Tensor& x, const std::shared_ptr<const std::vector<std::size_t>>& rows);
// Its adjoint: x (R, C) -> shape (..., C), row rows[r] (of the leading axes read as one) = x[r],
// zeros elsewhere; rows strictly increasing.
Tensor scatter_rows(const Tensor& x, const std::shared_ptr<const std::vector<std::size_t>>& rows,
                    const Shape& shape);

// x: (..., C), ids: (...) -> (...): out[i] = x[i, ids[i]], one entry of each last-axis row (the
// log-probability of each target token, from log_softmax's output).  The backward puts g into
// those entries.  Ids must lie in [0, C).
Tensor pick(const Tensor& x, const Ids& ids);
// v: (...), ids: (...) -> (..., C): out[i, ids[i]] = v[i], zeros elsewhere.  The adjoint of pick
// (its backward).
Tensor unpick(const Tensor& v, const Ids& ids, std::size_t C);

// ---- reductions (ops_reduce.cpp) ---------------------------------------------------------
// Over all elements -> () scalar
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
// Over `axes` (negative allowed); keepdim keeps them as size 1
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);
// Maximum over axes; the gradient goes to the maximal elements (split evenly between ties).
Tensor max(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);

// ---- matrix products (ops_matmul.cpp) ----------------------------------------------------
// a: (..., n, k), b: (..., k, m) -> (..., n, m); batch dims broadcast; both at least 2-d
Tensor matmul(const Tensor& a, const Tensor& b);
// op(a) op(b) summed down to `shape`, op = transpose where the flag is set (gemm reads the operand
// transposed: nothing is copied).  matmul's derivatives are these products, and so are theirs.
// a: (..., n, k), or (..., k, n) with trans_a; b: (..., k, m), or (..., m, k) with trans_b;
// the batch dims of a, b and shape broadcast together, and are summed over where shape has
// fewer -> shape = (..., n, m).  E.g. a weight's gradient x^T g_y over every row:
//   matmul_transposed(x, true, g_y, false, w.shape())   x: (B, T, in), g_y: (B, T, out)
Tensor matmul_transposed(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                         const Shape& shape);
// x: (..., in), w: (in, out), b: (out) or undefined -> (..., out):  x w + b in one op
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

// ---- neural-network ops (ops_nn.cpp) -----------------------------------------------------
// Numerically stable (the max is subtracted first).  x: (...) -> (...), along `axis`
Tensor softmax(const Tensor& x, std::int64_t axis = -1);
Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);
// Their backward kernels as ops (so differentiable again), for y = softmax(x) or log_softmax(x):
//   softmax_backward(v, y) = y (v - sum(v y)),  log_softmax_backward(v, y) = v - e^y sum(v),
// sums along `axis`: the gradient of x for an output gradient v.  v, y: (...) -> (...)
Tensor softmax_backward(const Tensor& v, const Tensor& y, std::int64_t axis = -1);
Tensor log_softmax_backward(const Tensor& v, const Tensor& y, std::int64_t axis = -1);

// Softmax over the last axis counting only entries where mask is true (mask broadcasts to x's
// shape).  Masked entries get 0; a row with no true entry gives all zeros and zero gradients,
// never NaN.  x: (..., S) -> (..., S)
Tensor masked_softmax(const Tensor& x, const Mask& mask);
// y (v - <v, y>) per last-axis row, for y = masked_softmax(x): its backward as an op (v = g_y)
// and its tangent (v = dx), differentiable again.  v, y: (..., S) -> (..., S)
Tensor masked_softmax_backward(const Tensor& v, const Tensor& y);

// Relative-position "skewing" (Huang et al. 2018).  Queries i = 0..T-1 sit at absolute
// positions i + S - T among S keys; column c of x holds relative distance d = c - (S - 1)
// (bidirectional: W = 2S - 1 columns, d in [-(S-1), S-1]; causal: W = S columns, d <= 0).
// rel_skew gathers, for every query i and key j, the column of distance j - pos_i:
//   x: (..., T, W) -> y: (..., T, S),  y[i, j] = x[i, j - i + T - 1]  (0 where j > pos_i, causal)
// rel_unskew is its adjoint: a: (..., T, S) -> z: (..., T, W), z[i, j - i + T - 1] = a[i, j].
Tensor rel_skew(const Tensor& x, bool causal);
Tensor rel_unskew(const Tensor& a, bool causal);

// The Toeplitz product of kernelized attention with relative positions (Luo et al. 2021):
// each output row sums the input rows weighted by a per-head coefficient of their offset,
//   y[b, h, i] = sum_j c[h, j - i + n - 1] x[b, h, j],
// by FFT (FFTW) in O(n log n) per column (ops_toeplitz.cpp).  Columns of c hold offsets
// -(n-1) .. n-1 (2n - 1 of them); causal: -(n-1) .. 0 (n of them; later rows add nothing).
//   c: (H, 2n - 1) or (H, n), x: (B, H, n, F) -> y: (B, H, n, F)
Tensor toeplitz_matmul(const Tensor& c, const Tensor& x, bool causal = false);
// Its two adjoints, ops of their own (each one's rules are the other two and itself):
//   the transposed product, toeplitz_matmul's gradient for x (offsets reversed):
//     z[b, h, j] = sum_i c[h, j - i + n - 1] g[b, h, i]
//     c as above, g: (B, H, n, F) -> (B, H, n, F)
Tensor toeplitz_matmul_transposed(const Tensor& c, const Tensor& g, bool causal = false);
//   the correlation, toeplitz_matmul's gradient for c:
//     z[h, r + n - 1] = sum over b, i, f of g[b, h, i, f] x[b, h, i + r, f]
//     g, x: (B, H, n, F) -> (H, 2n - 1), offsets r = -(n-1) .. n-1; causal (H, n), r <= 0
Tensor toeplitz_correlate(const Tensor& g, const Tensor& x, bool causal = false);
// Kernelized attention's sums in one op (Luo et al. 2021), per (batch, head) block:
//   u[i] = sum_j c[j - i] (phi_q[i] . phi_k[j]) [v[j], 1]
// the same as toeplitz_matmul over the m (D + 1) columns phi_k[j, f] [v[j], 1], read back with
// phi_q, without those columns as tensors (backward recomputes them per block).  c as above.
//   phi_q, phi_k: (B, H, n, m), v: (B, H, n, D) -> u: (B, H, n, D + 1), the last column the
//   denominators sum_j c[j - i] phi_q[i] . phi_k[j]
Tensor kernel_toeplitz(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, const Tensor& c,
                       bool causal = false);
// Its backward as ops: the gradients of sum(g_u * u) for phi_q, phi_k, v and c (in that order),
// from one pass of per-block FFTs; differentiable again (their rules call kernel_toeplitz and
// kernel_toeplitz_backward).  g_u: (B, H, n, D + 1), the others as above.
std::array<Tensor, 4> kernel_toeplitz_backward(const Tensor& g_u, const Tensor& phi_q,
                                               const Tensor& phi_k, const Tensor& v,
                                               const Tensor& c, bool causal = false);

// Attention in one op, per (batch, head) block: the same as the composed version in
// nn/attention/multihead.cpp (products, relative positions, scale, masked softmax, dropout,
// products), computed without the (B, H, T, S) temporaries between them (ops_fused_attention.cpp).
struct AttentionArgs {
  double scale = 1.0;          // logits = (q . k + q . a_K) * scale
  const Mask* mask = nullptr;  // true where query i may see key j; broadcasts to (B, H, T, S)
  bool causal = false;         // query i, at position i + S - T, sees keys j <= i + S - T only
  // Shaw et al. relative positions: tables (2k + 1, D), row clip(j - pos_i, -k, k) + k, added
  // to keys (rel_key) and values (rel_value).  Both undefined: none.
  Tensor rel_key, rel_value;
  std::size_t relative_k = 0;
  double dropout = 0.0;  // on the weights, in training; one draw from gen, as dropout() takes
  Generator* gen = nullptr;
  bool training = false;
};
// q: (B, H, T, D), k, v: (B, H, S, D) -> (B, H, T, D).  Saves the weights (B, H, T, S).
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionArgs& args);
// The same for self-attention on a projection's output, heads read in place:
// qkv: (B, T, 3C) = [q | k | v], C = heads D -> (B, T, C), heads side by side.
Tensor fused_self_attention(const Tensor& qkv, std::size_t heads, const AttentionArgs& args);
// Real tokens packed as rows, as nn::TokenPacking packs them: row r of a packed (N, C) is row
// rows[r] of the padded (B, T, C) read as (B T, C).
struct PackedTokens {
  std::size_t batch = 0, length = 0;  // B, T
  std::shared_ptr<const std::vector<std::size_t>> rows;
};
// The same on packed tokens, each sentence's at its first places (rows b T, b T + 1, ...):
// qkv: (N, 3C) -> (N, C), what fused_self_attention gives the real tokens of the padded
// (B, T, 3C) with the padding masked (args.mask, if any, masks further).  Sentence b's L_b
// tokens make blocks of (L_b, L_b): nothing is computed for the padding, and the real tokens'
// values keep their bits (on tapegrad's own product kernels).  Saves those blocks' weights.
Tensor fused_token_attention(const Tensor& qkv, std::size_t heads, const PackedTokens& tokens,
                             const AttentionArgs& args);
// Their backward as ops (one per gradient, from one run of the backward kernel), so that
// attention differentiates again, in both modes: from g_out, shaped like the output, the
// gradients of q, k, v (or qkv), then of rel_key and rel_value when args has them.  `draw` is
// the generator draw the forward took for dropout (args.gen is not used).  The weights are
// computed again (the forward's own rule passes its saved ones).
std::vector<Tensor> fused_attention_backward(const Tensor& g_out, const Tensor& q, const Tensor& k,
                                             const Tensor& v, const AttentionArgs& args,
                                             std::uint64_t draw = 0);
std::vector<Tensor> fused_self_attention_backward(const Tensor& g_out, const Tensor& qkv,
                                                  std::size_t heads, const AttentionArgs& args,
                                                  std::uint64_t draw = 0);
std::vector<Tensor> fused_token_attention_backward(const Tensor& g_out, const Tensor& qkv,
                                                   std::size_t heads, const PackedTokens& tokens,
                                                   const AttentionArgs& args,
                                                   std::uint64_t draw = 0);
// fused_attention written with ops (matmul, masked_softmax, ...; attention_composed.hpp): the
// same values up to rounding, and the same dropout mask from the same generator state.  Keeps
// every intermediate; the reference for tests, and the source of the fused ops' second
// derivatives.
Tensor attention_composed(const Tensor& q, const Tensor& k, const Tensor& v,
                          const AttentionArgs& args);

// weight: (V, C), ids: (...) -> (..., C).  Rows of `padding_id` get no gradient (-1: none).
Tensor embedding(const Tensor& weight, const Ids& ids, std::int64_t padding_id = -1);
// Its backward as an op, a scatter-add: g: (..., C), ids: (...) -> (V, C), row v the sum of the
// g[i] with ids[i] = v, except v = padding_id.
Tensor embedding_backward(const Tensor& g, const Ids& ids, std::size_t V,
                          std::int64_t padding_id = -1);

// Bags of rows, pooled by group means and summed.  weight: (V, C), ids: (..., K) -> (..., C).
// The K slots of each bag are cut into consecutive groups of the given sizes (summing to K);
// id 0 is an empty slot:
//   y[...] = sum over groups G of mean{ weight[ids[..., k]] : k in G, ids[..., k] != 0 }
// (a group with no ids adds nothing).  The gradient goes to each row used, divided by its
// group's count; row 0 gets none.  The same as embedding + slice + sum + divide, without the
// (..., K, C) intermediate: the subword features of nn::SubwordEmbedding.
Tensor embedding_bags(const Tensor& weight, const Ids& ids, const std::vector<std::size_t>& groups);
// Its backward as an op, a scatter-add: g: (..., C), ids: (..., K) -> (V, C), each row used
// receiving g divided by its group's count.
Tensor embedding_bags_backward(const Tensor& g, const Ids& ids,
                               const std::vector<std::size_t>& groups, std::size_t V);

// Zeroes each element with probability p and scales the rest by 1 / (1 - p).
// With training == false, or p == 0, returns x unchanged.  Takes one draw from `gen` per call;
// the mask is a function of that draw and the element index (recomputed by the backward pass).
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training = true);
// The same for x (R, C) whose rows stand at rows `at` of a larger (n, C) tensor: element (r, c)
// drops as element (at[r], c) of that tensor would under the same draw.  So a step that runs
// its position-wise layers on real tokens only (nn/packing.hpp) drops what the padded step would.
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training,
               const std::shared_ptr<const std::vector<std::size_t>>& at);

struct CrossEntropyOptions {
  std::int64_t ignore_index = -100;  // targets equal to this add no loss and no gradient
  double label_smoothing = 0.0;      // target distribution (1 - e) one-hot + e / C uniform
};
// logits: (..., C), targets: (...) -> () mean over the non-ignored targets
// (0 when every target is ignored).  Fused with log_softmax.
Tensor cross_entropy(const Tensor& logits, const Ids& targets,
                     const CrossEntropyOptions& options = {});
// g_y (p - q) / n, p = softmax(logits) and q the target distribution: cross_entropy's gradient
// for the logits, its fused backward as an op of (g_y, logits), differentiable again.
// g_y: () -> (..., C)
Tensor cross_entropy_backward(const Tensor& g_y, const Tensor& logits, const Ids& targets,
                              const CrossEntropyOptions& options = {});

// logits, targets: the same shape (...) -> () mean of
//   max(x, 0) - x t + log(1 + e^-|x|)   (= -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)))
// Fused and stable for large |x|.  Targets are probabilities in [0, 1] and may require grad.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets);

// x: (..., C), gamma: (C), beta: (C) -> (..., C), normalised over the last axis.  One fused op.
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5);
// The gradients of y = layer_norm(x, gamma, beta, eps) from g_y (x's shape): layer norm's fused
// backward as three ops of (g_y, x, gamma), each differentiable again.
struct LayerNormBackward {
  Tensor g_x, g_gamma, g_beta;  // (..., C), (C), (C)
};
LayerNormBackward layer_norm_backward(const Tensor& g_y, const Tensor& x, const Tensor& gamma,
                                      double eps = 1e-5);

}  // namespace tg

#include "attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <xtensor/xbroadcast.hpp>
#include <xtensor/xoperation.hpp>

#include "../autograd/broadcast.hpp"
#include "../autograd/ops.hpp"
#include "init.hpp"
#include "positional.hpp"

namespace tg::nn {

Mask causal_mask(std::size_t T, std::size_t S) {
  if (T > S) fail("causal_mask", "more queries (" + std::to_string(T) + ") than keys (" + std::to_string(S) + ")");
  Mask m = Mask::from_shape({T, S});
  for (std::size_t i = 0; i < T; ++i)
    for (std::size_t j = 0; j < S; ++j) m(i, j) = j <= i + S - T;
  return m;
}

Mask padding_mask(const std::vector<std::size_t>& lengths, std::size_t S) {
  Mask m = Mask::from_shape({lengths.size(), 1, 1, S});
  for (std::size_t b = 0; b < lengths.size(); ++b) {
    if (lengths[b] > S)
      fail("padding_mask", "sequence " + std::to_string(b) + " has length " + std::to_string(lengths[b]) +
                               ", more than the " + std::to_string(S) + " positions");
    for (std::size_t j = 0; j < S; ++j) m(b, 0, 0, j) = j < lengths[b];
  }
  return m;
}

Mask mask_and(const Mask& a, const Mask& b) { return Mask(a && b); }

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const std::optional<Mask>& mask, Tensor* weights) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || k.shape() != v.shape() ||
      q.shape()[3] != k.shape()[3] || q.shape()[0] != k.shape()[0] || q.shape()[1] != k.shape()[1])
    fail("scaled_dot_product_attention", "needs q (B, H, T, D), k and v (B, H, S, D): got q " +
                                             shape_str(q.shape()) + ", k " + shape_str(k.shape()) +
                                             ", v " + shape_str(v.shape()));
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.shape()[3]));
  Tensor logits = matmul(q, transpose(k)) * scale;  // (B, H, T, S)
  Tensor attn = mask ? masked_softmax(logits, *mask) : softmax(logits);
  if (weights) *weights = attn;
  return matmul(attn, v);
}

// ---- positions inside attention ------------------------------------------------------------

std::vector<double> alibi_slopes(std::size_t heads) {
  std::vector<double> m(heads);
  for (std::size_t h = 0; h < heads; ++h) m[h] = std::exp2(-8.0 * static_cast<double>(h + 1) / static_cast<double>(heads));
  return m;
}

std::int64_t t5_bucket(std::int64_t r, bool bidirectional, std::size_t buckets, std::size_t max_distance) {
  std::int64_t n = static_cast<std::int64_t>(buckets), bucket = 0, distance;
  if (bidirectional) {
    n /= 2;
    if (r > 0) bucket = n;  // the future in the upper half
    distance = std::abs(r);
  } else {
    distance = std::max<std::int64_t>(-r, 0);  // the past; the future shares bucket 0
  }
  const std::int64_t exact = n / 2;
  if (distance < exact) return bucket + distance;
  const double log_ratio = std::log(static_cast<double>(distance) / exact) /
                           std::log(static_cast<double>(max_distance) / exact);
  return bucket + std::min<std::int64_t>(exact + static_cast<std::int64_t>(log_ratio * (n - exact)), n - 1);
}

// Each pair (x_2i, x_2i+1) at position p turns by the angle p theta_i:
//   (x_2i cos - x_2i+1 sin,  x_2i sin + x_2i+1 cos),  theta_i = base^(-2i/D).
// Built from ops (reshape, slice, mul, concat), so its backward is theirs: the rotation by -p.
Tensor rope_rotate(const Tensor& x, std::size_t offset, double base) {
  if (!x.defined() || x.dim() != 4 || x.shape()[3] % 2 != 0)
    fail("rope_rotate", "x must be (B, H, T, D) with D even, got " + (x.defined() ? shape_str(x.shape()) : "undefined"));
  const std::size_t T = x.shape()[2], D = x.shape()[3], half = D / 2;
  Array<double> cos = Array<double>::from_shape({T, half, 1}), sin = Array<double>::from_shape({T, half, 1});
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(offset + t) * std::pow(base, -2.0 * static_cast<double>(i) / D);
      cos(t, i, 0) = std::cos(angle);
      sin(t, i, 0) = std::sin(angle);
    }
  const auto B = static_cast<std::int64_t>(x.shape()[0]), H = static_cast<std::int64_t>(x.shape()[1]);
  const auto Ti = static_cast<std::int64_t>(T), Di = static_cast<std::int64_t>(D);
  const Tensor pairs = reshape(x, {B, H, Ti, Di / 2, 2});
  const Tensor a = slice(pairs, -1, 0, 1), b = slice(pairs, -1, 1, 2);  // (B, H, T, D/2, 1)
  const Tensor c = Tensor(cos).to(x.dtype()), s = Tensor(sin).to(x.dtype());
  return reshape(concat({a * c - b * s, a * s + b * c}, -1), {B, H, Ti, Di});
}

// ---- kernelized attention (Luo et al. 2021) ------------------------------------------------

Array<double> orthogonal_gaussian_features(std::size_t m, std::size_t D, Generator& gen) {
  if (m == 0 || D == 0) fail("orthogonal_gaussian_features", "needs m > 0 features of D > 0 dims");
  Array<double> w = xt::zeros<double>({m, D});
  for (std::size_t block = 0; block < m; block += D) {
    for (std::size_t r = block; r < std::min(block + D, m); ++r) {
      // A Gaussian direction, made orthogonal to the block's earlier rows (redrawn in the
      // measure-zero case that it falls in their span)...
      double norm = 0;
      while (norm < 1e-6) {
        for (std::size_t d = 0; d < D; ++d) w(r, d) = gen.normal();
        for (std::size_t p = block; p < r; ++p) {
          double dot = 0;
          for (std::size_t d = 0; d < D; ++d) dot += w(r, d) * w(p, d);
          for (std::size_t d = 0; d < D; ++d) w(r, d) -= dot * w(p, d);
        }
        norm = 0;
        for (std::size_t d = 0; d < D; ++d) norm += w(r, d) * w(r, d);
        norm = std::sqrt(norm);
      }
      for (std::size_t d = 0; d < D; ++d) w(r, d) /= norm;
    }
  }
  for (std::size_t r = 0; r < m; ++r) {  // ... then given the length of a Gaussian vector
    double length = 0;
    for (std::size_t d = 0; d < D; ++d) length += std::pow(gen.normal(), 2);
    for (std::size_t d = 0; d < D; ++d) w(r, d) *= std::sqrt(length);
  }
  return w;
}

Tensor favor_features(const Tensor& x, const Tensor& omega, bool queries) {
  if (!x.defined() || !omega.defined() || x.dim() != 4 || omega.dim() != 2 || omega.shape()[1] != x.shape()[3])
    fail("favor_features", "needs x (B, H, T, D) and omega (m, D), got x " +
                               (x.defined() ? shape_str(x.shape()) : "undefined") + ", omega " +
                               (omega.defined() ? shape_str(omega.shape()) : "undefined"));
  const double D = static_cast<double>(x.shape()[3]), m = static_cast<double>(omega.shape()[0]);
  const Tensor xs = x * std::pow(D, -0.25);
  const Tensor u = matmul(xs, transpose(omega)) - sum(xs * xs, {-1}, true) * 0.5;  // (B, H, T, m)
  // The stabiliser: a constant per query row, or per (batch, head) block of keys.  Taken from
  // detached values, since the ratio it cancels from does not depend on it.
  const Tensor top = queries ? max(u.detach(), {-1}, true) : max(u.detach(), {-2, -1}, true);
  return exp(u - top) * (1.0 / std::sqrt(m));
}

namespace {

// A mask that says only which of the S keys exist: (B or 1, 1, 1, S).
bool masks_keys_only(const Mask& mask, std::size_t S) {
  return mask.dimension() == 4 && mask.shape()[1] == 1 && mask.shape()[2] == 1 && mask.shape()[3] == S;
}

// num / den, and zeros where den is 0 (a query with no key).  den: (..., 1)
Tensor divide_or_zero(const Tensor& num, const Tensor& den) {
  const Mask empty = dispatch(den.dtype(), [&]<class T>() { return Mask(xt::equal(den.data<T>(), T(0))); });
  return num / tg::where(empty, den + 1.0, den);
}

}  // namespace

Tensor kernelized_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, const Tensor& c,
                            const std::optional<Mask>& mask, bool causal, bool direct, Tensor* weights) {
  const char* op = "kernelized_attention";
  if (!phi_q.defined() || !phi_k.defined() || !v.defined() || !c.defined() || phi_q.dim() != 4 ||
      phi_k.dim() != 4 || v.dim() != 4 || c.dim() != 2)
    fail(op, "needs phi_q (B, H, T, m), phi_k (B, H, S, m), v (B, H, S, D) and c (H, 2S - 1)");
  const std::size_t B = phi_q.shape()[0], H = phi_q.shape()[1], T = phi_q.shape()[2], m = phi_q.shape()[3];
  const std::size_t S = phi_k.shape()[2], D = v.shape()[3];
  if (phi_k.shape() != Shape{B, H, S, m} || v.shape() != Shape{B, H, S, D} || c.shape() != Shape{H, 2 * S - 1} ||
      T > S || S == 0)
    fail(op, "shapes do not fit: phi_q " + shape_str(phi_q.shape()) + " (B, H, T, m), phi_k " +
                 shape_str(phi_k.shape()) + " (B, H, S, m), v " + shape_str(v.shape()) + " (B, H, S, D), c " +
                 shape_str(c.shape()) + " (H, 2S - 1), with 0 < T <= S");
  if (mask && !broadcasts_to(mask->shape(), Shape{B, H, T, S}))
    fail(op, "the mask " + shape_str(mask->shape()) + " does not broadcast to (B, H, T, S) = " +
                 shape_str(Shape{B, H, T, S}));
  const auto Si = static_cast<std::int64_t>(S), Di = static_cast<std::int64_t>(D);

  if (direct || weights || T != S || (mask && !masks_keys_only(*mask, S))) {
    // The formula as written: weights A_ij = c_(j - p_i) phi(q_i) . phi(k_j), masked, then
    // z_i = sum_j A_ij v_j / sum_j A_ij.  O(T S) time and memory.
    Ids offset = Ids::from_shape({T, S});  // column of c: j - p_i + S - 1
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < S; ++j) offset(i, j) = static_cast<std::int64_t>(j + T) - static_cast<std::int64_t>(i + 1);
    const Tensor C = permute(embedding(transpose(c), offset), {2, 0, 1});  // (T, S, H) -> (H, T, S)
    Tensor A = matmul(phi_q, transpose(phi_k)) * C;                        // (B, H, T, S)
    std::optional<Mask> keep = mask;
    if (causal) keep = keep ? mask_and(*keep, causal_mask(T, S)) : causal_mask(T, S);
    if (keep) A = masked_fill(A, Mask(!*keep), 0.0);
    const Tensor den = sum(A, {-1}, true);
    if (weights) *weights = divide_or_zero(A, den);
    return divide_or_zero(matmul(A, v), den);
  }

  // By FFT (tg::kernel_toeplitz): u_i = sum_j c_(j-i) phi(q_i) . phi(k_j) [v_j, 1], whose last
  // column is the denominator.  Masked keys contribute nothing.
  Tensor pk = phi_k;
  if (mask) {
    Array<double> kept = Array<double>::from_shape({mask->shape()[0], 1, S, 1});
    for (std::size_t i = 0; i < kept.size(); ++i) kept.data()[i] = mask->data()[i];
    pk = pk * Tensor(kept).to(phi_k.dtype());
  }
  const Tensor u = kernel_toeplitz(phi_q, pk, v, causal ? slice(c, 1, 0, Si) : c, causal);  // (B, H, S, D + 1)
  return divide_or_zero(slice(u, -1, 0, Di), slice(u, -1, Di, Di + 1));
}

MultiheadAttention::MultiheadAttention(const AttentionOptions& options, Generator& gen)
    : in_proj(LinearOptions{options.d_model, 3 * options.d_model, options.bias}, gen),
      out_proj(LinearOptions{options.d_model, options.d_model, options.bias}, gen),
      options_(options),
      head_dim_(options.heads == 0 ? 0 : options.d_model / options.heads),
      gen_(&gen) {
  if (options.heads == 0 || options.d_model % options.heads != 0)
    fail("MultiheadAttention", "d_model " + std::to_string(options.d_model) +
                                   " must be a positive multiple of heads " + std::to_string(options.heads));
  if (!(options.dropout >= 0 && options.dropout < 1))
    fail("MultiheadAttention", "dropout must be in [0, 1), got " + std::to_string(options.dropout));
  register_module("in_proj", in_proj);
  register_module("out_proj", out_proj);
  if (options.relative_k > 0) {
    const std::size_t rows = 2 * options.relative_k + 1;
    rel_key = register_parameter("rel_key", zeros({rows, head_dim_}));
    rel_value = register_parameter("rel_value", zeros({rows, head_dim_}));
    init::xavier_uniform(rel_key, gen);
    init::xavier_uniform(rel_value, gen);
  }
  if (options.positions != AttentionPositions::none && options.relative_k > 0)
    fail("MultiheadAttention", "one scheme of positions inside attention: relative_k or rope/alibi/t5, not both");
  if (options.positions == AttentionPositions::rope && head_dim_ % 2 != 0)
    fail("MultiheadAttention", "rope turns pairs of dims: the head dim " + std::to_string(head_dim_) + " must be even");
  if (options.positions == AttentionPositions::xl) {
    xl_proj = std::make_unique<Linear>(LinearOptions{options.d_model, options.d_model, false}, gen);
    register_module("xl_proj", *xl_proj);
    xl_u = register_parameter("xl_u", zeros({options.heads, head_dim_}));
    xl_v = register_parameter("xl_v", zeros({options.heads, head_dim_}));
  }
  if (options.kind == AttentionKind::kernelized) {
    if (options.relative_k > 0 || options.positions != AttentionPositions::none)
      fail("MultiheadAttention", "kernelized attention has its own relative positions (the bias b_r): "
                                 "it takes no relative_k and no rope/alibi/t5/xl");
    if (options.kernel_features == 0) fail("MultiheadAttention", "kernelized attention needs kernel_features > 0");
    kernel_omega = register_buffer(
        "kernel_omega", Tensor(orthogonal_gaussian_features(options.kernel_features, head_dim_, gen)).to(Dtype::f32));
    // b_r = 0 at the start: c_r = 1, plain Performer attention until the offsets are learned.
    kernel_bias = register_parameter("kernel_bias", zeros({2 * options.kernel_distance + 1, options.heads}));
  }
  if (options.positions == AttentionPositions::t5) {
    if (options.t5_buckets < 4 || options.t5_max_distance <= options.t5_buckets / 4)
      fail("MultiheadAttention", "t5 needs at least 4 buckets and a max distance above a quarter of them");
    t5_bias = register_parameter("t5_bias", zeros({options.t5_buckets, options.heads}));  // T5 starts at 0
  }
}

void MultiheadAttention::check_input(const char* what, const Tensor& x) const {
  if (!x.defined() || x.dim() != 3 || x.shape()[2] != options_.d_model)
    fail("MultiheadAttention", std::string(what) + " must be (B, T, C) with C = " +
                                   std::to_string(options_.d_model) + ", got " +
                                   (x.defined() ? shape_str(x.shape()) : "undefined"));
  check_input_dtype("MultiheadAttention", x);
}

Tensor MultiheadAttention::split_heads(const Tensor& x) const {
  const auto B = static_cast<std::int64_t>(x.shape()[0]), T = static_cast<std::int64_t>(x.shape()[1]);
  return permute(reshape(x, {B, T, static_cast<std::int64_t>(options_.heads),
                             static_cast<std::int64_t>(head_dim_)}), {0, 2, 1, 3});
}

Tensor MultiheadAttention::merge_heads(const Tensor& x) const {
  const auto B = static_cast<std::int64_t>(x.shape()[0]), T = static_cast<std::int64_t>(x.shape()[2]);
  return reshape(permute(x, {0, 2, 1, 3}), {B, T, static_cast<std::int64_t>(options_.d_model)});
}

namespace {

// The table row for offset d: clip(d, -k, k) + k.
std::int64_t bucket(std::int64_t d, std::int64_t k) { return std::clamp(d, -k, k) + k; }

// Table rows for every distance a query can have to a key: W = S (causal: d = -(S-1) .. 0)
// or 2S - 1 (bidirectional: d = -(S-1) .. S-1), in that order.
Ids distance_buckets(std::size_t S, bool causal, std::size_t k) {
  const std::size_t W = causal ? S : 2 * S - 1;
  Ids ids = Ids::from_shape({W});
  for (std::size_t c = 0; c < W; ++c)
    ids(c) = bucket(static_cast<std::int64_t>(c) - static_cast<std::int64_t>(S - 1), static_cast<std::int64_t>(k));
  return ids;
}

// Table rows for every (query i, key j) pair, query i at position i + S - T: (T, S).
Ids pair_buckets(std::size_t T, std::size_t S, std::size_t k) {
  Ids ids = Ids::from_shape({T, S});
  for (std::size_t i = 0; i < T; ++i)
    for (std::size_t j = 0; j < S; ++j)
      ids(i, j) = bucket(static_cast<std::int64_t>(j) - static_cast<std::int64_t>(i + S - T),
                         static_cast<std::int64_t>(k));
  return ids;
}

}  // namespace

Tensor MultiheadAttention::kernel_coefficients(std::size_t S) {
  const Tensor b = embedding(kernel_bias, distance_buckets(S, false, options_.kernel_distance));  // (2S - 1, H)
  return exp(transpose(b));
}

// rel[b, h, i, j] = q_i . a_K[clip(j - pos_i)]:  (B, H, T, D) -> (B, H, T, S)
Tensor MultiheadAttention::relative_logits(const Tensor& q, std::size_t S, bool causal) {
  const std::size_t T = q.shape()[2], k = options_.relative_k;
  if (options_.relative_skewed) {
    // One dot product per query and *distance* (W of them), then skew into (query, key) pairs.
    Tensor table = embedding(rel_key, distance_buckets(S, causal, k));  // (W, D)
    return rel_skew(matmul(q, transpose(table)), causal);               // (B, H, T, W) -> (.., S)
  }
  // Direct: an embedding per (query, key) pair, R (T, S, D); rel[.., i, j] = q_i . R[i, j].
  const auto B = static_cast<std::int64_t>(q.shape()[0]), H = static_cast<std::int64_t>(q.shape()[1]);
  const auto Ti = static_cast<std::int64_t>(T), Si = static_cast<std::int64_t>(S),
             D = static_cast<std::int64_t>(head_dim_);
  Tensor R = embedding(rel_key, pair_buckets(T, S, k));              // (T, S, D)
  Tensor qt = reshape(permute(q, {2, 0, 1, 3}), {Ti, B * H, D});     // (T, B H, D)
  Tensor rel = matmul(qt, transpose(R));                             // (T, B H, S)
  return permute(reshape(rel, {Ti, B, H, Si}), {1, 2, 0, 3});        // (B, H, T, S)
}

// out[b, h, i] = sum_j attn[b, h, i, j] a_V[clip(j - pos_i)]:  (B, H, T, S) -> (B, H, T, D)
Tensor MultiheadAttention::relative_values(const Tensor& attn, bool causal) {
  const std::size_t T = attn.shape()[2], S = attn.shape()[3], k = options_.relative_k;
  if (options_.relative_skewed) {
    // Sum the weights per distance (unskew), then one product with the table.
    Tensor table = embedding(rel_value, distance_buckets(S, causal, k));  // (W, D)
    return matmul(rel_unskew(attn, causal), table);                      // (B, H, T, W) (W, D)
  }
  const auto B = static_cast<std::int64_t>(attn.shape()[0]), H = static_cast<std::int64_t>(attn.shape()[1]);
  const auto Ti = static_cast<std::int64_t>(T), Si = static_cast<std::int64_t>(S),
             D = static_cast<std::int64_t>(head_dim_);
  Tensor R = embedding(rel_value, pair_buckets(T, S, k));            // (T, S, D)
  Tensor at = reshape(permute(attn, {2, 0, 1, 3}), {Ti, B * H, Si}); // (T, B H, S)
  Tensor out = matmul(at, R);                                        // (T, B H, D)
  return permute(reshape(out, {Ti, B, H, D}), {1, 2, 0, 3});         // (B, H, T, D)
}

AttentionArgs MultiheadAttention::fused_args(const std::optional<Mask>& mask, bool causal) {
  const bool relative = options_.relative_k > 0;
  return {.scale = 1.0 / std::sqrt(static_cast<double>(head_dim_)),
          .mask = mask ? &*mask : nullptr,
          .causal = causal,
          .rel_key = relative ? rel_key : Tensor(),
          .rel_value = relative ? rel_value : Tensor(),
          .relative_k = options_.relative_k,
          .dropout = options_.dropout,
          .gen = gen_,
          .training = is_training()};
}

// ALiBi's or T5's bias for queries at positions S - T .. S - 1 and keys at 0 .. S - 1: (H, T, S).
Tensor MultiheadAttention::position_bias(std::size_t T, std::size_t S, bool causal, Dtype dtype) {
  const std::size_t H = options_.heads;
  const auto distance = [&](std::size_t i, std::size_t j) {  // p_j - p_i
    return static_cast<std::int64_t>(j) - static_cast<std::int64_t>(i + S - T);
  };
  if (options_.positions == AttentionPositions::alibi) {
    const std::vector<double> m = alibi_slopes(H);
    Array<double> bias = Array<double>::from_shape({H, T, S});
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < T; ++i)
        for (std::size_t j = 0; j < S; ++j) bias(h, i, j) = -m[h] * static_cast<double>(std::abs(distance(i, j)));
    return Tensor(bias).to(dtype);
  }
  if (options_.positions == AttentionPositions::t5) {
    Ids buckets = Ids::from_shape({T, S});
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < S; ++j)
        buckets(i, j) = t5_bucket(distance(i, j), !causal, options_.t5_buckets, options_.t5_max_distance);
    return permute(embedding(t5_bias, buckets), {2, 0, 1});  // (T, S, H) -> (H, T, S)
  }
  return Tensor();
}

Tensor MultiheadAttention::xl_logits(const Tensor& q, const Tensor& k, bool causal) {
  const std::size_t S = k.shape()[2], W = causal ? S : 2 * S - 1, C = options_.d_model;
  // R: the sinusoid of pos_i - j for every distance column c (d = j - pos_i = c - (S - 1)).
  Array<double> offsets = Array<double>::from_shape({W, 1});
  for (std::size_t c = 0; c < W; ++c) offsets(c, 0) = static_cast<double>(S - 1) - static_cast<double>(c);
  const Tensor R = SinusoidalPositions(C).encode(Tensor(offsets).to(q.dtype()));  // (W, C)
  const auto H = static_cast<std::int64_t>(options_.heads), D = static_cast<std::int64_t>(head_dim_);
  const Tensor P = permute(reshape((*xl_proj)(R), {static_cast<std::int64_t>(W), H, D}), {1, 2, 0});  // (H, D, W)
  const Tensor by_distance = matmul(q + reshape(xl_v, {H, 1, D}), P);                           // (B, H, T, W)
  const Tensor content = reshape(sum(k * reshape(xl_u, {H, 1, D}), {-1}),                      // u.k_j: (B, H, 1, S)
                                 {static_cast<std::int64_t>(k.shape()[0]), H, 1, static_cast<std::int64_t>(S)});
  return rel_skew(by_distance, causal) + content;
}

// q: (B, H, T, D), k, v: (B, H, S, D), bias (H, T, S) or none -> (B, H, T, D)
Tensor MultiheadAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const std::optional<Mask>& mask, bool causal, Tensor* weights,
                                  const Tensor& bias) {
  const std::size_t T = q.shape()[2], S = k.shape()[2];
  const Shape logits_shape{q.shape()[0], options_.heads, T, S};
  if (mask && !broadcasts_to(mask->shape(), logits_shape))
    fail("MultiheadAttention", "the mask " + shape_str(mask->shape()) +
                                   " does not broadcast to the logits (B, H, T, S) = " + shape_str(logits_shape));
  const bool xl = options_.positions == AttentionPositions::xl;
  if (options_.fused && !weights && !bias.defined() && !xl) return fused_attention(q, k, v, fused_args(mask, causal));
  // The composed reference, op by op.
  std::optional<Mask> m = mask;
  if (causal) m = m ? mask_and(*m, causal_mask(T, S)) : causal_mask(T, S);
  const bool relative = options_.relative_k > 0;
  Tensor logits = matmul(q, transpose(k));  // (B, H, T, S)
  if (relative) logits = logits + relative_logits(q, S, causal);
  if (xl) logits = logits + xl_logits(q, k, causal);
  logits = logits * (1.0 / std::sqrt(static_cast<double>(head_dim_)));
  if (bias.defined()) logits = logits + bias;  // (B, H, T, S) + (H, T, S)
  Tensor attn = m ? masked_softmax(logits, *m) : softmax(logits);
  if (weights) *weights = attn;
  attn = dropout(attn, options_.dropout, *gen_, is_training());
  Tensor out = matmul(attn, v);
  if (relative) out = out + relative_values(attn, causal);
  return out;
}

Tensor MultiheadAttention::forward(const Tensor& x, const AttendOptions& call) {
  check_input("x", x);
  const auto& [mask, causal, cache, weights] = call;
  const auto C = static_cast<std::int64_t>(options_.d_model);
  Tensor qkv = in_proj(x);  // (B, T, 3C)
  const AttentionPositions positions = options_.positions;
  const bool kernelized = options_.kind == AttentionKind::kernelized;
  if (options_.fused && !cache && !weights && positions == AttentionPositions::none && !kernelized) {  // heads read in place from qkv
    return out_proj(fused_self_attention(qkv, options_.heads, fused_args(mask, causal)));
  }
  Tensor q = split_heads(slice(qkv, -1, 0, C));
  Tensor k = split_heads(slice(qkv, -1, C, 2 * C));
  Tensor v = split_heads(slice(qkv, -1, 2 * C, 3 * C));
  const std::size_t offset = cache ? cache->length() : 0;  // the new positions follow the cached ones
  if (positions == AttentionPositions::rope) {  // keys are cached rotated, at their own positions
    q = rope_rotate(q, offset, options_.rope_base);
    k = rope_rotate(k, offset, options_.rope_base);
  }
  if (cache) {
    if (cache->k.defined()) {
      k = concat({cache->k, k}, 2);
      v = concat({cache->v, v}, 2);
    }
    cache->k = k;
    cache->v = v;
  }
  if (kernelized) {
    const Tensor z = kernelized_attention(favor_features(q, kernel_omega, true), favor_features(k, kernel_omega, false),
                                          v, kernel_coefficients(k.shape()[2]), mask, causal, false, weights);
    return out_proj(merge_heads(z));
  }
  const Tensor bias = position_bias(q.shape()[2], k.shape()[2], causal, q.dtype());
  return out_proj(merge_heads(attend(q, k, v, mask, causal, weights, bias)));
}

Tensor MultiheadAttention::forward_cross(const Tensor& x, const Tensor& memory, const AttendOptions& call) {
  check_input("x", x);
  check_input("memory", memory);
  if (call.causal) fail("MultiheadAttention", "cross-attention cannot be causal: x and memory share no positions");
  KvCache* memory_cache = call.cache;
  if (options_.relative_k > 0)
    fail("MultiheadAttention", "relative positions are for self-attention; cross-attention "
                               "has no shared positions between queries and keys");
  if (x.shape()[0] != memory.shape()[0])
    fail("MultiheadAttention", "x " + shape_str(x.shape()) + " and memory " + shape_str(memory.shape()) +
                                   " have different batch sizes");
  const auto C = static_cast<std::int64_t>(options_.d_model);
  // q from x, k and v from memory: the in-projection's three blocks of columns.
  const auto bias_part = [&](std::int64_t from, std::int64_t to) {
    return in_proj.bias.defined() ? slice(in_proj.bias, 0, from, to) : Tensor();
  };
  Tensor q = split_heads(linear(x, slice(in_proj.weight, 1, 0, C), bias_part(0, C)));  // (B, H, T, D)
  Tensor k, v;
  if (memory_cache && memory_cache->k.defined()) {
    k = memory_cache->k;
    v = memory_cache->v;
  } else {
    Tensor kv = linear(memory, slice(in_proj.weight, 1, C, 3 * C), bias_part(C, 3 * C));  // (B, S, 2C)
    k = split_heads(slice(kv, -1, 0, C));
    v = split_heads(slice(kv, -1, C, 2 * C));
    if (memory_cache) *memory_cache = {k, v};
  }
  return out_proj(merge_heads(attend(q, k, v, call.mask, false, call.weights)));
}

}  // namespace tg::nn

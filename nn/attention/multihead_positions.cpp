// MultiheadAttention's terms of positions (multihead.hpp): Shaw's relative logits and values,
// the ALiBi and T5 biases, Transformer-XL's terms, and kernelized attention's coefficients c_r.
// What they compute from positions alone is in ../positions/in_attention.hpp.
#include <cmath>
#include <cstdlib>

#include "../../autograd/ops.hpp"
#include "../positions/absolute.hpp"
#include "../positions/in_attention.hpp"
#include "multihead.hpp"

namespace tg::nn {
namespace {

// Shaw's direct path: the rows of x at query i times query i's table of pairs, as one batched
// product over the queries: x (B, H, T, N), table (T, N, M) -> (B, H, T, M) by way of
// (T, B H, N) (T, N, M) -> (T, B H, M).
Tensor per_query_product(const Tensor& x, const Tensor& table) {
  const auto B = static_cast<std::int64_t>(x.shape()[0]),
             H = static_cast<std::int64_t>(x.shape()[1]),
             T = static_cast<std::int64_t>(x.shape()[2]),
             N = static_cast<std::int64_t>(x.shape()[3]),
             M = static_cast<std::int64_t>(table.shape()[2]);
  Tensor xt = reshape(permute(x, {2, 0, 1, 3}), {T, B * H, N});            // (T, B H, N)
  return permute(reshape(matmul(xt, table), {T, B, H, M}), {1, 2, 0, 3});  // (B, H, T, M)
}

}  // namespace

Tensor MultiheadAttention::kernel_coefficients(std::size_t S) {
  const Tensor b = embedding(
      kernel_bias, relative_rows_by_distance(S, false, options_.relative_k));  // (2S - 1, H)
  return exp(transpose(b));
}

// rel[b, h, i, j] = q_i . a_K[clip(j - pos_i)]:  (B, H, T, D) -> (B, H, T, S)
Tensor MultiheadAttention::relative_logits(const Tensor& q, std::size_t S, bool causal) {
  const std::size_t T = q.shape()[2], k = options_.relative_k;
  if (options_.relative_skewed) {
    // One dot product per query and *distance* (W of them), then skew into (query, key) pairs.
    Tensor table = embedding(rel_key, relative_rows_by_distance(S, causal, k));  // (W, D)
    return rel_skew(matmul(q, transpose(table)), causal);  // (B, H, T, W) -> (.., S)
  }
  // Direct: an embedding per (query, key) pair, R (T, S, D); rel[.., i, j] = q_i . R[i, j].
  Tensor R = embedding(rel_key, relative_rows_by_pair(T, S, k));  // (T, S, D)
  return per_query_product(q, transpose(R));                      // (B, H, T, S)
}

// out[b, h, i] = sum_j attn[b, h, i, j] a_V[clip(j - pos_i)]:  (B, H, T, S) -> (B, H, T, D)
Tensor MultiheadAttention::relative_values(const Tensor& attn, bool causal) {
  const std::size_t T = attn.shape()[2], S = attn.shape()[3], k = options_.relative_k;
  if (options_.relative_skewed) {
    // Sum the weights per distance (unskew), then one product with the table.
    Tensor table = embedding(rel_value, relative_rows_by_distance(S, causal, k));  // (W, D)
    return matmul(rel_unskew(attn, causal), table);  // (B, H, T, W) (W, D)
  }
  // Direct: out[.., i] = sum_j attn[.., i, j] R[i, j] with R (T, S, D) as above.
  Tensor R = embedding(rel_value, relative_rows_by_pair(T, S, k));  // (T, S, D)
  return per_query_product(attn, R);                                // (B, H, T, D)
}

// ALiBi's or T5's bias for queries at positions S - T .. S - 1 and keys at 0 .. S - 1: (H, T, S).
Tensor MultiheadAttention::position_bias(std::size_t T, std::size_t S, bool causal, Dtype dtype) {
  const std::size_t H = options_.heads;
  const auto distance = [&](std::size_t i, std::size_t j) {  // p_j - p_i
    return static_cast<std::int64_t>(j) - static_cast<std::int64_t>(i + S - T);
  };
  if (options_.positions == PositionScheme::alibi) {
    const std::vector<double> m = alibi_slopes(H);
    Array<double> bias = Array<double>::from_shape({H, T, S});
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < T; ++i)
        for (std::size_t j = 0; j < S; ++j)
          bias(h, i, j) = -m[h] * static_cast<double>(std::abs(distance(i, j)));
    return Tensor(bias).to(dtype);
  }
  if (options_.positions == PositionScheme::t5) {
    Ids buckets = Ids::from_shape({T, S});
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < S; ++j)
        buckets(i, j) =
            t5_bucket(distance(i, j), !causal, options_.t5_buckets, options_.t5_max_distance);
    return permute(embedding(t5_bias, buckets), {2, 0, 1});  // (T, S, H) -> (H, T, S)
  }
  return Tensor();
}

Tensor MultiheadAttention::xl_logits(const Tensor& q, const Tensor& k, bool causal) {
  const std::size_t S = k.shape()[2], W = causal ? S : 2 * S - 1, C = options_.d_model;
  // R: the sinusoid of pos_i - j for every distance column c (d = j - pos_i = c - (S - 1)).
  Array<double> offsets = Array<double>::from_shape({W, 1});
  for (std::size_t c = 0; c < W; ++c)
    offsets(c, 0) = static_cast<double>(S - 1) - static_cast<double>(c);
  const Tensor R = SinusoidalPositions(C).encode(Tensor(offsets).to(q.dtype()));  // (W, C)
  const auto H = static_cast<std::int64_t>(options_.heads),
             D = static_cast<std::int64_t>(head_dim_);
  const Tensor P = permute(reshape((*xl_proj)(R), {static_cast<std::int64_t>(W), H, D}),
                           {1, 2, 0});                                 // (H, D, W)
  const Tensor by_distance = matmul(q + reshape(xl_v, {H, 1, D}), P);  // (B, H, T, W)
  const Tensor content =
      reshape(sum(k * reshape(xl_u, {H, 1, D}), {-1}),  // u.k_j: (B, H, 1, S)
              {static_cast<std::int64_t>(k.shape()[0]), H, 1, static_cast<std::int64_t>(S)});
  return rel_skew(by_distance, causal) + content;
}

}  // namespace tg::nn

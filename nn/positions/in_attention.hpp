// The schemes that live inside self-attention and add nothing to the input (scheme.hpp says
// which): what each computes from positions alone.  MultiheadAttention (../attention/
// multihead.hpp) applies them to its queries, keys and logits.  Query i and key j sit at
// positions p_i and p_j (with a cache, the new queries come after the cached keys):
//   relative (Shaw et al. 2018): learned embeddings of clip(p_j - p_i, -k, k) added to keys and
//                              values, one (2k + 1, D) table each: a row per clipped offset;
//   rope  (Su et al. 2021):    queries and keys rotated pair by pair by the angle p theta_i,
//                              theta_i = base^(-2i/D), so q.k depends on p_i - p_j only;
//   alibi (Press et al. 2022): logits + -m_h |p_i - p_j|, slopes m_h = 2^(-8 (h + 1) / H) for H
//                              a power of two (alibi_slopes for the others);
//   t5    (Raffel et al. 2020): logits + a learned scalar per (bucket of p_j - p_i, head);
//   xl    (Dai et al. 2019):   logits q_i.k_j + q_i.W_R R_(i-j) + u.k_j + v.W_R R_(i-j), R the
//                              sinusoid of the offset, W_R (C, C) and u, v (H, D) learned.
// Kernelized attention's bias b_r (../attention/kernelized.hpp) reads its rows of offsets as
// Shaw's tables do.
#pragma once

#include <cstdint>
#include <vector>

#include "../../autograd/tensor.hpp"

namespace tg::nn {

// The slopes of ALiBi for H heads.  H a power of two: 2^(-8/H), 2^(-16/H), ..., 2^(-8) (H = 8:
// 1/2 ... 1/256).  Otherwise, as Press et al. do: the slopes of the power of two n below H, then
// the 1st, 3rd, 5th ... slopes of 2n until there are H (H = 6: 1/4, 1/16, 1/64, 1/256, 1/2, 1/8).
std::vector<double> alibi_slopes(std::size_t heads);
// T5's bucket of a relative position r = p_j - p_i.  Bidirectional: half the buckets for each
// sign (r > 0 in the upper half); causal: all for the past (r <= 0; the future gets 0).  Within
// a half, distances below half of it are exact, larger ones logarithmic up to max_distance,
// which must exceed the exact ones (else throws: the formula would take log(0)).
std::int64_t t5_bucket(std::int64_t r, bool bidirectional, std::size_t buckets,
                       std::size_t max_distance);
// RoPE: x (B, H, T, D), D even, the T positions offset .. offset + T - 1 -> x rotated.
Tensor rope_rotate(const Tensor& x, std::size_t offset, double base = 10000);

// The rows of a table of clipped offsets (row clip(d, -k, k) + k for offset d) ...
// ... for every offset a query can have to S keys, in order: W = S rows for d = -(S-1) .. 0
// (causal) or 2S - 1 for d = -(S-1) .. S-1.  -> (W)
Ids relative_rows_by_distance(std::size_t S, bool causal, std::size_t k);
// ... for every (query i, key j) pair, query i at position i + S - T.  -> (T, S)
Ids relative_rows_by_pair(std::size_t T, std::size_t S, std::size_t k);

}  // namespace tg::nn

// Attention written with tapegrad's ops: what the fused kernels of ops_fused_attention.cpp
// compute, as a composition of ops, and the derivatives of that composition, which are the
// fused ops' higher-order rules.  (Internal to autograd: users call attention_composed, ops.hpp.)
//
// All of attention is one trilinear form.  For one (batch, head) block, with weights P (T, S),
// rows X (T, D), and keys with their relative table V = (v (S, D), a (R, D)):
//   <P, X v^T + G(X a^T)>        G: (T, R) -> (T, S) takes column clip(j - pos_i, -k, k) + k
// Its three partial derivatives are the three products attention is made of:
//   pairs(X, V) = X v^T + G(X a^T)                 (T, S)           the logits
//   mix(P, V)   = P v + G^T(P) a                   (T, D)           the output
//   keys(P, X)  = (P^T X, sum over blocks G^T(P)^T X)   (S, D), (R, D)
// With K = (k, a_K), V = (v, a_V), the scale s and dropout's factors M (0 or 1 / (1 - p)):
//   forward:   L = s pairs(q, K)     W = masked softmax(L)     W' = W M     o = mix(W', V)
//   backward:  g_V = keys(W', g)     g_W = pairs(g, V) M       g_L = s W (g_W - rowsum(g_W W))
//              g_q = mix(g_L, K)     g_K = keys(g_L, q)
// Each product is linear in each argument, so a tangent is one product per argument (the
// product rule), and the softmax's tangent is dW = W (dL - rowsum(W dL)).
//
// Shapes: q (B, H, T, D), k and v (B, H, S, D), tables (R, D) with R = 2k + 1; heads are split.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

#include "tensor.hpp"

namespace tg::attention {

// The table row of query i and key j among T queries and S keys: clip(j - pos_i, -k, k) + k,
// query i at position pos_i = i + S - T.
inline std::size_t table_row(std::size_t T, std::size_t S, std::size_t k, std::size_t i,
                             std::size_t j) {
  const auto offset = static_cast<std::int64_t>(j) - static_cast<std::int64_t>(i + S - T);
  const auto K = static_cast<std::int64_t>(k);
  return static_cast<std::size_t>(std::clamp(offset, -K, K) + K);
}

// Dropout on the weights: one generator draw (`seed`) decides the whole mask, element by
// element, as dropout() does (runtime/kernels.hpp).
struct Dropout {
  std::uint64_t seed = 0, threshold = 0;  // threshold 0: nothing is dropped
  double keep = 1.0;                      // 1 / (1 - p)
  bool active() const { return threshold > 0; }
};

// An attention call but its tensors.
struct Setting {
  double scale = 1.0;
  std::shared_ptr<const Mask> mask;  // broadcasts to (B, H, T, S); null: every key
  bool causal = false;
  std::size_t relative_k = 0;  // with tables
  Dropout drop;
};

// The differentiable inputs (and, laid out the same way, their gradients or tangents).  The
// tables are undefined without relative positions.
struct Operands {
  Tensor q, k, v, a_K, a_V;
};

// One call's forward values, recomputed with ops when constructed (so that they carry
// gradients and tangents to x), and the derivatives taken from them.
class Composed {
 public:
  Composed(const Operands& x, const Setting& s);

  Tensor output() const;  // o (B, H, T, D)
  // do: the tangent of o along dx (every member of dx defined where x's is).
  Tensor tangent(const Operands& dx) const;
  // The tangent along dx of the gradients (g_q, g_k, g_v, g_a_K, g_a_V) of <g, o>, g fixed:
  // the Hessian of <g, o> times dx, so also the vjp of the gradients with cotangent dx.
  Operands gradients_tangent(const Tensor& g, const Operands& dx) const;

 private:
  struct KeySide {
    Tensor keys, table;  // (B, H, S, D) and (R, D); table undefined without relative positions
  };
  Tensor pairs(const Tensor& X, const Tensor& v, const Tensor& a) const;
  Tensor mix(const Tensor& P, const Tensor& v, const Tensor& a) const;
  KeySide keys(const Tensor& P, const Tensor& X) const;
  Tensor gather(const Tensor& Y) const;   // G
  Tensor scatter(const Tensor& P) const;  // G^T
  Tensor dropped(const Tensor& P) const;  // P M
  Tensor weights_tangent(const Operands& dx) const;

  Operands x_;
  Setting s_;
  Mask allowed_;     // (..., T, S): the mask and the causal rule together
  Tensor keep_;      // M (B, H, T, S); undefined without dropout
  Tensor one_hot_;   // E (T, S, R), E[i, j, r] = 1 where r is the table row of (i, j)
  Tensor w_, kept_;  // W and W'
};

}  // namespace tg::attention

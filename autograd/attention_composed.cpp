// Attention as a composition of ops, and its derivatives (the formulas: attention_composed.hpp).
#include "attention_composed.hpp"

#include "ops.hpp"
#include "runtime/kernels.hpp"

namespace tg::attention {
namespace {

std::int64_t i64(std::size_t n) { return static_cast<std::int64_t>(n); }

// Which keys each query may see, (..., T, S): the mask and the causal rule together.
Mask allowed_keys(std::size_t T, std::size_t S, const Setting& s) {
  Mask allowed = xt::ones<bool>({T, S});
  if (s.causal)
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = i + S - T + 1; j < S; ++j) allowed(i, j) = false;
  return s.mask ? Mask(*s.mask && allowed) : allowed;
}

// M: dropout's factors, 0 or 1 / (1 - p), for weights of `shape`, numbered as dropout()
// numbers them: the very mask the fused kernel applies.
Tensor dropout_factors(const Shape& shape, Dtype dtype, const Dropout& drop) {
  return dispatch(dtype, [&]<class T>() {
    const Array<T> ones = xt::ones<T>(shape);
    Array<T> factors = Array<T>::from_shape(shape);
    apply_dropout_mask(ones.data(), factors.data(), ones.size(), 0, drop.seed, drop.threshold,
                       static_cast<T>(drop.keep));
    return Tensor(std::move(factors));
  });
}

// E (T, S, 2k + 1): E[i, j, r] = 1 where r is the table row of query i and key j, else 0.
Tensor table_one_hot(std::size_t T, std::size_t S, std::size_t k, Dtype dtype) {
  return dispatch(dtype, [&]<class U>() {
    Array<U> e = xt::zeros<U>({T, S, 2 * k + 1});
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < S; ++j) e(i, j, table_row(T, S, k, i, j)) = U(1);
    return Tensor(std::move(e));
  });
}

Tensor rowsum(const Tensor& x) { return sum(x, {-1}, true); }

}  // namespace

Composed::Composed(const Operands& x, const Setting& s) : x_(x), s_(s) {
  const std::size_t T = x.q.shape()[2], S = x.k.shape()[2];
  allowed_ = allowed_keys(T, S, s);
  if (s.drop.active())
    keep_ = dropout_factors({x.q.shape()[0], x.q.shape()[1], T, S}, x.q.dtype(), s.drop);
  if (x.a_K.defined()) one_hot_ = table_one_hot(T, S, s.relative_k, x.q.dtype());
  w_ = masked_softmax(pairs(x.q, x.k, x.a_K) * s.scale, allowed_);
  kept_ = dropped(w_);
}

// G(Y), Y (B, H, T, R) -> (B, H, T, S): row i of Y times E[i]^T (R, S), each row by itself.
Tensor Composed::gather(const Tensor& Y) const {
  const Shape& y = Y.shape();
  const std::int64_t B = i64(y[0]), H = i64(y[1]), T = i64(y[2]), R = i64(y[3]);
  return reshape(matmul(reshape(Y, {B, H, T, 1, R}), transpose(one_hot_)), {B, H, T, -1});
}

// G^T(P), P (B, H, T, S) -> (B, H, T, R): row i of P times E[i] (S, R), that is P summed per
// table row.
Tensor Composed::scatter(const Tensor& P) const {
  const Shape& p = P.shape();
  const std::int64_t B = i64(p[0]), H = i64(p[1]), T = i64(p[2]), S = i64(p[3]);
  return reshape(matmul(reshape(P, {B, H, T, 1, S}), one_hot_), {B, H, T, -1});
}

Tensor Composed::dropped(const Tensor& P) const { return keep_.defined() ? P * keep_ : P; }

// X (B, H, T, D), v (B, H, S, D), a (R, D) -> (B, H, T, S)
Tensor Composed::pairs(const Tensor& X, const Tensor& v, const Tensor& a) const {
  const Tensor p = matmul(X, transpose(v));
  return a.defined() ? p + gather(matmul(X, transpose(a))) : p;
}

// P (B, H, T, S), v (B, H, S, D), a (R, D) -> (B, H, T, D)
Tensor Composed::mix(const Tensor& P, const Tensor& v, const Tensor& a) const {
  const Tensor m = matmul(P, v);
  return a.defined() ? m + matmul(scatter(P), a) : m;
}

// P (B, H, T, S), X (B, H, T, D) -> (B, H, S, D) and (R, D), the table's summed over blocks
Composed::KeySide Composed::keys(const Tensor& P, const Tensor& X) const {
  KeySide out{matmul(transpose(P), X), Tensor()};
  if (one_hot_.defined()) {
    const std::int64_t R = i64(one_hot_.shape()[2]), D = i64(X.shape()[3]);
    out.table = matmul(transpose(reshape(scatter(P), {-1, R})), reshape(X, {-1, D}));
  }
  return out;
}

Tensor Composed::output() const { return mix(kept_, x_.v, x_.a_V); }

// dL = s (pairs(dq, K) + pairs(q, dK));  dW = W (dL - rowsum(W dL)), zero wherever W is
Tensor Composed::weights_tangent(const Operands& dx) const {
  const Tensor dL = (pairs(dx.q, x_.k, x_.a_K) + pairs(x_.q, dx.k, dx.a_K)) * s_.scale;
  return w_ * (dL - rowsum(w_ * dL));
}

// do = mix(dW M, V) + mix(W', dV)
Tensor Composed::tangent(const Operands& dx) const {
  return mix(dropped(weights_tangent(dx)), x_.v, x_.a_V) + mix(kept_, dx.v, dx.a_V);
}

// The backward's formulas again (g_W, u, g_L), then each one's tangent by the product rule:
//   d g_V = keys(dW M, g)                d g_W = pairs(g, dV) M
//   d g_L = s (dW u + W (d g_W - rowsum(d g_W W + g_W dW))),  u = g_W - rowsum(g_W W)
//   d g_q = mix(d g_L, K) + mix(g_L, dK)      d g_K = keys(d g_L, q) + keys(g_L, dq)
Operands Composed::gradients_tangent(const Tensor& g, const Operands& dx) const {
  const Tensor g_W = dropped(pairs(g, x_.v, x_.a_V));
  const Tensor u = g_W - rowsum(g_W * w_);
  const Tensor g_L = w_ * u * s_.scale;
  const Tensor dW = weights_tangent(dx);
  const Tensor dg_W = dropped(pairs(g, dx.v, dx.a_V));
  const Tensor dg_L = (dW * u + w_ * (dg_W - rowsum(dg_W * w_ + g_W * dW))) * s_.scale;
  const KeySide dg_V = keys(dropped(dW), g);
  const KeySide from_dg_L = keys(dg_L, x_.q), from_dq = keys(g_L, dx.q);
  Operands d;
  d.q = mix(dg_L, x_.k, x_.a_K) + mix(g_L, dx.k, dx.a_K);
  d.k = from_dg_L.keys + from_dq.keys;
  d.v = dg_V.keys;
  if (one_hot_.defined()) {
    d.a_K = from_dg_L.table + from_dq.table;
    d.a_V = dg_V.table;
  }
  return d;
}

}  // namespace tg::attention

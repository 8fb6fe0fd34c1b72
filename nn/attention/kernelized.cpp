#include "kernelized.hpp"

#include <algorithm>
#include <cmath>

#include <xtensor/xbroadcast.hpp>
#include <xtensor/xoperation.hpp>

#include "../../autograd/broadcast.hpp"
#include "../../autograd/ops.hpp"
#include "masks.hpp"

namespace tg::nn {

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
  if (!x.defined() || !omega.defined() || x.dim() != 4 || omega.dim() != 2 ||
      omega.shape()[1] != x.shape()[3])
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
  return mask.dimension() == 4 && mask.shape()[1] == 1 && mask.shape()[2] == 1 &&
         mask.shape()[3] == S;
}

// num / den, and zeros where den is 0 (a query with no key).  den: (..., 1)
Tensor divide_or_zero(const Tensor& num, const Tensor& den) {
  const Mask empty =
      dispatch(den.dtype(), [&]<class T>() { return Mask(xt::equal(den.data<T>(), T(0))); });
  return num / tg::where(empty, den + 1.0, den);
}

}  // namespace

Tensor kernelized_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                            const Tensor& c, const std::optional<Mask>& mask, bool causal,
                            bool direct, Tensor* weights) {
  const char* op = "kernelized_attention";
  if (!phi_q.defined() || !phi_k.defined() || !v.defined() || !c.defined() || phi_q.dim() != 4 ||
      phi_k.dim() != 4 || v.dim() != 4 || c.dim() != 2)
    fail(op, "needs phi_q (B, H, T, m), phi_k (B, H, S, m), v (B, H, S, D) and c (H, 2S - 1)");
  const std::size_t B = phi_q.shape()[0], H = phi_q.shape()[1], T = phi_q.shape()[2],
                    m = phi_q.shape()[3];
  const std::size_t S = phi_k.shape()[2], D = v.shape()[3];
  if (phi_k.shape() != Shape{B, H, S, m} || v.shape() != Shape{B, H, S, D} ||
      c.shape() != Shape{H, 2 * S - 1} || T > S || S == 0)
    fail(op, "shapes do not fit: phi_q " + shape_str(phi_q.shape()) + " (B, H, T, m), phi_k " +
                 shape_str(phi_k.shape()) + " (B, H, S, m), v " + shape_str(v.shape()) +
                 " (B, H, S, D), c " + shape_str(c.shape()) + " (H, 2S - 1), with 0 < T <= S");
  if (mask && !broadcasts_to(mask->shape(), Shape{B, H, T, S}))
    fail(op, "the mask " + shape_str(mask->shape()) +
                 " does not broadcast to (B, H, T, S) = " + shape_str(Shape{B, H, T, S}));
  const auto Si = static_cast<std::int64_t>(S), Di = static_cast<std::int64_t>(D);

  if (direct || weights || T != S || (mask && !masks_keys_only(*mask, S))) {
    // The formula as written: weights A_ij = c_(j - p_i) phi(q_i) . phi(k_j), masked, then
    // z_i = sum_j A_ij v_j / sum_j A_ij.  O(T S) time and memory.
    Ids offset = Ids::from_shape({T, S});  // column of c: j - p_i + S - 1
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < S; ++j)
        offset(i, j) = static_cast<std::int64_t>(j + T) - static_cast<std::int64_t>(i + 1);
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
  const Tensor u =
      kernel_toeplitz(phi_q, pk, v, causal ? slice(c, 1, 0, Si) : c, causal);  // (B, H, S, D + 1)
  return divide_or_zero(slice(u, -1, 0, Di), slice(u, -1, Di, Di + 1));
}
}  // namespace tg::nn

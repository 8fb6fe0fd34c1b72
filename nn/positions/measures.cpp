#include "measures.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xtensor.hpp>

#include "../../autograd/shape.hpp"

namespace tg::nn {

double stable_rank(const Array<double>& a) {
  if (a.dimension() != 2 || a.size() == 0)
    fail("stable_rank", "needs a non-empty (N, K) matrix, got " + shape_str(a.shape()));
  const std::size_t N = a.shape()[0], K = a.shape()[1];
  double peak = 0;  // max |A(i, k)|
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t k = 0; k < K; ++k) {
      if (!std::isfinite(a(i, k)))
        fail("stable_rank", "A(" + std::to_string(i) + ", " + std::to_string(k) + ") is " +
                                std::to_string(a(i, k)));
      peak = std::max(peak, std::abs(a(i, k)));
    }
  if (peak == 0) return 0;  // A = 0 uses no direction (and 0 / 0 is no answer)
  // The ratio does not change with the scale of A; divided by its largest entry, no square
  // overflows or vanishes, however large or small the entries.  LAPACK wants columns.
  const xt::xtensor<double, 2, xt::layout_type::column_major> scaled = a / peak;
  const double frobenius =
      xt::sum(xt::square(scaled))();  // ||A||_F^2, from the entries: exact to rounding
  // ||A||_2 is the largest singular value: LAPACK's divide-and-conquer SVD (dgesdd), values
  // only, in descending order.  Iterating A^T A v towards it converges as (s_2 / s_1)^2 per
  // step, too slowly when the top two are close (1 and 0.999 left 2.4e-4 after 500 steps).
  const auto [u, s, vt] = xt::linalg::svd(scaled, /*full_matrices=*/false, /*compute_uv=*/false);
  return frobenius / (s(0) * s(0));
}

double distance_preservation(const Array<double>& points, const Array<double>& embeddings,
                             double window) {
  if (points.dimension() != 2 || embeddings.dimension() != 2 ||
      points.shape()[0] != embeddings.shape()[0])
    fail("distance_preservation", "needs points (N, M) and embeddings (N, K) with the same N");
  const std::size_t N = points.shape()[0];
  const auto distance = [](const Array<double>& a, std::size_t i, std::size_t j) {
    double s = 0;
    for (std::size_t k = 0; k < a.shape()[1]; ++k) s += (a(i, k) - a(j, k)) * (a(i, k) - a(j, k));
    return std::sqrt(s);
  };
  double n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = i + 1; j < N; ++j) {
      const double x = distance(points, i, j);
      if (x > window) continue;
      const double y = distance(embeddings, i, j);
      n += 1, sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
    }
  const double cov = sxy - sx * sy / n, vx = sxx - sx * sx / n, vy = syy - sy * sy / n;
  if (n < 2 || vx <= 0 || vy <= 0) return 0;
  return cov / std::sqrt(vx * vy);
}

}  // namespace tg::nn

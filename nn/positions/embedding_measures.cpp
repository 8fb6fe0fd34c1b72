#include "embedding_measures.hpp"

#include <cmath>
#include <vector>

namespace tg::nn {

double stable_rank(const Array<double>& a) {
  if (a.dimension() != 2 || a.size() == 0) fail("stable_rank", "needs a non-empty (N, K) matrix");
  const std::size_t N = a.shape()[0], K = a.shape()[1];
  double frobenius = 0;
  for (double v : a) frobenius += v * v;
  if (frobenius == 0) return 0;
  // ||A||_2^2 is the largest eigenvalue of A^T A: power iteration from a fixed start.
  std::vector<double> v(K, 1.0 / std::sqrt(static_cast<double>(K))), av(N), w(K);
  double lambda = 0;
  for (int it = 0; it < 500; ++it) {
    for (std::size_t i = 0; i < N; ++i) {
      av[i] = 0;
      for (std::size_t k = 0; k < K; ++k) av[i] += a(i, k) * v[k];
    }
    double norm = 0;
    for (std::size_t k = 0; k < K; ++k) {
      w[k] = 0;
      for (std::size_t i = 0; i < N; ++i) w[k] += a(i, k) * av[i];
      norm += w[k] * w[k];
    }
    norm = std::sqrt(norm);
    if (norm == 0) break;
    const double next = norm;  // ||A^T A v|| with ||v|| = 1 tends to the largest eigenvalue
    for (std::size_t k = 0; k < K; ++k) v[k] = w[k] / norm;
    if (std::abs(next - lambda) <= 1e-13 * next) {
      lambda = next;
      break;
    }
    lambda = next;
  }
  return frobenius / lambda;
}

double distance_preservation(const Array<double>& points, const Array<double>& embeddings, double window) {
  if (points.dimension() != 2 || embeddings.dimension() != 2 || points.shape()[0] != embeddings.shape()[0])
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

#include "in_attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "../../autograd/ops.hpp"

namespace tg::nn {

namespace {

// The geometric sequence of a power of two n: 2^(-8/n), 2^(-16/n), ..., 2^(-8).
std::vector<double> geometric_slopes(std::size_t n) {
  std::vector<double> m(n);
  for (std::size_t h = 0; h < n; ++h)
    m[h] = std::exp2(-8.0 * static_cast<double>(h + 1) / static_cast<double>(n));
  return m;
}

}  // namespace

// Press et al.'s rule: H a power of two takes its own sequence; otherwise the sequence of the
// power of two n just below H, then every other slope of 2n (the first, third, ...) until there
// are H.  H = 6: 1/4, 1/16, 1/64, 1/256, then 1/2, 1/8.
std::vector<double> alibi_slopes(std::size_t heads) {
  if (heads == 0) fail("alibi_slopes", "needs at least one head, got 0");
  std::size_t n = 1;
  while (2 * n <= heads) n *= 2;
  std::vector<double> m = geometric_slopes(n);
  const std::vector<double> between = geometric_slopes(2 * n);
  for (std::size_t i = 0; m.size() < heads; i += 2) m.push_back(between[i]);
  return m;
}

std::int64_t t5_bucket(std::int64_t r, bool bidirectional, std::size_t buckets,
                       std::size_t max_distance) {
  std::int64_t n = static_cast<std::int64_t>(buckets), bucket = 0, distance;
  if (bidirectional) {
    n /= 2;
    if (r > 0) bucket = n;  // the future in the upper half
    distance = std::abs(r);
  } else {
    distance = std::max<std::int64_t>(-r, 0);  // the past; the future shares bucket 0
  }
  const std::int64_t exact = n / 2;
  // The logarithmic buckets spread exact .. max_distance: a max distance at or below `exact`
  // leaves them no room (log(max_distance / exact) <= 0).
  if (exact < 1 || static_cast<std::int64_t>(max_distance) <= exact)
    fail("t5_bucket", std::string(bidirectional ? "bidirectional" : "causal") + " attention with " +
                          std::to_string(buckets) + " buckets keeps offsets below " +
                          std::to_string(exact) + " exact, so the max distance must exceed " +
                          std::to_string(exact) + ", got " + std::to_string(max_distance));
  if (distance < exact) return bucket + distance;
  const double log_ratio = std::log(static_cast<double>(distance) / exact) /
                           std::log(static_cast<double>(max_distance) / exact);
  return bucket +
         std::min<std::int64_t>(exact + static_cast<std::int64_t>(log_ratio * (n - exact)), n - 1);
}

// Each pair (x_2i, x_2i+1) at position p turns by the angle p theta_i:
//   (x_2i cos - x_2i+1 sin,  x_2i sin + x_2i+1 cos),  theta_i = base^(-2i/D).
// Built from ops (reshape, slice, mul, concat), so its backward is theirs: the rotation by -p.
Tensor rope_rotate(const Tensor& x, std::size_t offset, double base) {
  if (!x.defined() || x.dim() != 4 || x.shape()[3] % 2 != 0)
    fail("rope_rotate", "x must be (B, H, T, D) with D even, got " +
                            (x.defined() ? shape_str(x.shape()) : "undefined"));
  const std::size_t T = x.shape()[2], D = x.shape()[3], half = D / 2;
  Array<double> cos = Array<double>::from_shape({T, half, 1}),
                sin = Array<double>::from_shape({T, half, 1});
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t i = 0; i < half; ++i) {
      const double angle =
          static_cast<double>(offset + t) * std::pow(base, -2.0 * static_cast<double>(i) / D);
      cos(t, i, 0) = std::cos(angle);
      sin(t, i, 0) = std::sin(angle);
    }
  const auto B = static_cast<std::int64_t>(x.shape()[0]),
             H = static_cast<std::int64_t>(x.shape()[1]);
  const auto Ti = static_cast<std::int64_t>(T), Di = static_cast<std::int64_t>(D);
  const Tensor pairs = reshape(x, {B, H, Ti, Di / 2, 2});
  const Tensor a = slice(pairs, -1, 0, 1), b = slice(pairs, -1, 1, 2);  // (B, H, T, D/2, 1)
  const Tensor c = Tensor(cos).to(x.dtype()), s = Tensor(sin).to(x.dtype());
  return reshape(concat({a * c - b * s, a * s + b * c}, -1), {B, H, Ti, Di});
}

// ---- rows of a table of clipped offsets ----------------------------------------------------

namespace {

// The row for offset d: clip(d, -k, k) + k.
std::int64_t row(std::int64_t d, std::int64_t k) { return std::clamp(d, -k, k) + k; }

}  // namespace

Ids relative_rows_by_distance(std::size_t S, bool causal, std::size_t k) {
  const std::size_t W = causal ? S : 2 * S - 1;
  Ids ids = Ids::from_shape({W});
  for (std::size_t c = 0; c < W; ++c)
    ids(c) = row(static_cast<std::int64_t>(c) - static_cast<std::int64_t>(S - 1),
                 static_cast<std::int64_t>(k));
  return ids;
}

Ids relative_rows_by_pair(std::size_t T, std::size_t S, std::size_t k) {
  Ids ids = Ids::from_shape({T, S});
  for (std::size_t i = 0; i < T; ++i)
    for (std::size_t j = 0; j < S; ++j)
      ids(i, j) = row(static_cast<std::int64_t>(j) - static_cast<std::int64_t>(i + S - T),
                      static_cast<std::int64_t>(k));
  return ids;
}

}  // namespace tg::nn

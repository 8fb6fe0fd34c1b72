#define BOOST_TEST_MODULE measures
#include <cmath>
#include <limits>
#include <vector>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
namespace tt = boost::test_tools;

namespace {

// A random orthogonal (n, n) matrix: Q = H_1 H_2 ... H_n, with H_j = I - 2 v v^T / (v . v) the
// Householder reflection along column j of a seeded random (n, n) matrix.  Each H_j is
// orthogonal, so Q is, whatever the columns.
Array<double> random_orthogonal(std::size_t n, Generator& gen) {
  Array<double> q = xt::eye<double>(n);
  for (std::size_t j = 0; j < n; ++j) {
    std::vector<double> v(n);
    double vv = 0;
    for (double& x : v) x = gen.normal(), vv += x * x;
    for (std::size_t i = 0; i < n;
         ++i) {  // row i of Q <- row i of Q H_j = q_i - 2 (q_i . v) v / vv
      double qv = 0;
      for (std::size_t k = 0; k < n; ++k) qv += q(i, k) * v[k];
      for (std::size_t k = 0; k < n; ++k) q(i, k) -= 2 * qv * v[k] / vv;
    }
  }
  return q;
}

// A (N, K) = U diag(s) V^T with random orthogonal U (N, N) and V (K, K), s of min(N, K)
// singular values: a matrix whose spectrum is known, and whose rows and columns all mix.
Array<double> with_spectrum(std::size_t N, std::size_t K, const std::vector<double>& s,
                            Generator& gen) {
  BOOST_REQUIRE(s.size() == std::min(N, K));
  const Array<double> U = random_orthogonal(N, gen), V = random_orthogonal(K, gen);
  Array<double> a = xt::zeros<double>({N, K});
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t r = 0; r < s.size(); ++r) a(i, k) += U(i, r) * s[r] * V(k, r);
  return a;
}

// The stable rank a spectrum gives: sum s_r^2 / max s_r^2.
double expected(const std::vector<double>& s) {
  double sum = 0, top = 0;
  for (double x : s) sum += x * x, top = std::max(top, x * x);
  return sum / top;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_helper_makes_orthogonal_matrices) {
  Generator gen(3);
  const Array<double> q = random_orthogonal(6, gen);
  for (std::size_t i = 0; i < 6; ++i)
    for (std::size_t j = 0; j < 6; ++j) {
      double dot = 0;
      for (std::size_t k = 0; k < 6; ++k) dot += q(k, i) * q(k, j);
      BOOST_TEST(std::abs(dot - (i == j ? 1.0 : 0.0)) < 1e-14);
    }
}

// The case that power iteration missed by 2.4e-4 (500 steps, 0.999^2 per step): the top two
// singular values 1 and 0.999.
BOOST_AUTO_TEST_CASE(close_top_singular_values) {
  Array<double> a = xt::zeros<double>({5, 5});
  const std::vector<double> s = {1, 0.999, 0.5, 0.3, 0.1};
  for (std::size_t i = 0; i < 5; ++i) a(i, i) = s[i];
  BOOST_TEST(stable_rank(a) == 2.348001, tt::tolerance(1e-12));
  Generator gen(7);
  BOOST_TEST(stable_rank(with_spectrum(5, 5, s, gen)) == 2.348001, tt::tolerance(1e-12));
  BOOST_TEST(stable_rank(with_spectrum(5, 5, {3, 3 - 1e-9, 1, 0.5, 0}, gen)) ==
                 expected({3, 3 - 1e-9, 1, 0.5}),
             tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(known_spectra_of_every_shape) {
  Generator gen(11);
  struct Case {
    std::size_t N, K;
    std::vector<double> s;
  };
  for (const Case& c : std::vector<Case>{
           {7, 4, {2, 1.5, 1, 0.25}},               // N > K
           {3, 8, {1, 0.9, 0.2}},                   // N < K
           {6, 5, {1, 0.7, 0.7, 0, 0}},             // rank 3
           {4, 4, {5, 5, 5, 5}},                    // all equal: the rank
           {9, 3, {4, 0, 0}},                       // rank 1
           {64, 20, std::vector<double>(20, 0.5)},  // larger, all equal
       }) {
    BOOST_TEST_CONTEXT(c.N << " x " << c.K) {
      BOOST_TEST(stable_rank(with_spectrum(c.N, c.K, c.s, gen)) == expected(c.s),
                 tt::tolerance(1e-12));
    }
  }
  BOOST_TEST(stable_rank(xt::eye<double>(5)) == 5.0, tt::tolerance(1e-12));
  BOOST_TEST(stable_rank(Array<double>{{1.0, 2.0}, {2.0, 4.0}, {3.0, 6.0}}) == 1.0,
             tt::tolerance(1e-12));  // rank 1
  BOOST_TEST(stable_rank(Array<double>{{3.0, 0.0}, {0.0, 1.0}}) == 10.0 / 9, tt::tolerance(1e-12));
}

// One row (or one column) is one direction, whatever its entries.
BOOST_AUTO_TEST_CASE(a_single_row_or_column_has_stable_rank_1) {
  const Array<double> row = {{0.3, -1.7, 2.2, 0.01, -5.0}};
  BOOST_TEST(stable_rank(row) == 1.0, tt::tolerance(1e-12));
  BOOST_TEST(stable_rank(Array<double>(xt::transpose(row))) == 1.0, tt::tolerance(1e-12));
  BOOST_TEST(stable_rank(Array<double>(xt::xtensor<double, 2>{{-2.5}})) == 1.0,
             tt::tolerance(1e-12));
}

// A = 0 uses no direction: 0, as documented (not 0 / 0).
BOOST_AUTO_TEST_CASE(all_zeros_has_stable_rank_0) {
  BOOST_TEST(stable_rank(xt::zeros<double>({4, 3})) == 0.0);
  BOOST_TEST(stable_rank(xt::zeros<double>({1, 1})) == 0.0);
}

// The ratio does not change with scale, even where the squares of the entries would overflow
// (1e170^2) or vanish (1e-170^2).
BOOST_AUTO_TEST_CASE(any_scale) {
  Generator gen(5);
  const std::vector<double> s = {1, 0.8, 0.1};
  const Array<double> a = with_spectrum(4, 3, s, gen);
  for (double scale : {1e170, 1e-170}) BOOST_TEST_CONTEXT("scale " << scale) {
      BOOST_TEST(stable_rank(Array<double>(scale * a)) == expected(s), tt::tolerance(1e-12));
    }
}

BOOST_AUTO_TEST_CASE(bad_matrices_throw) {
  CHECK_THROWS_WITH(stable_rank(Array<double>{1.0, 2.0}),
                    "stable_rank: needs a non-empty (N, K) matrix, got (2)");
  CHECK_THROWS_WITH(stable_rank(xt::zeros<double>({0, 3})), "got (0, 3)");
  Array<double> a = xt::eye<double>(3);
  a(2, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(stable_rank(a), "stable_rank: A(2, 1) is nan");
  a(2, 1) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(stable_rank(a), "stable_rank: A(2, 1) is inf");
}

BOOST_AUTO_TEST_CASE(distance_preservation_and_the_gaussian_basis) {
  Array<double> points = Array<double>::from_shape({20, 1});
  for (std::size_t i = 0; i < 20; ++i) points(i, 0) = 0.37 * i;
  BOOST_TEST(distance_preservation(points, Array<double>(3.0 * points), 100) == 1.0,
             tt::tolerance(1e-12));
  // Gaussian bumps: wide ones keep nearby distances in order, very narrow ones do not (every
  // pair of distinct points is about as far apart as any other).
  Generator gen(11);
  GaussianPositions wide({.dim = 4, .centres = 64, .sigma = 0.05, .scale = 8}, gen);
  GaussianPositions narrow({.dim = 4, .centres = 64, .sigma = 0.0005, .scale = 8}, gen);
  const double kept_wide = distance_preservation(points, wide.basis(points), 2.0);
  const double kept_narrow = distance_preservation(points, narrow.basis(points), 2.0);
  BOOST_TEST(kept_wide > 0.9);
  BOOST_TEST(kept_narrow < kept_wide);
  BOOST_TEST(stable_rank(narrow.basis(points)) > stable_rank(wide.basis(points)));
  // Too few pairs within the window: 0.
  BOOST_TEST(distance_preservation(points, points, 0.1) == 0.0);
  CHECK_THROWS_WITH(
      distance_preservation(points, xt::zeros<double>({19, 2}), 1.0),
      "distance_preservation: needs points (N, M) and embeddings (N, K) with the same N");
}

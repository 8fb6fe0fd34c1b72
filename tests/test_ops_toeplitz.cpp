#define BOOST_TEST_MODULE ops_toeplitz
#include "testing.hpp"

using namespace tg;
using Inputs = std::vector<Tensor>;

namespace {

// The definition, O(n^2): y[b, h, i, f] = sum_j c[h, j - i + n - 1] x[b, h, j, f]; causal c holds
// offsets -(n-1) .. 0 only.
Array<double> direct(const Array<double>& c, const Array<double>& x, bool causal) {
  const std::size_t B = x.shape()[0], H = x.shape()[1], n = x.shape()[2], F = x.shape()[3];
  Array<double> y = xt::zeros<double>(x.shape());
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          if (causal && j > i) continue;
          const double coefficient = c(h, j + n - 1 - i);
          for (std::size_t f = 0; f < F; ++f) y(b, h, i, f) += coefficient * x(b, h, j, f);
        }
  return y;
}

double largest_relative_error(const Array<double>& got, const Array<double>& want) {
  const double scale = std::max(1.0, double(xt::amax(xt::abs(want))()));
  return double(xt::amax(xt::abs(got - want))()) / scale;
}

}  // namespace

BOOST_AUTO_TEST_CASE(equals_the_direct_sum_in_float64) {
  for (bool causal : {false, true})
    for (std::size_t n : {1, 2, 3, 7, 16, 33, 100}) {
      BOOST_TEST_CONTEXT("n " << n << (causal ? ", causal" : "")) {
        const Tensor c = testing::randn64({3, causal ? n : 2 * n - 1}, 1 + n);
        const Tensor x = testing::randn64({2, 3, n, 5}, 2 + n);
        const Tensor y = toeplitz_matmul(c, x, causal);
        BOOST_TEST(y.shape() == x.shape(), boost::test_tools::per_element());
        BOOST_TEST(largest_relative_error(y.data<double>(), direct(c.data<double>(), x.data<double>(), causal)) < 1e-10);
      }
    }
}

BOOST_AUTO_TEST_CASE(float32_agrees_with_float64) {
  const Tensor c = testing::randn64({2, 2 * 40 - 1}, 5), x = testing::randn64({1, 2, 40, 8}, 6);
  const Tensor y64 = toeplitz_matmul(c, x, false);
  const Tensor y32 = toeplitz_matmul(c.to(Dtype::f32), x.to(Dtype::f32), false);
  BOOST_TEST(largest_relative_error(y32.to(Dtype::f64).data<double>(), y64.data<double>()) < 1e-5);
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences) {
  for (bool causal : {false, true})
    for (std::size_t n : {1, 4, 9}) {
      BOOST_TEST_CONTEXT("n " << n << (causal ? ", causal" : "")) {
        const Tensor c = testing::randn64({2, causal ? n : 2 * n - 1}, 10 + n);
        const Tensor x = testing::randn64({2, 2, n, 3}, 20 + n);
        CHECK_GRAD([causal](const Inputs& in) { return toeplitz_matmul(in[0], in[1], causal); }, {c, x});
      }
    }
}

BOOST_AUTO_TEST_CASE(causal_outputs_never_see_later_positions) {
  const std::size_t n = 24;
  const Tensor c = testing::randn64({1, n}, 3);
  const Tensor x = testing::randn64({1, 1, n, 4}, 4);
  const Array<double> y = toeplitz_matmul(c, x, true).data<double>();
  for (std::size_t j : {0u, 5u, 23u}) {
    Tensor moved = x.detach();
    for (std::size_t f = 0; f < 4; ++f) moved.data<double>()(0, 0, j, f) += 100.0;
    const Array<double> y2 = toeplitz_matmul(c, moved, true).data<double>();
    for (std::size_t i = 0; i < n; ++i) {
      double change = 0;
      for (std::size_t f = 0; f < 4; ++f) change = std::max(change, std::abs(y2(0, 0, i, f) - y(0, 0, i, f)));
      if (i < j) BOOST_TEST(change < 1e-9, "row " << i << " moved by " << change << " when row " << j << " changed");
      else BOOST_TEST(change > 1e-3, "row " << i << " did not see row " << j);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_shapes_are_named) {
  const Tensor x = testing::randn64({1, 2, 5, 3}, 1);
  CHECK_THROWS_WITH(toeplitz_matmul(testing::randn64({2, 5}, 2), x, false),
                    "toeplitz_matmul: c must be (H, 2n - 1) = (2, 9) for x (1, 2, 5, 3), got (2, 5)");
  CHECK_THROWS_WITH(toeplitz_matmul(testing::randn64({2, 9}, 2), x, true), "c must be (H, n) = (2, 5)");
  CHECK_THROWS_WITH(toeplitz_matmul(testing::randn64({2, 9}, 2), testing::randn64({2, 5, 3}, 1), false),
                    "x must be (B, H, n, F), got (2, 5, 3)");
  CHECK_THROWS_WITH(toeplitz_matmul(testing::randn64({2, 9}, 2).to(Dtype::f32), x, false), "c is float32 but x is float64");
}

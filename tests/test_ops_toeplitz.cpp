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
        BOOST_TEST(largest_relative_error(y.data<double>(),
                                          direct(c.data<double>(), x.data<double>(), causal)) <
                   1e-10);
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
        CHECK_GRAD([causal](const Inputs& in) { return toeplitz_matmul(in[0], in[1], causal); },
                   {c, x});
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
      for (std::size_t f = 0; f < 4; ++f)
        change = std::max(change, std::abs(y2(0, 0, i, f) - y(0, 0, i, f)));
      if (i < j)
        BOOST_TEST(change < 1e-9,
                   "row " << i << " moved by " << change << " when row " << j << " changed");
      else BOOST_TEST(change > 1e-3, "row " << i << " did not see row " << j);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_shapes_are_named) {
  const Tensor x = testing::randn64({1, 2, 5, 3}, 1);
  CHECK_THROWS_WITH(
      toeplitz_matmul(testing::randn64({2, 5}, 2), x, false),
      "toeplitz_matmul: c must be (H, 2n - 1) = (2, 9) for x (1, 2, 5, 3), got (2, 5)");
  CHECK_THROWS_WITH(toeplitz_matmul(testing::randn64({2, 9}, 2), x, true),
                    "c must be (H, n) = (2, 5)");
  CHECK_THROWS_WITH(
      toeplitz_matmul(testing::randn64({2, 9}, 2), testing::randn64({2, 5, 3}, 1), false),
      "x must be (B, H, n, F), got (2, 5, 3)");
  CHECK_THROWS_WITH(toeplitz_matmul(testing::randn64({2, 9}, 2).to(Dtype::f32), x, false),
                    "c is float32 but x is float64");
}

// kernel_toeplitz is toeplitz_matmul over the columns phi_k[j, f] [v[j], 1], read back with
// phi_q: composed from ops here, the reference it must equal.
namespace {

Tensor composed_kernel_toeplitz(const Tensor& pq, const Tensor& pk, const Tensor& v,
                                const Tensor& c, bool causal) {
  const auto B = std::int64_t(pq.shape()[0]), H = std::int64_t(pq.shape()[1]),
             n = std::int64_t(pq.shape()[2]);
  const auto m = std::int64_t(pq.shape()[3]), D = std::int64_t(v.shape()[3]);
  const Tensor v1 =
      concat({v, ones({pq.shape()[0], pq.shape()[1], pq.shape()[2], 1}, v.dtype())}, -1);
  const Tensor x = reshape(reshape(pk, {B, H, n, m, 1}) * reshape(v1, {B, H, n, 1, D + 1}),
                           {B, H, n, m * (D + 1)});
  const Tensor y = toeplitz_matmul(c, x, causal);
  return sum(reshape(pq, {B, H, n, m, 1}) * reshape(y, {B, H, n, m, D + 1}), {3});
}

}  // namespace

BOOST_AUTO_TEST_CASE(kernel_toeplitz_equals_its_composition) {
  for (bool causal : {false, true})
    for (std::size_t n : {1, 2, 7, 30}) {
      BOOST_TEST_CONTEXT("n " << n << (causal ? ", causal" : "")) {
        const Tensor pq = testing::randn64({2, 3, n, 4}, 30 + n),
                     pk = testing::randn64({2, 3, n, 4}, 40 + n);
        const Tensor v = testing::randn64({2, 3, n, 5}, 50 + n),
                     c = testing::randn64({3, causal ? n : 2 * n - 1}, 60 + n);
        const Tensor u = kernel_toeplitz(pq, pk, v, c, causal);
        BOOST_TEST(u.shape() == (Shape{2, 3, n, 6}), boost::test_tools::per_element());
        BOOST_TEST(largest_relative_error(
                       u.data<double>(),
                       composed_kernel_toeplitz(pq, pk, v, c, causal).data<double>()) < 1e-10);
      }
    }
}

BOOST_AUTO_TEST_CASE(kernel_toeplitz_gradients) {
  for (bool causal : {false, true})
    for (std::size_t n : {1, 5}) {
      BOOST_TEST_CONTEXT("n " << n << (causal ? ", causal" : "")) {
        const Tensor pq = testing::randn64({2, 2, n, 3}, 70 + n),
                     pk = testing::randn64({2, 2, n, 3}, 80 + n);
        const Tensor v = testing::randn64({2, 2, n, 2}, 90 + n),
                     c = testing::randn64({2, causal ? n : 2 * n - 1}, 100 + n);
        CHECK_GRAD(
            [causal](const Inputs& in) {
              return kernel_toeplitz(in[0], in[1], in[2], in[3], causal);
            },
            {pq, pk, v, c});
      }
    }
}

BOOST_AUTO_TEST_CASE(kernel_toeplitz_bad_inputs_are_named) {
  const Tensor p = testing::randn64({1, 2, 5, 3}, 1), v = testing::randn64({1, 2, 5, 4}, 2);
  CHECK_THROWS_WITH(
      kernel_toeplitz(p, testing::randn64({1, 2, 4, 3}, 3), v, testing::randn64({2, 9}, 4)),
      "kernel_toeplitz: needs phi_q and phi_k (B, H, n, m) and v (B, H, n, D)");
  CHECK_THROWS_WITH(kernel_toeplitz(p, p, v, testing::randn64({2, 9}, 4), true),
                    "c must be (H, n) = (2, 5), got (2, 9)");
  CHECK_THROWS_WITH(kernel_toeplitz(p, p, v.to(Dtype::f32), testing::randn64({2, 9}, 4)),
                    "all inputs must have one dtype");
}

// ---- the adjoints as ops, and second order ------------------------------------------------

namespace {
const GradcheckOptions second_order{.order = 2, .modes = CheckModes::both};

double dot(const Tensor& a, const Tensor& b) { return sum(a * b).item(); }
}  // namespace

// toeplitz_matmul's adjoints: <T(c) x, g> = <x, T(c)^T g> = <c, correlate(g, x)>.
BOOST_AUTO_TEST_CASE(the_transposed_product_and_the_correlation_are_the_adjoints) {
  for (bool causal : {false, true}) {
    const std::size_t n = 6;
    const Tensor c = testing::randn64({2, causal ? n : 2 * n - 1}, 1, false);
    const Tensor x = testing::randn64({3, 2, n, 4}, 2, false),
                 g = testing::randn64({3, 2, n, 4}, 3, false);
    const double want = dot(toeplitz_matmul(c, x, causal), g);
    BOOST_TEST(dot(x, toeplitz_matmul_transposed(c, g, causal)) == want,
               boost::test_tools::tolerance(1e-12));
    BOOST_TEST(dot(c, toeplitz_correlate(g, x, causal)) == want,
               boost::test_tools::tolerance(1e-12));
  }
  const Tensor x = testing::randn64({1, 2, 5, 3}, 1);
  CHECK_THROWS_WITH(toeplitz_matmul_transposed(testing::randn64({2, 5}, 2), x, false),
                    "toeplitz_matmul_transposed: c must be (H, 2n - 1) = (2, 9) for g");
  CHECK_THROWS_WITH(toeplitz_correlate(x, testing::randn64({1, 2, 4, 3}, 2), false),
                    "toeplitz_correlate: g and x must be (B, H, n, F) of one shape");
}

BOOST_AUTO_TEST_CASE(toeplitz_ops_pass_second_order_checks) {
  for (bool causal : {false, true}) {
    BOOST_TEST_CONTEXT((causal ? "causal" : "bidirectional")) {
      const std::size_t n = 3;
      const Tensor c = testing::randn64({2, causal ? n : 2 * n - 1}, 4);
      const Tensor x = testing::randn64({1, 2, n, 2}, 5), g = testing::randn64({1, 2, n, 2}, 6);
      auto r =
          gradcheck([causal](const Inputs& in) { return toeplitz_matmul(in[0], in[1], causal); },
                    {c, x}, second_order);
      BOOST_CHECK_MESSAGE(r.ok, "toeplitz_matmul: " << r.report);
      r = gradcheck(
          [causal](const Inputs& in) { return toeplitz_matmul_transposed(in[0], in[1], causal); },
          {c, g}, second_order);
      BOOST_CHECK_MESSAGE(r.ok, "toeplitz_matmul_transposed: " << r.report);
      r = gradcheck([causal](const Inputs& in) { return toeplitz_correlate(in[0], in[1], causal); },
                    {g, x}, second_order);
      BOOST_CHECK_MESSAGE(r.ok, "toeplitz_correlate: " << r.report);
    }
  }
}

BOOST_AUTO_TEST_CASE(kernel_toeplitz_and_its_backward_pass_second_order_checks) {
  for (bool causal : {false, true}) {
    BOOST_TEST_CONTEXT((causal ? "causal" : "bidirectional")) {
      const std::size_t n = 3;
      const Tensor pq = testing::randn64({1, 2, n, 2}, 7), pk = testing::randn64({1, 2, n, 2}, 8);
      const Tensor v = testing::randn64({1, 2, n, 2}, 9),
                   c = testing::randn64({2, causal ? n : 2 * n - 1}, 10);
      auto r = gradcheck(
          [causal](const Inputs& in) {
            return kernel_toeplitz(in[0], in[1], in[2], in[3], causal);
          },
          {pq, pk, v, c}, second_order);
      BOOST_CHECK_MESSAGE(r.ok, "kernel_toeplitz: " << r.report);
      // Each of the backward's four outputs, as a function of all five inputs.
      const Tensor g_u = testing::randn64({1, 2, n, 3}, 11);
      for (std::size_t o = 0; o < 4; ++o) {
        r = gradcheck(
            [causal, o](const Inputs& in) {
              return kernel_toeplitz_backward(in[0], in[1], in[2], in[3], in[4], causal)[o];
            },
            {g_u, pq, pk, v, c}, second_order);
        BOOST_CHECK_MESSAGE(r.ok, "kernel_toeplitz_backward, output " << o << ": " << r.report);
      }
    }
  }
  const Tensor p = testing::randn64({1, 2, 5, 3}, 1), v = testing::randn64({1, 2, 5, 4}, 2);
  CHECK_THROWS_WITH(
      kernel_toeplitz_backward(testing::randn64({1, 2, 5, 4}, 3), p, p, v,
                               testing::randn64({2, 9}, 4)),
      "kernel_toeplitz_backward: g_u must be (B, H, n, D + 1) = (1, 2, 5, 5), got (1, 2, 5, 4)");
}

#define BOOST_TEST_MODULE ops_matmul
#include <xtensor/xview.hpp>

#include "testing.hpp"

using namespace tg;
using testing::randn64;
using Inputs = std::vector<Tensor>;

namespace {

// The textbook triple loop, for one pair of matrices.
Array<double> naive(const Array<double>& a, const Array<double>& b) {
  const std::size_t n = a.shape()[0], k = a.shape()[1], m = b.shape()[1];
  Array<double> c = xt::zeros<double>({n, m});
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < m; ++j)
      for (std::size_t l = 0; l < k; ++l) c(i, j) += a(i, l) * b(l, j);
  return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(two_d_matches_the_triple_loop) {
  Tensor a = randn64({3, 5}, 1), b = randn64({5, 2}, 2);
  Tensor c = matmul(a, b);
  BOOST_TEST(c.shape() == (Shape{3, 2}));
  const Array<double> want = naive(a.data<double>(), b.data<double>());
  for (std::size_t i = 0; i < want.size(); ++i)
    BOOST_TEST(c.data<double>().data()[i] == want.data()[i], boost::test_tools::tolerance(1e-12));
  Tensor f = matmul(a.to(Dtype::f32), b.to(Dtype::f32));
  BOOST_TEST(f.dtype() == Dtype::f32);
  BOOST_TEST(f.data<float>()(2, 1) == want(2, 1), boost::test_tools::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(batched_with_broadcast_batch_dims) {
  Tensor a = randn64({2, 1, 3, 4}, 1), b = randn64({3, 4, 2}, 2);
  Tensor c = matmul(a, b);
  BOOST_TEST(c.shape() == (Shape{2, 3, 3, 2}));
  // Batch (1, 2) of c is a[1, 0] @ b[2].
  Array<double> a10 = xt::view(a.data<double>(), 1, 0);
  Array<double> b2 = xt::view(b.data<double>(), 2);
  const Array<double> want = naive(a10, b2);
  BOOST_TEST(c.data<double>()(1, 2, 0, 1) == want(0, 1), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(gradcheck_all_layouts) {
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); }, {randn64({3, 4}, 1), randn64({4, 2}, 2)});
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); }, {randn64({2, 3, 4}, 1), randn64({4, 5}, 2)});
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); }, {randn64({3, 4}, 1), randn64({2, 4, 5}, 2)});
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); }, {randn64({2, 3, 4}, 1), randn64({2, 4, 5}, 2)});
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); }, {randn64({2, 1, 3, 4}, 1), randn64({3, 4, 2}, 2)});
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); }, {randn64({1, 1}, 1), randn64({1, 1}, 2)});
  // A tensor used on both sides: x^T x.
  CHECK_GRAD([](const Inputs& in) { return matmul(transpose(in[0]), in[0]); }, {randn64({3, 2}, 3)});
}

BOOST_AUTO_TEST_CASE(empty_dims_give_empty_or_zero_products) {
  Tensor a = randn64({0, 3}, 1), b = randn64({3, 2}, 2);
  BOOST_TEST(matmul(a, b).shape() == (Shape{0, 2}));
  Tensor z = matmul(randn64({2, 0}, 3), randn64({0, 4}, 4));  // k = 0: all zeros
  BOOST_TEST(z.shape() == (Shape{2, 4}));
  BOOST_TEST(sum(abs(z)).item() == 0.0);
  Tape tape;
  TapeGuard recording(tape);
  Tensor y = sum(matmul(randn64({2, 0, 3}, 5), b));
  y.backward();
}

BOOST_AUTO_TEST_CASE(errors_name_both_shapes) {
  CHECK_THROWS_WITH(matmul(zeros({4, 3}), zeros({5, 2})),
                    "matmul: inner dimensions differ: a is (4, 3), b is (5, 2)");
  CHECK_THROWS_WITH(matmul(zeros({3}), zeros({3, 2})), "matmul: both inputs need at least 2 dims");
  CHECK_THROWS_WITH(matmul(zeros({2, 4, 3}), zeros({3, 3, 2})), "matmul (batch dims): shapes do not broadcast");
  CHECK_THROWS_WITH(matmul(zeros({2, 2}), zeros({2, 2}, Dtype::f64)), "matmul: dtypes differ");
}

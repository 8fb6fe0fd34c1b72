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
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); },
             {randn64({3, 4}, 1), randn64({4, 2}, 2)});
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); },
             {randn64({2, 3, 4}, 1), randn64({4, 5}, 2)});
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); },
             {randn64({3, 4}, 1), randn64({2, 4, 5}, 2)});
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); },
             {randn64({2, 3, 4}, 1), randn64({2, 4, 5}, 2)});
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); },
             {randn64({2, 1, 3, 4}, 1), randn64({3, 4, 2}, 2)});
  CHECK_GRAD([](const Inputs& in) { return matmul(in[0], in[1]); },
             {randn64({1, 1}, 1), randn64({1, 1}, 2)});
  // A tensor used on both sides: x^T x.
  CHECK_GRAD([](const Inputs& in) { return matmul(transpose(in[0]), in[0]); },
             {randn64({3, 2}, 3)});
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
  CHECK_THROWS_WITH(matmul(zeros({2, 4, 3}), zeros({3, 3, 2})),
                    "matmul (batch dims): shapes do not broadcast");
  CHECK_THROWS_WITH(matmul(zeros({2, 2}), zeros({2, 2}, Dtype::f64)), "matmul: dtypes differ");
}

BOOST_AUTO_TEST_CASE(linear_gradcheck_and_errors) {
  CHECK_GRAD([](const Inputs& in) { return linear(in[0], in[1], in[2]); },
             {randn64({2, 3, 4}, 1), randn64({4, 5}, 2), randn64({5}, 3)});
  CHECK_GRAD([](const Inputs& in) { return linear(in[0], in[1]); },
             {randn64({3, 4}, 1), randn64({4, 2}, 2)});
  CHECK_THROWS_WITH(
      linear(zeros({2, 3}), zeros({4, 5}), zeros({5})),
      "linear: needs x (..., in), w (in, out) and b (out): got x (2, 3), w (4, 5), b (5)");
  CHECK_THROWS_WITH(
      linear(zeros({2, 4}), zeros({4, 5}), zeros({4})),
      "linear: needs x (..., in), w (in, out) and b (out): got x (2, 4), w (4, 5), b (4)");
}

// Products large enough to be cut into tiles, and batches of small ones run in parallel,
// against float64 products of the same float32 values.
BOOST_AUTO_TEST_CASE(float32_products_in_tiles_and_batches_match_float64) {
  const auto check = [](const Tensor& got, const Tensor& want, double bound) {
    const double err = max(abs(got.to(Dtype::f64) - want), {0, 1}).item();
    BOOST_TEST(err <= bound, "largest error " << err);
  };
  Tensor a = randn64({700, 300}, 1, false).to(Dtype::f32),
         w = randn64({300, 520}, 2, false).to(Dtype::f32);
  Tensor b = randn64({520}, 3, false).to(Dtype::f32);
  // Sums of 300 products of N(0, 1) values: about 17 in size, float32 rounding below 1e-4.
  const Tensor want = matmul(a.to(Dtype::f64), w.to(Dtype::f64));
  check(matmul(a, w), want, 1e-3);
  check(linear(a, w, b), want + b.to(Dtype::f64), 1e-3);
  check(matmul(transpose(w), transpose(a)), transpose(want), 1e-3);
  Tensor q = randn64({6, 4, 20, 8}, 4, false).to(Dtype::f32),
         k = randn64({6, 4, 8, 30}, 5, false).to(Dtype::f32);
  Tensor batched = matmul(q, k);
  const Tensor batched_want = matmul(q.to(Dtype::f64), k.to(Dtype::f64));
  check(reshape(batched, {-1, 30}), reshape(batched_want, {-1, 30}), 1e-4);
}

BOOST_AUTO_TEST_CASE(float32_products_are_the_same_bits_on_one_thread_and_two) {
  Tensor a = randn64({700, 300}, 1).to(Dtype::f32).set_requires_grad(),
         w = randn64({300, 520}, 2).to(Dtype::f32).set_requires_grad();
  Tensor q = randn64({6, 4, 20, 8}, 4).to(Dtype::f32).set_requires_grad(),
         k = randn64({1, 4, 8, 30}, 5).to(Dtype::f32).set_requires_grad();
  std::vector<std::vector<Array<float>>> runs;
  for (std::size_t threads : {1u, 2u}) {
    set_num_threads(threads);
    for (Tensor* t : {&a, &w, &q, &k}) t->zero_grad();
    Tape tape;
    TapeGuard recording(tape);
    Tensor y = linear(a, w), z = matmul(q, k);  // k broadcast over the batch: its gradient is a sum
    (sum(y * y) + sum(z * z)).backward();
    runs.push_back({y.data<float>(), z.data<float>(), a.grad().data<float>(),
                    w.grad().data<float>(), q.grad().data<float>(), k.grad().data<float>()});
  }
  set_num_threads(0);
  for (std::size_t i = 0; i < runs[0].size(); ++i)
    BOOST_TEST((runs[0][i] == runs[1][i]), "array " << i);
}

#define BOOST_TEST_MODULE ops_matmul
#include <map>

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

// A backward that records nothing takes linear's first-order shortcut (the rule's formulas as
// arrays); one with create_graph records the rule's ops.  The two run the same kernels, so they
// give the same bits: in float32 and float64, with a bias and without, rows in batch dims or
// not, small products and products cut into tiles; and under the bf16 policy, where the
// shortcut's products read operands rounded once (w in the forward pass, g_y for both
// gradients) and the recorded rule's products round their operands themselves.
BOOST_AUTO_TEST_CASE(linear_first_order_shortcut_gives_the_bits_of_the_recorded_rule) {
  struct Case {
    Shape x, w;
    bool bias;
  };
  for (const Precision precision : {Precision::f32, Precision::bf16})
    for (const Dtype dtype : {Dtype::f32, Dtype::f64})
      for (const Case& c : {Case{{2, 3, 4}, {4, 5}, true}, Case{{6, 4}, {4, 3}, false},
                            Case{{4, 50, 120}, {120, 200}, true}}) {
        PrecisionGuard policy(precision);
        const auto leaf = [dtype](const Shape& shape, std::uint64_t seed) {
          return randn64(shape, seed, false).to(dtype).set_requires_grad();
        };
        Tensor x = leaf(c.x, 1), w = leaf(c.w, 2), b = leaf({c.w[1]}, 3);
        Tape tape;
        TapeGuard recording(tape);
        const Tensor y = linear(x, w, c.bias ? b : Tensor());
        const Tensor g_y = leaf(y.shape(), 4);  // so that b's gradient, sum(g_y), has a graph too
        const Inputs inputs = c.bias ? Inputs{x, w, b} : Inputs{x, w};
        const Inputs shortcut = grad({y}, inputs, {.grad_outputs = {g_y}, .retain_graph = true});
        const Inputs recorded = grad({y}, inputs, {.grad_outputs = {g_y}, .create_graph = true});
        for (std::size_t i = 0; i < inputs.size(); ++i) {
          BOOST_TEST(!shortcut[i].requires_grad());
          BOOST_TEST(recorded[i].requires_grad());  // made by recorded ops
          BOOST_TEST(shortcut[i].shape() == inputs[i].shape());
          const bool same = dtype == Dtype::f32
                                ? shortcut[i].data<float>() == recorded[i].data<float>()
                                : shortcut[i].data<double>() == recorded[i].data<double>();
          BOOST_TEST(same, dtype_name(dtype) << " x " << shape_str(c.x) << ", gradient " << i
                                             << ", products in " << enum_name(precision));
        }
        if (precision == Precision::bf16 && dtype == Dtype::f32 && c.w[0] == 120) {  // it rounded
          PrecisionGuard f32(Precision::f32);
          BOOST_TEST(!(shortcut[1].data<float>() ==
                       matmul_transposed(x, true, g_y, false, c.w).data<float>()));
        }
      }
}

// linear keeps w rounded from the forward pass for g_x; a backward under the f32 policy (the
// guard gone) computes float32 gradients all the same.
BOOST_AUTO_TEST_CASE(linear_backward_follows_the_policy_at_its_own_time) {
  Tensor x = randn64({200, 120}, 1, false).to(Dtype::f32).set_requires_grad(),
         w = randn64({120, 200}, 2, false).to(Dtype::f32).set_requires_grad();
  const Tensor g_y = randn64({200, 200}, 3, false).to(Dtype::f32);
  Tape tape;
  TapeGuard recording(tape);
  Tensor y;
  {
    PrecisionGuard bf16(Precision::bf16);
    y = linear(x, w);
  }
  const Inputs g = grad({y}, {x, w}, {.grad_outputs = {g_y}});
  BOOST_TEST(
      (g[0].data<float>() == matmul_transposed(g_y, false, w, true, x.shape()).data<float>()));
  BOOST_TEST(
      (g[1].data<float>() == matmul_transposed(x, true, g_y, false, w.shape()).data<float>()));
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

// Second order, both ways: every rule of a product is a product again (matmul_transposed).
BOOST_AUTO_TEST_CASE(products_pass_second_order_checks_both_ways) {
  const GradcheckOptions both{.order = 2, .modes = CheckModes::both};
  const auto product = [](const Inputs& in) { return matmul(in[0], in[1]); };
  CHECK_GRAD(product, {randn64({3, 4}, 1), randn64({4, 2}, 2)}, both);
  CHECK_GRAD(product, {randn64({2, 2, 3}, 1), randn64({3, 2}, 2)}, both);        // b one matrix
  CHECK_GRAD(product, {randn64({2, 1, 2, 3}, 1), randn64({2, 3, 2}, 2)}, both);  // broadcast
  CHECK_GRAD(product, {randn64({2, 3}, 1), randn64({2, 3, 2}, 2)}, both);
  // A tensor on both sides, squared so that the second derivative is not only cross terms.
  CHECK_GRAD([](const Inputs& in) { return matmul(matmul(in[0], in[0]), in[0]); },
             {randn64({3, 3}, 3)}, both);
  CHECK_GRAD([](const Inputs& in) { return linear(in[0], in[1], in[2]); },
             {randn64({2, 2, 3}, 1), randn64({3, 2}, 2), randn64({2}, 3)}, both);
  CHECK_GRAD([](const Inputs& in) { return linear(in[0], in[1]); },
             {randn64({3}, 1), randn64({3, 2}, 2)}, both);  // one row
  // Curvature through a product: tanh(x w) w' has second derivatives in x and w.
  CHECK_GRAD([](const Inputs& in) { return linear(tanh(linear(in[0], in[1], in[2])), in[1]); },
             {randn64({2, 3}, 4), randn64({3, 3}, 5), randn64({3}, 6)}, both);
}

BOOST_AUTO_TEST_CASE(matmul_transposed_reads_operands_transposed_and_sums_down) {
  const GradcheckOptions both{.order = 2, .modes = CheckModes::both};
  Tensor a = randn64({2, 3, 4}, 1), at = randn64({2, 4, 3}, 2);
  Tensor b = randn64({2, 4, 2}, 3), bt = randn64({2, 2, 4}, 4);
  const auto close = [](const Tensor& got, const Tensor& want) {
    BOOST_TEST(got.shape() == want.shape());
    BOOST_TEST(xt::allclose(got.data<double>(), want.data<double>(), 1e-12, 1e-12));
  };
  close(matmul_transposed(a, false, b, false, {2, 3, 2}), matmul(a, b));
  close(matmul_transposed(at, true, b, false, {2, 3, 2}), matmul(transpose(at), b));
  close(matmul_transposed(a, false, bt, true, {2, 3, 2}), matmul(a, transpose(bt)));
  close(matmul_transposed(at, true, bt, true, {2, 3, 2}), matmul(transpose(at), transpose(bt)));
  // Summed over the batch (a weight's gradient), and one matrix repeated over a batch.
  close(matmul_transposed(a, true, randn64({2, 3, 2}, 5), false, {4, 2}),
        sum(matmul(transpose(a), randn64({2, 3, 2}, 5)), {0}));
  close(matmul_transposed(randn64({3, 4}, 6), false, b, false, {2, 3, 2}),
        matmul(randn64({3, 4}, 6), b));
  close(matmul_transposed(randn64({3, 4}, 6), false, randn64({4, 2}, 7), false, {2, 3, 2}),
        expand(matmul(randn64({3, 4}, 6), randn64({4, 2}, 7)), {2, 3, 2}));
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      const Shape out = ta || tb ? Shape{3, 2} : Shape{2, 3, 2};  // summed down, or not
      CHECK_GRAD(
          [ta, tb, out](const Inputs& in) { return matmul_transposed(in[0], ta, in[1], tb, out); },
          {ta ? at : a, tb ? bt : b}, both);
    }
  CHECK_THROWS_WITH(matmul_transposed(a, true, b, false, {3, 2}),
                    "matmul_transposed: inner dimensions differ: a (2, 3, 4) (transposed), "
                    "b (2, 4, 2), result (3, 2)");
  CHECK_THROWS_WITH(matmul_transposed(a, false, b, false, {2, 3, 3}),
                    "matmul_transposed: the result must end in (3, 2)");
}

// Differentiating products with create_graph records products with transpose flags, never a
// transposed copy (a permute op), and the second derivative comes out right.
BOOST_AUTO_TEST_CASE(gradients_of_products_are_products_with_flags) {
  Tensor x = randn64({2, 3, 4}, 1), w = randn64({4, 5}, 2), v = randn64({5, 3}, 3);
  Tape tape;
  TapeGuard recording(tape);
  Tensor y = matmul(linear(x, w), v);  // (2, 3, 3)
  const std::size_t forward_ops = tape.size();
  std::vector<Tensor> g =
      grad({y}, {x, w}, {.grad_outputs = {ones(y.shape(), Dtype::f64)}, .create_graph = true});
  std::map<std::string, int> recorded;
  for (std::size_t i = forward_ops; i < tape.size(); ++i) ++recorded[tape.node(i).op];
  BOOST_TEST(recorded["matmul_transposed"] >= 3, tape.listing());
  BOOST_TEST(recorded.count("permute") == 0u, tape.listing());
  // g_x = 1 v^T w^T, a constant in x; its gradient in w (weighted by 1) sums over x's rows.
  BOOST_TEST(g[0].requires_grad());
  Tensor h = grad(g[0], w, {.grad_outputs = {ones(g[0].shape(), Dtype::f64)}});
  // d/dw sum(1 v^T w^T) = sum over the 6 rows of 1 (4) times the column sums of v (5)
  Array<double> want = xt::zeros<double>({4, 5});
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 5; ++j)
      for (std::size_t k = 0; k < 3; ++k) want(i, j) += 6.0 * v.data<double>()(j, k);
  BOOST_TEST(xt::allclose(h.data<double>(), want, 1e-12, 1e-12));
}

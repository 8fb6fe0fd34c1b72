#define BOOST_TEST_MODULE ops_elementwise
#include <cmath>

#include "testing.hpp"

using namespace tg;
using testing::randn64;
using testing::uniform64;
using Inputs = std::vector<Tensor>;

namespace {

// Shape pairs that exercise broadcasting: equal, trailing, leading ones, both sides, scalars,
// size-1 dims, and an empty batch.
const std::vector<std::pair<Shape, Shape>> kShapePairs = {
    {{3, 4}, {3, 4}}, {{2, 3, 4}, {4}}, {{2, 3, 4}, {3, 1}}, {{3, 1}, {1, 4}},    {{}, {2, 3}},
    {{2, 3}, {}},     {{1}, {1}},       {{0, 3}, {3}},       {{2, 1, 3}, {4, 1}},
};

}  // namespace

BOOST_AUTO_TEST_CASE(binary_ops_gradcheck_with_broadcasting) {
  std::uint64_t seed = 10;
  for (const auto& [sa, sb] : kShapePairs) {
    BOOST_TEST_CONTEXT("a " << shape_str(sa) << ", b " << shape_str(sb)) {
      Tensor a = randn64(sa, ++seed), b = randn64(sb, ++seed);
      Tensor pos_a = uniform64(sa, 0.5, 2.0, ++seed), pos_b = uniform64(sb, 0.5, 2.0, ++seed);
      if (shape_numel(sa) == 0 || shape_numel(sb) == 0) {  // nothing to check, but it runs
        Tape tape;
        TapeGuard recording(tape);
        Tensor y = a * b + a / pos_b - b;
        BOOST_TEST(y.numel() == 0u);
        y.backward(zeros(y.shape(), Dtype::f64));
        continue;
      }
      CHECK_GRAD([](const Inputs& in) { return in[0] + in[1]; }, {a, b});
      CHECK_GRAD([](const Inputs& in) { return in[0] - in[1]; }, {a, b});
      CHECK_GRAD([](const Inputs& in) { return in[0] * in[1]; }, {a, b});
      CHECK_GRAD([](const Inputs& in) { return in[0] / in[1]; }, {a, pos_b});
      CHECK_GRAD([](const Inputs& in) { return tg::pow(in[0], in[1]); }, {pos_a, b});
    }
  }
}

BOOST_AUTO_TEST_CASE(unary_ops_gradcheck) {
  for (const Shape& s : {Shape{2, 3}, Shape{}, Shape{1}, Shape{4, 1, 2}}) {
    BOOST_TEST_CONTEXT("shape " << shape_str(s)) {
      Tensor x = randn64(s, 1), pos = uniform64(s, 0.5, 2.0, 2);
      CHECK_GRAD([](const Inputs& in) { return -in[0]; }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::exp(in[0]); }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::log(in[0]); }, {pos});
      CHECK_GRAD([](const Inputs& in) { return tg::sqrt(in[0]); }, {pos});
      CHECK_GRAD([](const Inputs& in) { return tg::abs(in[0]); }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::tanh(in[0]); }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::sin(in[0]); }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::cos(in[0]); }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::sigmoid(in[0]); }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::relu(in[0]); }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::gelu(in[0]); }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::gelu(in[0], GeluForm::tanh); }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::pow(in[0], 3.0); }, {x});
      CHECK_GRAD([](const Inputs& in) { return tg::pow(in[0], -0.5); }, {pos});
      CHECK_GRAD([](const Inputs& in) { return in[0] * 2.5 + 1.0; }, {x});
      CHECK_GRAD([](const Inputs& in) { return 1.0 - in[0] / 4.0; }, {x});
      CHECK_GRAD([](const Inputs& in) { return 2.0 / in[0]; }, {pos});
    }
  }
}

// An element's GELU (and its slope) does not depend on where it sits: a row alone, at the end
// of a short array, gets the bits it gets among others (what skipping padding relies on).
BOOST_AUTO_TEST_CASE(float_gelu_values_do_not_depend_on_their_place) {
  const Tensor x = randn64({40, 12}, 3).to(Dtype::f32).set_requires_grad();
  const Tensor g = randn64({40, 12}, 4).to(Dtype::f32);
  Tape tape;
  TapeGuard recording(tape);
  for (std::int64_t row : {0, 9, 39}) {
    const Tensor alone = slice(x, 0, row, row + 1);
    BOOST_TEST((slice(gelu(x), 0, row, row + 1).data<float>() == gelu(alone).data<float>()));
    const std::vector<Tensor> all{x}, one{alone};
    const Tensor g_all = grad({gelu(x)}, all, {.grad_outputs = {g}})[0];
    const Tensor g_alone =
        grad({gelu(alone)}, one, {.grad_outputs = {slice(g, 0, row, row + 1)}})[0];
    BOOST_TEST((slice(g_all, 0, row, row + 1).data<float>() == g_alone.data<float>()));
  }
}

// float32 GELU uses its own vectorisable exp and erf: it must match the float64 formulas (which
// use std::erf) to float precision, forward and backward, across the range and at the extremes.
BOOST_AUTO_TEST_CASE(float_gelu_matches_the_exact_formula) {
  std::vector<double> values;
  for (double v = -12; v <= 12; v += 0.0137) values.push_back(v);
  for (double v : {-1e30, -100.0, -1e-30, 0.0, 1e-30, 100.0, 1e30}) values.push_back(v);
  const Shape shape{values.size()};
  Tensor x32 = from_vector(values, shape), x64 = from_vector(values, shape, Dtype::f64);
  x32.set_requires_grad();
  x64.set_requires_grad();
  Tape tape;
  TapeGuard recording(tape);
  Tensor y32 = gelu(x32), y64 = gelu(x64);
  sum(y32).backward();
  sum(y64).backward();
  double worst_y = 0, worst_g = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double y = y64.data<double>()(i), g = x64.grad_data<double>()(i);
    worst_y = std::max(worst_y, std::abs(y32.data<float>()(i) - y) / std::max(1.0, std::abs(y)));
    worst_g = std::max(worst_g, std::abs(x32.grad_data<float>()(i) - g));
  }
  BOOST_TEST_MESSAGE("worst relative error: forward " << worst_y << ", gradient " << worst_g);
  BOOST_TEST(worst_y < 1e-6);
  BOOST_TEST(worst_g < 1e-6);
  // NaN stays NaN (anomaly mode depends on it).
  Tensor nan = from_vector({std::nan("")}, {1});
  BOOST_TEST(std::isnan(gelu(nan).data<float>()(0)));
}

BOOST_AUTO_TEST_CASE(forward_values_match_the_formulas) {
  Tensor x = from_vector({-1.5, 0.0, 2.0}, {3}, Dtype::f64);
  const auto v = [](const Tensor& t, std::size_t i) { return t.data<double>()(i); };
  BOOST_TEST(v(relu(x), 0) == 0.0);
  BOOST_TEST(v(relu(x), 2) == 2.0);
  BOOST_TEST(v(sigmoid(x), 1) == 0.5);
  BOOST_TEST(v(gelu(x), 2) == 2.0 * 0.5 * (1 + std::erf(2.0 / std::sqrt(2.0))),
             boost::test_tools::tolerance(1e-12));
  const double u = std::sqrt(2 / M_PI) * (2.0 + 0.044715 * 8);
  BOOST_TEST(v(gelu(x, GeluForm::tanh), 2) == 0.5 * 2.0 * (1 + std::tanh(u)),
             boost::test_tools::tolerance(1e-12));
  BOOST_TEST(v(abs(x), 0) == 1.5);
  // Sigmoid saturates without NaN.
  Tensor big = from_vector({-1000, 1000}, {2});
  BOOST_TEST(sigmoid(big).data<float>()(0) == 0.0f);
  BOOST_TEST(sigmoid(big).data<float>()(1) == 1.0f);
}

BOOST_AUTO_TEST_CASE(composed_expressions_gradcheck) {
  Tensor a = randn64({3, 4}, 5), b = randn64({4}, 6), c = uniform64({3, 1}, 0.5, 1.5, 7);
  CHECK_GRAD([](const Inputs& in) { return tg::tanh(in[0] * in[1] + in[2]) / in[2]; }, {a, b, c});
  CHECK_GRAD(
      [](const Inputs& in) {
        return tg::sigmoid(tg::exp(in[0] * 0.3) - tg::log(in[2])) * tg::gelu(in[0] - in[1]);
      },
      {a, b, c});
  CHECK_GRAD(
      [](const Inputs& in) {  // a tensor used three times
        return in[0] * in[0] * tg::sqrt(in[2] + in[0] * in[0]);
      },
      {a, b, c});
}

BOOST_AUTO_TEST_CASE(where_and_masked_fill) {
  Tensor a = randn64({2, 3}, 1), b = randn64({3}, 2);
  Mask m = {{true, false, true}, {false, false, true}};
  Tensor y = tg::where(m, a, b);
  BOOST_TEST(y.data<double>()(0, 0) == a.data<double>()(0, 0));
  BOOST_TEST(y.data<double>()(1, 1) == b.data<double>()(1));
  CHECK_GRAD([m](const Inputs& in) { return tg::where(m, in[0], in[1]); }, {a, b});
  Mask row = {true, false, false};  // broadcast over rows
  Tensor f = masked_fill(a, row, -1e9);
  BOOST_TEST(f.data<double>()(1, 0) == -1e9);
  BOOST_TEST(f.data<double>()(1, 1) == a.data<double>()(1, 1));
  CHECK_GRAD([row](const Inputs& in) { return masked_fill(in[0], row, 0.0); }, {a});
  CHECK_THROWS_WITH(masked_fill(a, Mask{true, false}, 0.0), "masked_fill: shapes do not broadcast");
  CHECK_THROWS_WITH(masked_fill(b, m, 0.0), "the mask must broadcast to the input's shape");
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_the_shapes) {
  Tensor a = zeros({4, 3}), b = zeros({5, 2});
  CHECK_THROWS_WITH(a + b, "add: shapes do not broadcast: a is (4, 3), b is (5, 2)");
  CHECK_THROWS_WITH(a * b, "mul: shapes do not broadcast");
  CHECK_THROWS_WITH(a / b, "div: shapes do not broadcast");
  CHECK_THROWS_WITH(a - zeros({3}, Dtype::f64), "sub: dtypes differ: a is float32, b is float64");
  // named tensors (parameters take their module names) say where the mismatch is
  CHECK_THROWS_WITH(a * zeros({3}, Dtype::f64).set_name("norm.weight"),
                    "mul: dtypes differ: a is float32, b 'norm.weight' is float64");
  CHECK_THROWS_WITH(exp(Tensor()), "exp: the input is an undefined tensor");
}

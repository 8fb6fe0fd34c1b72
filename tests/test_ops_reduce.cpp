#define BOOST_TEST_MODULE ops_reduce
#include "testing.hpp"

using namespace tg;
using testing::randn64;
using Inputs = std::vector<Tensor>;

BOOST_AUTO_TEST_CASE(sum_and_mean_values_and_shapes) {
  Tensor x = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  BOOST_TEST(sum(x).item() == 21.0);
  BOOST_TEST(mean(x).item() == 3.5);
  BOOST_TEST(sum(x).shape() == Shape{});
  Tensor s0 = sum(x, {0});
  BOOST_TEST(s0.shape() == Shape{3});
  BOOST_TEST(s0.data<float>()(2) == 9.0f);
  BOOST_TEST(sum(x, {-1}, true).shape() == (Shape{2, 1}));
  BOOST_TEST(mean(x, {1}).data<float>()(1) == 5.0f);
  BOOST_TEST(max(x, {1}).data<float>()(0) == 3.0f);
  BOOST_TEST(max(x, {0, 1}).item() == 6.0);
  BOOST_TEST(sum(zeros({0, 3}), {0}).shape() == Shape{3});  // empty batch sums to zeros
}

BOOST_AUTO_TEST_CASE(reductions_gradcheck) {
  Tensor x = randn64({2, 3, 4}, 3);
  for (bool keep : {false, true}) {
    CHECK_GRAD([keep](const Inputs& in) { return sum(in[0], {1}, keep); }, {x});
    CHECK_GRAD([keep](const Inputs& in) { return sum(in[0], {0, -1}, keep); }, {x});
    CHECK_GRAD([keep](const Inputs& in) { return mean(in[0], {2}, keep); }, {x});
    CHECK_GRAD([keep](const Inputs& in) { return mean(in[0], {0, 1}, keep); }, {x});
    CHECK_GRAD([keep](const Inputs& in) { return max(in[0], {1}, keep); }, {x});
    CHECK_GRAD([keep](const Inputs& in) { return max(in[0], {0, 2}, keep); }, {x});
  }
  CHECK_GRAD([](const Inputs& in) { return sum(in[0]); }, {x});
  CHECK_GRAD([](const Inputs& in) { return mean(in[0]); }, {x});
  Tensor one = randn64({1, 1}, 4);
  CHECK_GRAD([](const Inputs& in) { return max(in[0], {0}); }, {one});
}

BOOST_AUTO_TEST_CASE(max_splits_the_gradient_between_ties) {
  Tensor x = from_vector({2, 5, 5, 1}, {4});
  x.set_requires_grad();
  Tape tape;
  TapeGuard recording(tape);
  max(x, {0}).backward();
  const auto& g = x.grad_data<float>();
  BOOST_TEST(g(0) == 0.0f);
  BOOST_TEST(g(1) == 0.5f);
  BOOST_TEST(g(2) == 0.5f);
}

// The first-order gradient of a mean is g / count, a division (as the kernel always did), not
// g * (1 / count): for g = 5 and count 3 the two differ in float32.  The same for max's ties.
BOOST_AUTO_TEST_CASE(mean_and_max_divide_the_gradient) {
  BOOST_TEST(5.0f / 3.0f != 5.0f * (1.0f / 3.0f));  // so the checks below can tell them apart
  Tensor x = from_vector({1, 2, 3, 4, 4, 4}, {2, 3});
  x.set_requires_grad();
  Tape tape;
  TapeGuard recording(tape);
  mean(x, {1}).backward(from_vector({5, 7}, {2}));
  max(x, {1}).backward(from_vector({0, 5}, {2}));  // row 1: a three-way tie
  const auto& g = x.grad_data<float>();
  BOOST_TEST(g(0, 0) == 5.0f / 3.0f);
  BOOST_TEST(g(0, 2) == 5.0f / 3.0f);  // + 0: row 0's maximum got g = 0
  BOOST_TEST(g(1, 1) == 7.0f / 3.0f + 5.0f / 3.0f);
}

// Forward mode through max: the tangent is the mean of the tangents of the tied maxima.
BOOST_AUTO_TEST_CASE(max_tangent_averages_the_ties) {
  const Tensor x = from_vector({2, 5, 5, 1}, {4}, Dtype::f64);
  const Tensor v = from_vector({1, 2, 4, 8}, {4}, Dtype::f64);
  const auto [y, dy] = jvp([](const Inputs& in) { return max(in[0], {0}); }, {x}, {v});
  BOOST_TEST(y.item() == 5.0);
  BOOST_TEST(dy.item() == 3.0);  // (2 + 4) / 2
}

// sum, mean and max differentiate again: order 2 in both modes.  The sin after each makes the
// gradient depend on x, so tangents run through the backward's ops too.
BOOST_AUTO_TEST_CASE(reductions_pass_second_order_checks_both_ways) {
  const Tensor x = randn64({2, 3, 4}, 3);
  const auto check = [&x](const std::string& name, const GradcheckFn& f) {
    auto r = gradcheck(f, {x}, {.order = 2, .modes = CheckModes::both});
    BOOST_CHECK_MESSAGE(r.ok, name << ": " << r.report);
    BOOST_CHECK_GT(r.checked, 0u);
  };
  check("sum", [](const Inputs& in) { return sin(sum(in[0])); });
  check("mean", [](const Inputs& in) { return sin(mean(in[0])); });
  for (bool keep : {false, true}) {
    const std::string k = keep ? " keepdim" : "";
    check("sum {1}" + k, [keep](const Inputs& in) { return sin(sum(in[0], {1}, keep)); });
    check("sum {0, -1}" + k, [keep](const Inputs& in) { return sin(sum(in[0], {0, -1}, keep)); });
    check("mean {2}" + k, [keep](const Inputs& in) { return sin(mean(in[0], {2}, keep)); });
    check("mean {0, 1}" + k, [keep](const Inputs& in) { return sin(mean(in[0], {0, 1}, keep)); });
    check("max {1}" + k, [keep](const Inputs& in) { return sin(max(in[0], {1}, keep)); });
    check("max {0, 2}" + k, [keep](const Inputs& in) { return sin(max(in[0], {0, 2}, keep)); });
  }
}

BOOST_AUTO_TEST_CASE(bad_axes_are_reported) {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH(sum(x, {2}), "sum: axis 2 is out of range for a tensor of rank 2");
  CHECK_THROWS_WITH(mean(x, {0, -2}), "mean: an axis is given twice");
  CHECK_THROWS_WITH(mean(zeros({0, 3}), {0}), "mean: the reduced axes of (0, 3) hold no elements");
  CHECK_THROWS_WITH(max(zeros({0}), {0}), "max: the reduced axes");
}

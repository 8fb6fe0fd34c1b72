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

BOOST_AUTO_TEST_CASE(bad_axes_are_reported) {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH(sum(x, {2}), "sum: axis 2 is out of range for a tensor of rank 2");
  CHECK_THROWS_WITH(mean(x, {0, -2}), "mean: an axis is given twice");
  CHECK_THROWS_WITH(mean(zeros({0, 3}), {0}), "mean: the reduced axes of (0, 3) hold no elements");
  CHECK_THROWS_WITH(max(zeros({0}), {0}), "max: the reduced axes");
}

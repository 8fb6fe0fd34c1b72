#define BOOST_TEST_MODULE mlp_learns
#include <cmath>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;

// An Mlp trained with Adam learns y = sin(3 x0) cos(2 x1), a non-linear function of two inputs.
BOOST_AUTO_TEST_CASE(mlp_with_adam_fits_a_nonlinear_function) {
  Generator gen(11);
  Tensor x = rand_uniform({256, 2}, -1, 1, gen);
  const auto& xv = x.data<float>();
  Array<float> yv = Array<float>::from_shape({256, 1});
  for (std::size_t i = 0; i < 256; ++i) yv(i, 0) = std::sin(3 * xv(i, 0)) * std::cos(2 * xv(i, 1));
  Tensor y(yv);

  Mlp model({.widths = {2, 32, 32, 1}, .activation = Activation::tanh}, gen);
  Adam opt(model.named_parameters(), {.lr = 0.01});
  const auto [first, last] = testing::fit(opt, 600, [&] { return mse_loss(model(x), y); });
  BOOST_TEST_MESSAGE("loss " << first << " -> " << last);
  BOOST_TEST(first > 0.1);
  BOOST_TEST(last < 0.005);
}

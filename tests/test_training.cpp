#define BOOST_TEST_MODULE training
#include "testing.hpp"

using namespace tg;

// A 2-8-1 MLP with tanh, trained with plain SGD on XOR, must fit it.
BOOST_AUTO_TEST_CASE(mlp_learns_xor_with_sgd) {
  Generator gen(3);
  Tensor w1 = randn({2, 8}, gen) * 0.8, b1 = zeros({8});
  Tensor w2 = randn({8, 1}, gen) * 0.5, b2 = zeros({1});
  std::vector<Tensor> params = {w1, b1, w2, b2};
  for (Tensor& p : params) p.set_requires_grad();
  const Tensor x = from_vector({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  const Tensor y = from_vector({0, 1, 1, 0}, {4, 1});

  double first = 0, last = 0;
  Tape tape;
  for (int step = 0; step < 500; ++step) {
    tape.clear();
    TapeGuard recording(tape);
    Tensor h = tanh(matmul(x, w1) + b1);
    Tensor out = sigmoid(matmul(h, w2) + b2);
    Tensor loss = mean((out - y) * (out - y));
    loss.backward();
    if (step == 0) first = loss.item();
    last = loss.item();
    NoGradGuard no_grad;
    for (Tensor& p : params) {
      p.data<float>() -= 2.0f * p.grad_data<float>();
      p.zero_grad();
    }
  }
  BOOST_TEST_MESSAGE("XOR loss: " << first << " -> " << last);
  BOOST_TEST(first > 0.2);
  BOOST_TEST(last < 0.01);
}

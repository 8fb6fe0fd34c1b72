#define BOOST_TEST_MODULE gradcheck
#include "testing.hpp"

using namespace tg;

namespace {

// y = 3 x, with a backward that is wrong by `error` (relative) in element `bad` only.
Tensor triple_with_faulty_backward(const Tensor& x, std::size_t bad, double error) {
  Tensor y(Array<double>(x.data<double>() * 3.0));
  if (needs_grad(x))
    record("faulty_triple", y, {x}, 0, [bad, error](const AnyArray& g_out, Grads& g) {
      Array<double> g_x = std::get<Array<double>>(g_out) * 3.0;
      g_x.data()[bad] *= 1.0 + error;
      g.add(0, std::move(g_x));
    });
  return y;
}

}  // namespace

BOOST_AUTO_TEST_CASE(passes_a_correct_backward) {
  Tensor x = testing::randn64({3, 4}, 1);
  auto r = gradcheck(
      [](const std::vector<Tensor>& in) { return triple_with_faulty_backward(in[0], 5, 0.0); },
      {x});
  BOOST_CHECK_MESSAGE(r.ok, r.report);
  BOOST_TEST(r.checked == 12u);
}

BOOST_AUTO_TEST_CASE(fails_on_a_backward_wrong_by_one_percent_in_one_element) {
  Tensor x = testing::randn64({3, 4}, 1);
  auto r = gradcheck(
      [](const std::vector<Tensor>& in) { return triple_with_faulty_backward(in[0], 5, 0.01); },
      {x});
  BOOST_TEST_MESSAGE(r.report);
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.input == 0u);
  BOOST_TEST(r.index == (Shape{1, 1}));  // flat element 5 of a (3, 4)
  BOOST_TEST(r.rel_error == 0.01, boost::test_tools::tolerance(1e-4));
  BOOST_TEST(testing::contains(r.report, "FAILED"));
}

BOOST_AUTO_TEST_CASE(restores_inputs_and_their_gradients) {
  Tensor x = testing::randn64({2}, 3);
  const Array<double> before = x.data<double>();
  auto r = gradcheck([](const std::vector<Tensor>& in) { return tg::exp(in[0]); }, {x});
  BOOST_CHECK_MESSAGE(r.ok, r.report);
  BOOST_TEST(x.data<double>() == before);
  BOOST_TEST(!x.has_grad());
}

BOOST_AUTO_TEST_CASE(refuses_float32_and_inputs_without_grad) {
  Tensor x = ones({2});
  x.set_requires_grad();
  auto f = [](const std::vector<Tensor>& in) { return tg::exp(in[0]); };
  CHECK_THROWS_WITH(gradcheck(f, {x}), "finite differences need float64");
  CHECK_THROWS_WITH(gradcheck(f, {ones({2}, Dtype::f64)}), "no input requires grad");
}

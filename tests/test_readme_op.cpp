// The "How to add an op" example of docs/ops.md, compiled and checked as written there.
#define BOOST_TEST_MODULE readme_op
#include "testing.hpp"

// softplus: y = log(1 + e^x) = max(x, 0) + log1p(e^-|x|)  (stable: e^-|x| <= 1)
//           dy/dx = 1 / (1 + e^-x) = sigmoid(x)                         (saves x)
//           vjp: g_x = g_y sigmoid(x);  jvp: dy = sigmoid(x) dx
tg::Tensor softplus(const tg::Tensor& x) {
  tg::Tensor y = tg::dispatch(x.dtype(), [&]<class T>() {  // T = float or double
    const tg::Array<T>& v = x.data<T>();
    return tg::Tensor(tg::Array<T>(xt::maximum(v, T(0)) + xt::log1p(xt::exp(-xt::abs(v)))));
  });
  if (tg::needs_grad(x))
    tg::record(
        "softplus", y, {x}, tg::saved_bytes(x),
        [x](const tg::Tensor& g_y, tg::Grads& g) { g.add(0, g_y * tg::sigmoid(x)); },
        [x](const tg::Tangents& t) { return tg::sigmoid(x) * t[0]; });
  return y;
}

BOOST_AUTO_TEST_CASE(softplus_from_the_docs_gradchecks) {
  tg::Tensor x64 = testing::randn64({3, 4}, 1);
  auto r = tg::gradcheck([](const std::vector<tg::Tensor>& in) { return softplus(in[0]); },
                         {x64},  // a float64 leaf with requires_grad
                         {.order = 2, .modes = tg::CheckModes::both});
  BOOST_CHECK_MESSAGE(r.ok, r.report);
  BOOST_TEST(softplus(tg::scalar(0.0)).item() == std::log(2.0), boost::test_tools::tolerance(1e-6));
}

// The stable form: no overflow where log1p(exp(x)) would give inf, no loss of the small values.
BOOST_AUTO_TEST_CASE(softplus_is_finite_for_large_inputs) {
  BOOST_TEST(softplus(tg::scalar(1000.0)).item() == 1000.0);
  BOOST_TEST(softplus(tg::scalar(100.0, tg::Dtype::f32)).item() == 100.0);
  BOOST_TEST(softplus(tg::scalar(-1000.0)).item() == 0.0);
  BOOST_TEST(softplus(tg::scalar(-30.0, tg::Dtype::f64)).item() == std::exp(-30.0),
             boost::test_tools::tolerance(1e-12));
  tg::Tensor x = tg::scalar(1000.0, tg::Dtype::f64).set_requires_grad();
  tg::Tape tape;
  {
    tg::TapeGuard recording(tape);
    softplus(x).backward();
  }
  BOOST_TEST(x.grad_data<double>()() == 1.0);  // sigmoid(1000)
}

// docs/ops.md shows the softplus above word for word.
BOOST_AUTO_TEST_CASE(docs_show_this_code) {
  const std::string docs = testing::read_file(TAPEGRAD_SOURCE_DIR "/docs/ops.md");
  const std::string test = testing::read_file(TAPEGRAD_SOURCE_DIR "/tests/test_readme_op.cpp");
  const auto begin = test.find("// softplus: y =");
  const std::string code = test.substr(begin, test.find("\nBOOST_AUTO_TEST_CASE") - begin);
  BOOST_TEST(!docs.empty());
  BOOST_TEST(code.size() > 200u);
  BOOST_TEST(testing::contains(docs, code));
}

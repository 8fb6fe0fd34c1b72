// The "How to add an op" example of the README, compiled and checked as written there.
#define BOOST_TEST_MODULE readme_op
#include "testing.hpp"

// softplus: y = log(1 + e^x);  dy/dx = 1 / (1 + e^-x) = sigmoid(x)   (saves x)
tg::Tensor softplus(const tg::Tensor& x) {
  tg::Tensor y = tg::dispatch(x.dtype(), [&]<class T>() {        // T = float or double
    const tg::Array<T>& v = x.data<T>();
    return tg::Tensor(tg::Array<T>(xt::log1p(xt::exp(v))));
  });
  if (tg::needs_grad(x))
    tg::record("softplus", y, {x}, tg::saved_bytes(x),
               [x]<class T>(const tg::Array<T>& g_y, tg::Grads& g) {
                 g.add(0, tg::Array<T>(g_y / (T(1) + xt::exp(-x.data<T>()))));
               });
  return y;
}

BOOST_AUTO_TEST_CASE(softplus_from_the_readme_gradchecks) {
  tg::Tensor x64 = testing::randn64({3, 4}, 1);
  auto r = tg::gradcheck([](const std::vector<tg::Tensor>& in) { return softplus(in[0]); },
                         {x64});   // a float64 leaf with requires_grad
  BOOST_CHECK_MESSAGE(r.ok, r.report);
  BOOST_TEST(softplus(tg::scalar(0.0)).item() == std::log(2.0), boost::test_tools::tolerance(1e-6));
}

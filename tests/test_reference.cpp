// The fused kernels against their plain loops (autograd/reference.hpp), forward and backward:
// in float64 to rounding, in float32 (where the fused ops use their own exp and erf) to float
// rounding.
#define BOOST_TEST_MODULE reference
#include "autograd/reference.hpp"
#include "testing.hpp"

using namespace tg;

namespace {

// The largest |a - b| / (1 + |b|) over the elements.
double worst(const Array<double>& a, const Array<double>& b) {
  BOOST_REQUIRE(a.shape() == b.shape());
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    w = std::max(w, std::abs(a.data()[i] - b.data()[i]) / (1 + std::abs(b.data()[i])));
  return w;
}

Array<double> values(const Tensor& t) { return t.to(Dtype::f64).data<double>(); }

Array<double> grad(const Tensor& t) {
  if (t.dtype() == Dtype::f64) return t.grad_data<double>();
  return xt::cast<double>(t.grad_data<float>());
}

Array<double> random(const Shape& shape, std::uint64_t seed, double scale = 1) {
  Generator gen(seed);
  return randn(shape, gen, Dtype::f64).data<double>() * scale;
}

Tensor leaf(const Array<double>& a, Dtype dtype) {
  Tensor t = Tensor(a).to(dtype);
  t.set_requires_grad();
  return t;
}

// y = f() on a tape, then backward with the output gradient g_y (the gradient of
// sum(y * g_y)); returns y's values.  The inputs' gradients are left in their leaves.
template <class F>
Array<double> forward_backward(F f, const Array<double>& g_y) {
  Tape tape;
  TapeGuard recording(tape);
  const Tensor y = f();
  sum(y * Tensor(g_y).to(y.dtype())).backward();
  return values(y);
}

double tolerance(Dtype dtype) { return dtype == Dtype::f64 ? 1e-12 : 3e-5; }

const Dtype kDtypes[] = {Dtype::f64, Dtype::f32};

}  // namespace

BOOST_AUTO_TEST_CASE(layer_norm_matches_its_loop) {
  const Array<double> x = random({5, 7}, 1, 3.0), g_y = random({5, 7}, 2);
  const Array<double> gamma = random({7}, 3), beta = random({7}, 4);
  const auto ref_y = reference::layer_norm(x, gamma, beta, 1e-5);
  const auto ref_g = reference::layer_norm_backward(x, gamma, 1e-5, g_y);
  for (Dtype dtype : kDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(dtype)) {
      Tensor xt = leaf(x, dtype), gm = leaf(gamma, dtype), bt = leaf(beta, dtype);
      const Array<double> y = forward_backward([&] { return layer_norm(xt, gm, bt); }, g_y);
      BOOST_TEST(worst(y, ref_y) < tolerance(dtype));
      BOOST_TEST(worst(grad(xt), ref_g.x) < tolerance(dtype));
      BOOST_TEST(worst(grad(gm), ref_g.gamma) < tolerance(dtype));
      BOOST_TEST(worst(grad(bt), ref_g.beta) < tolerance(dtype));
    }
  }
}

BOOST_AUTO_TEST_CASE(cross_entropy_matches_its_loop) {
  const Array<double> z = random({6, 5}, 5, 2.0);
  const std::vector<std::int64_t> targets = {0, 4, -100, 2, 1, 3};
  Ids ids = Ids::from_shape({6});
  std::copy(targets.begin(), targets.end(), ids.begin());
  for (double e : {0.0, 0.1}) {
    const CrossEntropyOptions o{.label_smoothing = e};
    const double ref = reference::cross_entropy(z, targets, o);
    const Array<double> ref_g = reference::cross_entropy_backward(z, targets, o);
    for (Dtype dtype : kDtypes) {
      BOOST_TEST_CONTEXT(dtype_name(dtype) << ", label smoothing " << e) {
        Tensor logits = leaf(z, dtype);
        Tape tape;
        double loss = 0;
        {
          TapeGuard recording(tape);
          Tensor l = cross_entropy(logits, ids, o);
          loss = l.item();
          l.backward();
        }
        BOOST_TEST(std::abs(loss - ref) / (1 + ref) < tolerance(dtype));
        BOOST_TEST(worst(grad(logits), ref_g) < tolerance(dtype));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(masked_softmax_matches_its_loop) {
  const Array<double> x = random({4, 6}, 6, 3.0), g_y = random({4, 6}, 7);
  std::vector<std::vector<bool>> allowed(4, std::vector<bool>(6, true));
  allowed[0][5] = allowed[0][2] = false;
  allowed[2] = std::vector<bool>(6, false);  // a row with nothing allowed: zeros, zero gradient
  allowed[3][0] = false;
  Mask mask = Mask::from_shape({4, 6});
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t j = 0; j < 6; ++j) mask(r, j) = allowed[r][j];
  const Array<double> ref_y = reference::masked_softmax(x, allowed);
  const Array<double> ref_g = reference::masked_softmax_backward(ref_y, g_y);
  for (Dtype dtype : kDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(dtype)) {
      Tensor xt = leaf(x, dtype);
      const Array<double> y = forward_backward([&] { return masked_softmax(xt, mask); }, g_y);
      BOOST_TEST(worst(y, ref_y) < tolerance(dtype));
      BOOST_TEST(worst(grad(xt), ref_g) < tolerance(dtype));
    }
  }
}

BOOST_AUTO_TEST_CASE(gelu_matches_its_loop) {
  Array<double> x = random({64}, 8, 3.0);
  x(0) = 0, x(1) = -12, x(2) = 12, x(3) = -0.5;  // the tails and the middle
  const Array<double> g_y = random({64}, 9);
  for (GeluForm form : {GeluForm::exact, GeluForm::tanh}) {
    const Array<double> ref_y = reference::gelu(x, form),
                        ref_g = reference::gelu_backward(x, g_y, form);
    for (Dtype dtype : kDtypes) {
      BOOST_TEST_CONTEXT(dtype_name(dtype) << (form == GeluForm::exact ? ", exact" : ", tanh")) {
        Tensor xt = leaf(x, dtype);
        const Array<double> y = forward_backward([&] { return gelu(xt, form); }, g_y);
        BOOST_TEST(worst(y, ref_y) < tolerance(dtype));
        BOOST_TEST(worst(grad(xt), ref_g) < tolerance(dtype));
      }
    }
  }
}

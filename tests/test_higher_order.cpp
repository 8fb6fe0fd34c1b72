// Higher-order derivatives: tg::grad with create_graph, forward mode (tg::jvp), hvp, Jacobians
// and Hessians, against values known by hand and from SciPy's documentation.
#define BOOST_TEST_MODULE higher_order
#include "testing.hpp"

using namespace tg;

// d/dx x^3 = 3 x^2 = 12 and d2/dx2 x^3 = 6 x = 12 at x = 2, every way round.
BOOST_AUTO_TEST_CASE(second_derivative_of_x_cubed_at_2_is_12) {
  const auto cube = [](const std::vector<Tensor>& in) { return in[0] * in[0] * in[0]; };
  Tensor x = scalar(2.0, Dtype::f64).set_requires_grad();
  {  // reverse over reverse
    Tape tape;
    TapeGuard recording(tape);
    Tensor y = cube({x});
    Tensor g = grad(y, x, {.create_graph = true});
    BOOST_TEST(g.item() == 12.0);
    BOOST_TEST(g.requires_grad());
    BOOST_TEST(grad(g, x).item() == 12.0);
  }
  // forward over forward
  const auto slope = [&](const std::vector<Tensor>& in) {
    return jvp(cube, in, {scalar(1.0, Dtype::f64)}).second;
  };
  BOOST_TEST(jvp(slope, {x}, {scalar(1.0, Dtype::f64)}).second.item() == 12.0);
  // forward over reverse, and the Hessian
  BOOST_TEST(hvp(cube, x, scalar(1.0, Dtype::f64)).item() == 12.0);
  BOOST_TEST(hessian(cube, x).item() == 12.0);
  BOOST_TEST(!x.has_grad());  // tg::grad leaves grad() alone
}

// The third derivative too: d3/dx3 sin x = -cos x.
BOOST_AUTO_TEST_CASE(third_derivative_of_sin) {
  Tensor x = scalar(0.7, Dtype::f64).set_requires_grad();
  Tape tape;
  TapeGuard recording(tape);
  Tensor g1 = grad(sin(x), x, {.create_graph = true});
  Tensor g2 = grad(g1, x, {.create_graph = true});
  Tensor g3 = grad(g2, x);
  BOOST_TEST(g1.item() == std::cos(0.7), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(g2.item() == -std::sin(0.7), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(g3.item() == -std::cos(0.7), boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(elementwise_ops_pass_second_order_checks_both_ways) {
  Tensor a = testing::randn64({3, 4}, 1), b = testing::randn64({4}, 2);
  Tensor pos =
      Tensor(Array<double>(xt::abs(testing::randn64({3, 4}, 3).data<double>()) + 0.5), true);
  const GradcheckOptions both{.order = 2, .modes = CheckModes::both};
  const std::vector<std::pair<const char*, GradcheckFn>> cases = {
      {"add", [](const std::vector<Tensor>& in) { return in[0] + in[1]; }},
      {"sub", [](const std::vector<Tensor>& in) { return in[0] - in[1]; }},
      {"mul", [](const std::vector<Tensor>& in) { return in[0] * in[1]; }},
      {"div", [](const std::vector<Tensor>& in) { return in[0] / (in[1] * in[1] + 1.0); }},
      {"tanh", [](const std::vector<Tensor>& in) { return tanh(in[0]) * in[1]; }},
      {"gelu",
       [](const std::vector<Tensor>& in) { return gelu(in[0]) + gelu(in[1], GeluForm::tanh); }},
  };
  for (const auto& [name, f] : cases) {
    auto r = gradcheck(f, {a, b}, both);
    BOOST_CHECK_MESSAGE(r.ok, name << ": " << r.report);
  }
  auto r = gradcheck(
      [](const std::vector<Tensor>& in) {
        return log(in[0]) * sqrt(in[0]) + exp(in[0]) * sigmoid(in[0]) + pow(in[0], in[0]) +
               pow(in[0], 2.5) + sin(in[0]) * cos(in[0]) + abs(in[0]) + relu(in[0] - 1.0);
      },
      {pos}, both);
  BOOST_CHECK_MESSAGE(r.ok, r.report);
}

namespace {

// y = x^3 with a first derivative that is right in value but wrong as a function: its vjp
// and jvp use 3 x x0^... with x0 a constant copy of x, so the second derivative comes out as
// 3 x (half the true 6 x).
Tensor cube_with_wrong_curvature(const Tensor& x) {
  Tensor y = x * x * x;
  Tensor out = y.detach();
  if (needs_grad(x)) {
    const Tensor x0 = x.detach();
    record(
        "wrong_cube", out, {x}, 0,
        [x, x0](const Tensor& g_y, Grads& g) { g.add(0, g_y * x * x0 * 3.0); },
        [x, x0](const Tangents& t) { return t[0] * x * x0 * 3.0; });
  }
  return out;
}

}  // namespace

// A wrong second derivative is caught, in each of the four order-2 checks, while the first
// order passes.
BOOST_AUTO_TEST_CASE(a_wrong_second_derivative_is_caught) {
  Tensor x = testing::randn64({5}, 7);
  const GradcheckFn f = [](const std::vector<Tensor>& in) {
    return cube_with_wrong_curvature(in[0]);
  };
  auto first = gradcheck(f, {x}, {.modes = CheckModes::both});
  BOOST_CHECK_MESSAGE(first.ok, first.report);
  auto second = gradcheck(f, {x}, {.order = 2, .modes = CheckModes::both});
  BOOST_TEST(!second.ok);
  for (const char* check :
       {"reverse of reverse", "forward of reverse", "reverse of forward", "forward of forward"})
    BOOST_TEST(testing::contains(second.report, std::string("FAILED (") + check + ")"),
               check << " in:\n"
                     << second.report);
  BOOST_TEST(!gradgradcheck(f, {x}).ok);
}

namespace {

// Rosenbrock's function in n dimensions: sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2.
Tensor rosenbrock(const Tensor& x) {
  const Tensor head = slice(x, 0, 0, -1),
               tail = slice(x, 0, 1, static_cast<std::int64_t>(x.numel()));
  const Tensor step = tail - head * head;
  return sum(step * step * 100.0 + (1.0 - head) * (1.0 - head));
}

Tensor steps_of(double h, std::size_t n) {
  Tensor t = arange(n, Dtype::f64);
  return t * h;
}

}  // namespace

// SciPy's rosen_hess_prod example: x = 0.1 (0..8), p = 0.5 (0..8).
BOOST_AUTO_TEST_CASE(rosenbrock_hessian_vector_product_matches_scipy) {
  const std::vector<double> expected = {0, 27, -10, -95, -192, -265, -278, -195, -180};
  const Tensor x = steps_of(0.1, 9), p = steps_of(0.5, 9);
  const Function f = [](const std::vector<Tensor>& in) { return rosenbrock(in[0]); };
  const Tensor forward_over_reverse = hvp(f, x, p);
  const Tensor full = matmul(reshape(hessian(f, x), {9, 9}), reshape(p, {9, 1}));
  Tensor leaf = x.detach().set_requires_grad();
  Tape tape;
  TapeGuard recording(tape);
  const Tensor g = grad(rosenbrock(leaf), leaf, {.create_graph = true});
  const Tensor reverse_over_reverse = grad(sum(g * p), leaf);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    BOOST_TEST(forward_over_reverse.data<double>()(i) == expected[i],
               boost::test_tools::tolerance(1e-12));
    BOOST_TEST(full.data<double>()(i, 0) == expected[i], boost::test_tools::tolerance(1e-12));
    BOOST_TEST(reverse_over_reverse.data<double>()(i) == expected[i],
               boost::test_tools::tolerance(1e-12));
  }
}

// hvp of sum(tanh(X)^2), X of 30 x 40, equals the full Hessian (1200 x 1200, built column by
// column) times V; that Hessian is diagonal, 2 (1 - t^2)(1 - 3 t^2) with t = tanh x.
BOOST_AUTO_TEST_CASE(hvp_equals_the_full_hessian_times_v) {
  const Tensor x = testing::randn64({30, 40}, 11).detach(),
               v = testing::randn64({30, 40}, 12).detach();
  const Function f = [](const std::vector<Tensor>& in) {
    const Tensor t = tanh(in[0]);
    return sum(t * t);
  };
  const Tensor hv = hvp(f, x, v);
  const Tensor h = reshape(hessian(f, x), {1200, 1200});
  const Tensor hv_full = reshape(matmul(h, reshape(v, {1200, 1})), {30, 40});
  const Array<double> t = xt::tanh(x.data<double>());
  const Array<double> diagonal = 2.0 * (1.0 - t * t) * (1.0 - 3.0 * t * t);
  double worst = 0, off_diagonal = 0;
  for (std::size_t i = 0; i < 1200; ++i) {
    worst =
        std::max(worst, std::abs(hv.data<double>().data()[i] - hv_full.data<double>().data()[i]));
    worst = std::max(worst, std::abs(hv.data<double>().data()[i] -
                                     diagonal.data()[i] * v.data<double>().data()[i]));
    for (std::size_t j = 0; j < 1200; ++j)
      if (j != i) off_diagonal = std::max(off_diagonal, std::abs(h.data<double>()(i, j)));
  }
  BOOST_TEST(worst < 1e-12);
  BOOST_TEST(off_diagonal == 0.0);
}

// Jacobians by forward and by reverse mode agree, for a map R^6 -> R^4.
BOOST_AUTO_TEST_CASE(jacobian_forward_and_reverse_agree) {
  const Tensor w = testing::randn64({6, 4}, 13).detach(), x = testing::randn64({2, 3}, 14).detach();
  const Function f = [&](const std::vector<Tensor>& in) {
    return tanh(matmul(reshape(in[0], {1, 6}), w)) * 2.0;
  };
  const Tensor jf = jacobian(f, x, JacobianMode::forward),
               jr = jacobian(f, x, JacobianMode::reverse);
  BOOST_TEST(jf.shape() == (Shape{1, 4, 2, 3}), boost::test_tools::per_element());
  BOOST_TEST(jr.shape() == jf.shape(), boost::test_tools::per_element());
  const Tensor y = f({x});
  for (std::size_t i = 0; i < jf.numel(); ++i) {
    BOOST_TEST(jf.data<double>().data()[i] == jr.data<double>().data()[i],
               boost::test_tools::tolerance(1e-13));
  }
  // One entry by hand: d y[0, c] / d x[r, k] = 2 (1 - tanh^2) w[3 r + k, c].
  const double t = y.data<double>()(0, 1) / 2.0;  // y = 2 tanh(.)
  BOOST_TEST(jf.data<double>()(0, 1, 1, 2) == 2.0 * (1.0 - t * t) * w.data<double>()(5, 1),
             boost::test_tools::tolerance(1e-13));
}

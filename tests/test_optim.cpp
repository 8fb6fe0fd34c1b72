#define BOOST_TEST_MODULE optim
#include <cmath>
#include <memory>
#include <vector>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
namespace tt = boost::test_tools;

namespace {

// One float64 parameter p = [1, -2] that gets gradient g on each step.
struct Fixture {
  Tensor p = from_vector({1.0, -2.0}, {2}, Dtype::f64);
  Fixture() { p.set_requires_grad(); }
  NamedTensors named() { return {{"p", p}}; }
  void give_grad(double g0, double g1) {
    p.zero_grad();
    p.backward(from_vector({g0, g1}, {2}, Dtype::f64));
  }
  double at(std::size_t i) { return p.data<double>()(i); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(sgd_with_momentum_and_weight_decay_by_hand) {
  Fixture f;
  Sgd opt(f.named(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  // Step 1: g' = g + wd p = 0.5 + 0.01 = 0.51; v = 0.51; p = 1 - 0.1 * 0.51 = 0.949
  f.give_grad(0.5, 0.0);
  opt.step();
  BOOST_TEST(f.at(0) == 0.949, tt::tolerance(1e-12));
  // Step 2: g' = 0.5 + 0.01 * 0.949 = 0.50949; v = 0.9 * 0.51 + 0.50949 = 0.96849;
  //         p = 0.949 - 0.1 * 0.96849 = 0.852151
  f.give_grad(0.5, 0.0);
  opt.step();
  BOOST_TEST(f.at(0) == 0.852151, tt::tolerance(1e-12));
  // The second element: g = 0, only decay: v1 = -0.02, p = -2 + 0.002 = -1.998; ...
  BOOST_TEST(f.at(1) == -1.998 - 0.1 * (0.9 * -0.02 + 0.01 * -1.998), tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(adam_with_bias_correction_by_hand) {
  Fixture f;
  Adam opt(f.named(), {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8});
  // Step 1, g = 2: m = 0.2, v = 0.004; m^ = 0.2 / 0.1 = 2, v^ = 0.004 / 0.001 = 4;
  //   p = 1 - 0.1 * 2 / (2 + 1e-8)
  f.give_grad(2.0, 0.0);
  opt.step();
  const double p1 = 1 - 0.1 * 2 / (2 + 1e-8);
  BOOST_TEST(f.at(0) == p1, tt::tolerance(1e-12));
  BOOST_TEST(f.at(1) == -2.0);  // g = 0 for ever: m = v = 0, no move
  // Step 2, g = -1: m = 0.18 - 0.1 = 0.08, v = 0.003996 + 0.001 = 0.004996;
  //   m^ = 0.08 / (1 - 0.81) , v^ = 0.004996 / (1 - 0.998001)
  f.give_grad(-1.0, 0.0);
  opt.step();
  const double m_hat = 0.08 / 0.19, v_hat = 0.004996 / (1 - 0.999 * 0.999);
  BOOST_TEST(f.at(0) == p1 - 0.1 * m_hat / (std::sqrt(v_hat) + 1e-8), tt::tolerance(1e-12));
  BOOST_TEST(opt.steps() == 2u);
  BOOST_TEST(std::string(opt.name()) == "adam");
}

BOOST_AUTO_TEST_CASE(adam_l2_and_adamw_decoupled_decay_by_hand) {
  {  // Adam: g' = g + wd p = 2 + 0.5 * 1 = 2.5; the first step moves by lr (sign), whatever g'
    Fixture f;
    Adam opt(f.named(), {.lr = 0.1, .weight_decay = 0.5});
    f.give_grad(2.0, 0.0);
    opt.step();
    BOOST_TEST(f.at(0) == 1 - 0.1 * 2.5 / (2.5 + 1e-8), tt::tolerance(1e-12));
    // element 1: g' = 0.5 * -2 = -1: moves up by lr
    BOOST_TEST(f.at(1) == -2 + 0.1 * 1 / (1 + 1e-8), tt::tolerance(1e-12));
  }
  {  // AdamW: p = p - lr wd p first, then the plain Adam step from g
    Fixture f;
    AdamW opt(f.named(), {.lr = 0.1, .weight_decay = 0.5});
    f.give_grad(2.0, 0.0);
    opt.step();
    BOOST_TEST(f.at(0) == (1 - 0.1 * 0.5) - 0.1 * 2 / (2 + 1e-8), tt::tolerance(1e-12));
    BOOST_TEST(f.at(1) == -2 * (1 - 0.1 * 0.5), tt::tolerance(1e-12));  // decays with no gradient
    BOOST_TEST(std::string(opt.name()) == "adamw");
  }
}

// GPT-2's habit: biases and layer norms (vectors) do not decay, matrices and tables do.  The
// rule goes by the parameter's dims, not its name.
BOOST_AUTO_TEST_CASE(adamw_can_leave_vectors_undecayed) {
  Tensor vector = from_vector({1.0, -2.0}, {2}, Dtype::f64);
  Tensor matrix = from_vector({1.0, -2.0}, {1, 2}, Dtype::f64);
  for (Tensor* p : {&vector, &matrix}) {
    p->set_requires_grad();
    p->backward(zeros({p->shape()}, Dtype::f64));  // a gradient of 0: only the decay moves it
  }
  AdamW opt({{"bias", vector}, {"weight", matrix}},
            {.lr = 0.1, .weight_decay = 0.5, .decay_vectors = false});
  opt.step();
  BOOST_TEST(vector.data<double>()(0) == 1.0);
  BOOST_TEST(vector.data<double>()(1) == -2.0);
  BOOST_TEST(matrix.data<double>()(0, 0) == 1 - 0.1 * 0.5, tt::tolerance(1e-12));
  BOOST_TEST(matrix.data<double>()(0, 1) == -2 * (1 - 0.1 * 0.5), tt::tolerance(1e-12));
}

// float32 steps run a loop compiled for the CPU's vector instructions (AVX-512, AVX2).  It must
// round as the plain loop below does, element by element, with no fused multiply-add: the same
// weights on any CPU.  1,003 elements: whole vectors of 16 and 8, and a tail.
BOOST_AUTO_TEST_CASE(float32_steps_round_as_the_plain_loop) {
  const std::size_t n = 1003;
  for (bool decoupled : {false, true}) {
    BOOST_TEST_CONTEXT((decoupled ? "AdamW" : "Adam")) {
      Generator gen(11);
      Tensor p = randn({n}, gen);
      p.set_requires_grad();
      const AdamOptions o{
          .lr = 0.01, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.1};
      std::unique_ptr<Optimizer> opt;
      if (decoupled) opt = std::make_unique<AdamW>(NamedTensors{{"p", p}}, o);
      else opt = std::make_unique<Adam>(NamedTensors{{"p", p}}, o);
      std::vector<float> w(p.data<float>().begin(), p.data<float>().end()), m(n, 0.0f), v(n, 0.0f);
      const float lr = 0.01f, wd = 0.1f, eps = 1e-6f, b1 = 0.9f, b2 = 0.99f;
      for (int t = 1; t <= 3; ++t) {
        const Tensor g = randn({n}, gen);
        p.zero_grad();
        p.backward(g);
        opt->step();
        const auto c1 = static_cast<float>(1 - std::pow(0.9, t)),
                   c2 = static_cast<float>(1 - std::pow(0.99, t));
        std::size_t differ = 0;
        for (std::size_t j = 0; j < n; ++j) {
          float gj = g.data<float>()(j);
          if (decoupled) w[j] -= lr * wd * w[j];
          else gj += wd * w[j];
          m[j] = b1 * m[j] + (1.0f - b1) * gj;
          v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
          w[j] -= lr * (m[j] / c1) / (std::sqrt(v[j] / c2) + eps);
          differ += w[j] != p.data<float>()(j);
        }
        BOOST_TEST(differ == 0u,
                   "step " << t << ": " << differ << " weights differ from the plain loop");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(parameters_without_gradient_are_left_alone) {
  Fixture f;
  Sgd opt(f.named(), {.lr = 0.1, .weight_decay = 0.5});
  opt.step();  // no gradient arrived
  BOOST_TEST(f.at(0) == 1.0);
}

BOOST_AUTO_TEST_CASE(clip_grad_norm_scales_the_global_norm) {
  Tensor a = from_vector({3, 0}, {2}, Dtype::f64).set_requires_grad();
  Tensor b = from_vector({4}, {1}, Dtype::f64).set_requires_grad();
  a.backward(from_vector({3, 0}, {2}, Dtype::f64));
  b.backward(from_vector({4}, {1}, Dtype::f64));
  BOOST_TEST(clip_grad_norm({a, b}, 10.0) == 5.0);  // under the limit: unchanged
  BOOST_TEST(a.grad_data<double>()(0) == 3.0);
  BOOST_TEST(clip_grad_norm({a, b}, 1.0) == 5.0);
  BOOST_TEST(a.grad_data<double>()(0) == 0.6, tt::tolerance(1e-6));
  BOOST_TEST(b.grad_data<double>()(0) == 0.8, tt::tolerance(1e-6));
  CHECK_THROWS_WITH(clip_grad_norm({a}, 0.0), "clip_grad_norm: max_norm must be > 0");
}

BOOST_AUTO_TEST_CASE(bad_hyperparameters_are_refused) {
  Fixture f;
  CHECK_THROWS_WITH(Sgd(f.named(), {.lr = -1}),
                    "the learning rate must be finite and >= 0, got -1");
  CHECK_THROWS_WITH(Sgd(f.named(), {.momentum = 1.0}), "Sgd: momentum must be in [0, 1)");
  CHECK_THROWS_WITH(Adam(f.named(), {.beta1 = 1.0}), "Adam: beta1 and beta2 must be in [0, 1)");
  Tensor not_param = ones({2});
  CHECK_THROWS_WITH(Sgd(NamedTensors{{"x", not_param}}, {}),
                    "parameter 'x' must be a defined leaf that requires grad");
}

BOOST_AUTO_TEST_CASE(schedules) {
  ConstantLr c(0.5);
  BOOST_TEST(c.lr(1) == 0.5);
  BOOST_TEST(c.lr(1000) == 0.5);
  WarmupInverseSqrt w(1.0, 100);
  BOOST_TEST(w.lr(1) == 0.01, tt::tolerance(1e-12));
  BOOST_TEST(w.lr(50) == 0.5, tt::tolerance(1e-12));
  BOOST_TEST(w.lr(100) == 1.0, tt::tolerance(1e-12));
  BOOST_TEST(w.lr(400) == 0.5, tt::tolerance(1e-12));
  // Vaswani et al.: d^-0.5 min(t^-0.5, t warmup^-1.5)
  auto v = WarmupInverseSqrt::vaswani(512, 4000);
  for (std::size_t t : {1u, 1000u, 4000u, 10000u})
    BOOST_TEST(
        v.lr(t) == std::pow(512.0, -0.5) * std::min(std::pow(t, -0.5), t * std::pow(4000.0, -1.5)),
        tt::tolerance(1e-12));
  WarmupCosine cos(1.0, 10, 110, 0.1);
  BOOST_TEST(cos.lr(5) == 0.5, tt::tolerance(1e-12));
  BOOST_TEST(cos.lr(10) == 1.0, tt::tolerance(1e-12));
  BOOST_TEST(cos.lr(60) == 0.55, tt::tolerance(1e-12));  // halfway down the cosine
  BOOST_TEST(cos.lr(110) == 0.1, tt::tolerance(1e-12));
  BOOST_TEST(cos.lr(500) == 0.1, tt::tolerance(1e-12));
  CHECK_THROWS_WITH(cos.lr(0), "steps count from 1");
  CHECK_THROWS_WITH(WarmupCosine(1.0, 10, 10), "total (10) must exceed warmup (10)");
}

BOOST_AUTO_TEST_CASE(parameter_average_by_hand) {
  Fixture f;
  ParameterAverage avg(f.named(), 0.5);
  // Steps 1, 2: d = min(0.5, (1 + t) / (10 + t)) = 2/11, then 3/12 = 0.25.
  f.p.data<double>() = Array<double>({3.0, 0.0});
  avg.update();
  const double a1 = 2.0 / 11 * 1.0 + 9.0 / 11 * 3.0;  // started at the initial value 1
  f.p.data<double>() = Array<double>({5.0, 0.0});
  avg.update();
  const double a2 = 0.25 * a1 + 0.75 * 5.0;
  BOOST_TEST(avg.steps() == 2u);
  avg.swap();
  BOOST_TEST(f.at(0) == a2, tt::tolerance(1e-12));
  avg.swap();
  BOOST_TEST(f.at(0) == 5.0);
  // Later steps use the decay itself: d = min(0.5, 12/21) = 0.5 at t = 11.
  double a = a2;
  for (int t = 3; t <= 11; ++t) {
    avg.update();
    const double d = std::min(0.5, (1.0 + t) / (10.0 + t));
    a = d * a + (1 - d) * 5.0;
  }
  avg.swap();
  BOOST_TEST(f.at(0) == a, tt::tolerance(1e-12));  // still remembers the old values
  BOOST_TEST(a != 5.0);
  avg.swap();
  for (int t = 12; t <= 80; ++t) avg.update();
  avg.swap();
  BOOST_TEST(f.at(0) == 5.0, tt::tolerance(1e-12));  // 0.5^69 of the old values is left: none
}

BOOST_AUTO_TEST_CASE(parameter_average_state_round_trip_and_refusals) {
  Fixture f;
  ParameterAverage avg(f.named(), 0.9);
  f.p.data<double>() = Array<double>({2.0, 4.0});
  avg.update();
  const StateDict saved = avg.state();
  Fixture g;
  ParameterAverage other(g.named(), 0.9);
  other.load_state(saved);
  BOOST_TEST(other.steps() == 1u);
  other.swap();
  avg.swap();
  BOOST_TEST(g.at(0) == f.at(0));
  BOOST_TEST(g.at(1) == f.at(1));
  other.swap();

  StateDict wrong = saved;
  wrong["p"] = Array<double>({1.0, 2.0, 3.0});
  BOOST_CHECK_EXCEPTION(other.load_state(wrong), std::exception, [](const std::exception& e) {
    return std::string(e.what()).find("'p' is (3) float64, expected (2) float64") !=
           std::string::npos;
  });
  wrong = saved;
  wrong.erase("steps");
  BOOST_CHECK_THROW(other.load_state(wrong), std::exception);
  wrong = saved;
  wrong["q"] = Array<double>({1.0});
  BOOST_CHECK_THROW(other.load_state(wrong), std::exception);
  ParameterAverage faster(g.named(), 0.5);
  BOOST_CHECK_EXCEPTION(faster.load_state(saved), std::exception, [](const std::exception& e) {
    return std::string(e.what()).find(
               "kept with decay 0.900000, this average's decay is 0.500000") != std::string::npos;
  });
  // A refused state changes nothing: the same step count and the same averages as before.
  BOOST_TEST(other.steps() == 1u);
  other.swap();
  BOOST_TEST(g.at(0) == f.at(0));
  BOOST_TEST(g.at(1) == f.at(1));
  other.swap();
  BOOST_CHECK_THROW(ParameterAverage(f.named(), 1.0), std::exception);
}

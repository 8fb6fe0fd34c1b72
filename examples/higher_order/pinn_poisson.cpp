// A physics-informed network (Raissi et al. 2019): solve u''(x) = -pi^2 sin(pi x) on [0, 1] with
// u(0) = u(1) = 0, whose solution is sin(pi x), by training a network on the equation alone.
//
//   u(x) = x (1 - x) N(x),  N: 1 -> 32 -> 32 -> 1 with tanh  (the boundary values hold exactly)
//   loss = mean over 64 points x_i of (u''(x_i) + pi^2 sin(pi x_i))^2
//
// u'' is forward mode over forward mode (tg::jvp of tg::jvp along dx = 1), and the loss is
// trained by its gradient in the weights: reverse mode over both, so the weights' gradient is
// a third derivative.  The run prints the largest error against sin(pi x) on 1001 points.
//
//   build/examples/pinn_poisson [--steps 4000] [--seed 1]
#include <cmath>
#include <cstdio>
#include <numbers>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

using namespace tg;

namespace {

struct Net {
  std::vector<Tensor> p;  // W1 (1, 32), b1, W2 (32, 32), b2, W3 (32, 1), b3

  explicit Net(std::uint64_t seed) {
    Generator gen(seed);
    const auto layer = [&](std::size_t in, std::size_t out) {
      p.push_back((randn({in, out}, gen, Dtype::f64) * std::sqrt(1.0 / in)).set_requires_grad());
      p.push_back(zeros({out}, Dtype::f64).set_requires_grad());
    };
    layer(1, 32);
    layer(32, 32);
    layer(32, 1);
  }

  // x: (N, 1) -> u: (N, 1)
  Tensor u(const Tensor& x) const {
    const Tensor h1 = tanh(linear(x, p[0], p[1]));
    const Tensor h2 = tanh(linear(h1, p[2], p[3]));
    return x * (1.0 - x) * linear(h2, p[4], p[5]);
  }

  // u'' at each point: each row of x is its own input, so a tangent of ones gives every
  // point's derivative in one pass.
  Tensor u_xx(const Tensor& x) const {
    const Tensor along = ones(x.shape(), Dtype::f64);
    const Function u_x = [&](const std::vector<Tensor>& in) {
      return jvp([&](const std::vector<Tensor>& y) { return u(y[0]); }, in, {along}).second;
    };
    return jvp(u_x, {x}, {along}).second;
  }
};

Tensor grid(std::size_t n, double from, double step) {
  Tensor x = arange(n, Dtype::f64) * step + from;
  return reshape(x, {static_cast<std::int64_t>(n), 1});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("pinn_poisson: a network that solves u'' = -pi^2 sin(pi x) from the equation alone");
  std::size_t steps = 4000;
  std::uint64_t seed = 1;
  app.add_option("--steps", steps, "Adam steps")->capture_default_str();
  app.add_option("--seed", seed, "initial weights")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  constexpr double pi = std::numbers::pi;
  Net net(seed);
  nn::NamedTensors named;
  for (std::size_t i = 0; i < net.p.size(); ++i) named.emplace_back(std::to_string(i), net.p[i]);
  nn::Adam adam(named, {.lr = 3e-3});
  const Tensor x = grid(64, 0.5 / 64, 1.0 / 64);  // the midpoints of 64 cells
  const Tensor source = sin(x * pi) * (pi * pi);
  for (std::size_t step = 1; step <= steps; ++step) {
    adam.set_lr(1e-5 + 0.5 * (3e-3 - 1e-5) * (1 + std::cos(pi * double(step) / double(steps))));
    Tape tape;
    TapeGuard recording(tape);
    const Tensor residual = net.u_xx(x) + source;
    const Tensor loss = mean(residual * residual);
    loss.backward();
    adam.step();
    adam.zero_grad();
    if (step % 500 == 0 || step == 1) std::printf("step %5zu  loss %.3e\n", step, loss.item());
  }
  NoGradGuard no_grad;
  const Tensor fine = grid(1001, 0.0, 1e-3);
  const Tensor error = abs(net.u(fine) - sin(fine * pi));
  std::printf("max |u - sin(pi x)| on 1001 points of [0, 1]: %.2e\n",
              xt::amax(error.data<double>())());
  return 0;
}

// Newton's method with the exact Hessian (tg::hessian: forward mode over the gradient) against
// gradient descent, on Rosenbrock's function f(x) = sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2
// from the classic start (-1.2, 1, -1.2, 1, ...).  Both take the step that a backtracking line
// search accepts (Armijo); the run stops when f <= 1e-10.
//
//   build/examples/newton_rosenbrock [--dims 2] [--max-iterations 200000]
#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <xtensor-blas/xlinalg.hpp>

#include "tapegrad.hpp"

using namespace tg;

namespace {

Tensor rosenbrock(const Tensor& x) {
  const auto n = static_cast<std::int64_t>(x.numel());
  const Tensor head = slice(x, 0, 0, n - 1), tail = slice(x, 0, 1, n);
  const Tensor step = tail - head * head;
  return sum(step * step * 100.0 + (1.0 - head) * (1.0 - head));
}

const Function f = [](const std::vector<Tensor>& in) { return rosenbrock(in[0]); };

double value(const Array<double>& x) {
  NoGradGuard no_grad;
  return rosenbrock(Tensor(x)).item();
}

Array<double> gradient(const Array<double>& x) {
  return vjp(f, {Tensor(x)}).grads[0].data<double>();
}

// Moves along d from x, halving the step until f drops by at least 1e-4 of the slope (Armijo).
Array<double> line_search(const Array<double>& x, const Array<double>& g, const Array<double>& d) {
  const double f0 = value(x), slope = xt::sum(g * d)();
  double t = 1.0;
  while (t > 1e-20) {
    Array<double> next = x + t * d;
    if (value(next) <= f0 + 1e-4 * t * slope) return next;
    t *= 0.5;
  }
  return x;
}

// Iterations until f <= 1e-10 (or the cap), with the search direction given by `direction`.
template <class Direction>
std::size_t minimise(const char* name, std::size_t dims, std::size_t cap, Direction direction) {
  Array<double> x = xt::zeros<double>({dims});
  for (std::size_t i = 0; i < dims; ++i) x(i) = i % 2 == 0 ? -1.2 : 1.0;
  std::size_t it = 0;
  while (value(x) > 1e-10 && it < cap) {
    const Array<double> g = gradient(x);
    x = line_search(x, g, direction(x, g));
    ++it;
  }
  std::printf("%-18s %8zu iterations%s, f = %.3g at x[0] = %.12f\n", name, it,
              value(x) > 1e-10 ? " (stopped at the cap)" : "", value(x), x(0));
  return it;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "newton_rosenbrock: Newton's method with the exact Hessian against gradient descent");
  std::size_t dims = 2, cap = 200000;
  app.add_option("--dims", dims, "dimensions of Rosenbrock's function (>= 2)")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000));
  app.add_option("--max-iterations", cap, "give up after this many")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Newton: solve H d = -g, H from tg::hessian (one Hessian-vector product per dimension).
  // Where H is not positive definite along d, fall back to -g.
  minimise("Newton", dims, cap, [&](const Array<double>& x, const Array<double>& g) {
    const Array<double> h = reshape(hessian(f, Tensor(x)), {static_cast<std::int64_t>(dims),
                                                            static_cast<std::int64_t>(dims)})
                                .data<double>();
    Array<double> d = xt::linalg::solve(h, Array<double>(-g));
    return Array<double>(xt::sum(g * d)() < 0 ? d : Array<double>(-g));
  });
  minimise("gradient descent", dims, cap,
           [](const Array<double>&, const Array<double>& g) { return Array<double>(-g); });
  return 0;
}

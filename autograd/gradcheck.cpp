#include "gradcheck.hpp"

#include <cmath>
#include <cstdio>
#include <optional>

#include "runtime/generator.hpp"
#include "tape.hpp"

namespace tg {
namespace {

// L = sum(w * y), in double.
double weighted_sum(const Tensor& y, const Array<double>& w) {
  const Array<double>& v = y.data<double>();
  double total = 0;
  for (std::size_t i = 0; i < v.size(); ++i) total += w.data()[i] * v.data()[i];
  return total;
}

Shape unravel(std::size_t flat, const Shape& shape) {
  Shape index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return index;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  bool any = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) fail("gradcheck", "input " + std::to_string(i) + " is undefined");
    if (inputs[i].dtype() != Dtype::f64)
      fail("gradcheck", "input " + std::to_string(i) + " is " + dtype_name(inputs[i].dtype()) +
                            "; finite differences need float64 (use .to(Dtype::f64))");
    if (inputs[i].requires_grad() && !inputs[i].is_leaf())
      fail("gradcheck", "input " + std::to_string(i) + " is not a leaf; pass leaves");
    any = any || inputs[i].requires_grad();
  }
  if (!any) fail("gradcheck", "no input requires grad: nothing to check");

  // Keep the callers' gradients, and start from none.
  std::vector<std::optional<AnyArray>> kept;
  for (const Tensor& t : inputs) {
    kept.push_back(t.impl()->grad);
    t.impl()->grad.reset();
  }

  // Analytic gradients: backward from y with output gradient w.
  Array<double> w;
  {
    Tape tape;
    TapeGuard recording(tape);
    Tensor y = f(inputs);
    if (!y.defined() || y.dtype() != Dtype::f64)
      fail("gradcheck", "f must return a defined float64 tensor");
    Generator gen(opt.seed);
    w = randn(y.shape(), gen, Dtype::f64).data<double>();
    if (!y.requires_grad())
      fail("gradcheck", "f's output does not depend on any input that requires grad");
    y.backward(Tensor(w));
  }

  GradcheckResult r;
  double worst = -1;  // error / tolerance of the worst element so far
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    Tensor x = inputs[i];  // shares the caller's tensor
    Array<double>& v = x.data<double>();
    const Array<double> analytic =
        x.has_grad() ? x.grad_data<double>() : Array<double>(xt::zeros<double>(v.shape()));
    for (std::size_t j = 0; j < v.size(); ++j) {
      const double original = v.data()[j];
      v.data()[j] = original + opt.eps;
      const double plus = weighted_sum(f(inputs), w);
      v.data()[j] = original - opt.eps;
      const double minus = weighted_sum(f(inputs), w);
      v.data()[j] = original;
      const double numeric = (plus - minus) / (2 * opt.eps);
      const double a = analytic.data()[j];
      const double err = std::abs(a - numeric);
      const double tolerance = opt.atol + opt.rtol * std::abs(numeric);
      ++r.checked;
      if (!(err <= tolerance)) r.ok = false;  // NaN fails too
      const double ratio = std::isnan(err) ? INFINITY : err / tolerance;
      if (ratio > worst) {
        worst = ratio;
        r.input = i;
        r.index = unravel(j, v.shape());
        r.analytic = a;
        r.numeric = numeric;
        r.abs_error = err;
        r.rel_error = err / std::max(std::abs(numeric), 1e-300);
      }
    }
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i].impl()->grad = std::move(kept[i]);

  char line[512];
  std::snprintf(line, sizeof line,
                "gradcheck %s: %zu elements; worst is input %zu at %s: analytic %.9g, numeric "
                "%.9g, abs error %.3g, rel error %.3g (tolerance %.3g + %.3g * |numeric|)",
                r.ok ? "passed" : "FAILED", r.checked, r.input, shape_str(r.index).c_str(),
                r.analytic, r.numeric, r.abs_error, r.rel_error, opt.atol, opt.rtol);
  r.report = line;
  return r;
}

}  // namespace tg

#include "gradcheck.hpp"

#include <cmath>
#include <cstdio>
#include <optional>

#include "functional.hpp"
#include "ops.hpp"
#include "runtime/generator.hpp"
#include "tape.hpp"

namespace tg {
namespace {

// sum(w * y), in double.
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

Tensor checked_output(const GradcheckFn& f, const std::vector<Tensor>& inputs) {
  Tensor y = f(inputs);
  if (!y.defined() || y.dtype() != Dtype::f64)
    fail("gradcheck", "f must return a defined float64 tensor");
  return y;
}

// The running comparison: keeps the worst element of one check, then reports it.
struct Compare {
  GradcheckResult& r;
  const GradcheckOptions& opt;
  std::string check;
  double worst = -1;  // error / tolerance of the worst element so far
  bool ok = true;
  GradcheckResult mine;  // this check's worst element

  void add(double analytic, double numeric, std::size_t input, const Shape& index) {
    const double err = std::abs(analytic - numeric);
    const double tolerance = opt.atol + opt.rtol * std::abs(numeric);
    ++r.checked;
    if (!(err <= tolerance)) ok = false;  // NaN fails too
    const double ratio = std::isnan(err) ? INFINITY : err / tolerance;
    if (ratio <= worst) return;
    worst = ratio;
    mine.input = input;
    mine.index = index;
    mine.analytic = analytic;
    mine.numeric = numeric;
    mine.abs_error = err;
    mine.rel_error = err / std::max(std::abs(numeric), 1e-300);
  }

  // One report line; the result's fields name the first failing check's worst element (or,
  // while all pass, the last check's).
  void finish() {
    char line[512];
    std::snprintf(line, sizeof line,
                  "gradcheck %s (%s): worst is %s %zu at %s: analytic %.9g, numeric %.9g, abs "
                  "error %.3g, rel error %.3g (tolerance %.3g + %.3g * |numeric|)\n",
                  ok ? "passed" : "FAILED", check.c_str(),
                  check.starts_with("forward") ? "output element of input set" : "input",
                  mine.input, shape_str(mine.index).c_str(), mine.analytic, mine.numeric,
                  mine.abs_error, mine.rel_error, opt.atol, opt.rtol);
    r.report += line;
    if (r.ok) {
      r.check = check;
      r.input = mine.input;
      r.index = mine.index;
      r.analytic = mine.analytic;
      r.numeric = mine.numeric;
      r.abs_error = mine.abs_error;
      r.rel_error = mine.rel_error;
    }
    r.ok = r.ok && ok;
  }
};

// Reverse mode, first order.
void check_reverse(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                   const GradcheckOptions& opt, const std::string& name, GradcheckResult& r) {
  std::vector<Tensor> wanted;
  for (const Tensor& x : inputs)
    if (x.requires_grad()) wanted.push_back(x);
  Array<double> w;
  std::vector<Tensor> analytic;
  {
    Tape tape;
    TapeGuard recording(tape);
    Tensor y = checked_output(f, inputs);
    if (!y.requires_grad())
      fail("gradcheck", "f's output does not depend on any input that requires grad");
    Generator gen(opt.seed);
    w = randn(y.shape(), gen, Dtype::f64).data<double>();
    analytic = grad({y}, wanted, {.grad_outputs = {Tensor(w)}});
  }
  Compare c{r, opt, name};
  NoGradGuard no_grad;
  for (std::size_t i = 0, k = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    Tensor x = inputs[i];  // shares the caller's tensor
    Array<double>& v = x.data<double>();
    const Array<double>& a = analytic[k++].data<double>();
    for (std::size_t j = 0; j < v.size(); ++j) {
      const double original = v.data()[j];
      v.data()[j] = original + opt.eps;
      const double plus = weighted_sum(checked_output(f, inputs), w);
      v.data()[j] = original - opt.eps;
      const double minus = weighted_sum(checked_output(f, inputs), w);
      v.data()[j] = original;
      c.add(a.data()[j], (plus - minus) / (2 * opt.eps), i, unravel(j, v.shape()));
    }
  }
  c.finish();
}

// Random directions, one per input that requires grad (undefined for the others).
std::vector<Tensor> directions(const std::vector<Tensor>& inputs, std::uint64_t seed) {
  Generator gen(seed + 1);
  std::vector<Tensor> v;
  for (const Tensor& x : inputs)
    v.push_back(x.requires_grad() ? randn(x.shape(), gen, Dtype::f64) : Tensor());
  return v;
}

// Forward mode, first order.
void check_forward(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                   const GradcheckOptions& opt, const std::string& name, GradcheckResult& r) {
  const std::vector<Tensor> v = directions(inputs, opt.seed);
  Tensor analytic;
  {
    NoGradGuard no_grad;
    analytic = jvp(f, inputs, v).second;
  }
  // f(x + s eps v) for s = +1, -1, moving every input that requires grad at once.
  const auto moved = [&](double s) {
    NoGradGuard no_grad;
    std::vector<Array<double>> kept;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (!v[i].defined()) continue;
      Tensor x = inputs[i];
      kept.push_back(x.data<double>());
      x.data<double>() += s * opt.eps * v[i].data<double>();
    }
    Tensor y = checked_output(f, inputs).detach();
    for (std::size_t i = 0, k = 0; i < inputs.size(); ++i)
      if (v[i].defined()) Tensor(inputs[i]).data<double>() = kept[k++];
    return y;
  };
  const Tensor plus = moved(1), minus = moved(-1);
  Compare c{r, opt, name};
  const Array<double>& a = analytic.data<double>();
  for (std::size_t j = 0; j < a.size(); ++j)
    c.add(a.data()[j],
          (plus.data<double>().data()[j] - minus.data<double>().data()[j]) / (2 * opt.eps), 0,
          unravel(j, a.shape()));
  c.finish();
}

void check_first(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                 const GradcheckOptions& opt, const std::string& outer, GradcheckResult& r) {
  const auto label = [&](const char* mode) {
    return outer.empty() ? std::string(mode) : std::string(mode) + " of " + outer;
  };
  if (opt.modes != CheckModes::forward) check_reverse(f, inputs, opt, label("reverse"), r);
  if (opt.modes != CheckModes::reverse) check_forward(f, inputs, opt, label("forward"), r);
}

}  // namespace

Tensor flat_join(const std::vector<Tensor>& parts) {
  std::vector<Tensor> flat;
  for (const Tensor& p : parts) flat.push_back(reshape(p, {-1}));
  return flat.size() == 1 ? flat[0] : concat(flat, 0);
}

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
  if (opt.order != 1 && opt.order != 2)
    fail("gradcheck", "order is " + std::to_string(opt.order) + "; 1 or 2 are checked");

  // Keep the callers' gradients, and start from none.
  std::vector<std::optional<AnyArray>> kept;
  for (const Tensor& t : inputs) {
    kept.push_back(t.impl()->grad);
    t.impl()->grad.reset();
  }
  GradcheckResult r;
  check_first(f, inputs, opt, "", r);
  if (opt.order == 2) {
    std::size_t n = inputs.size();
    Shape y_shape;
    {
      NoGradGuard no_grad;
      y_shape = checked_output(f, inputs).shape();
    }
    Generator gen(opt.seed + 2);
    // Reverse as a function of (x, w): the gradients of sum(w * f(x)) with respect to the
    // inputs that require grad, flattened and joined, with w an input of its own.
    std::vector<Tensor> with_w = inputs;
    with_w.push_back(randn(y_shape, gen, Dtype::f64).set_requires_grad());
    const GradcheckFn reverse = [&](const std::vector<Tensor>& in) {
      const std::vector<Tensor> x(in.begin(), in.begin() + n);
      std::vector<Tensor> grads = vjp(f, x, in[n], /*create_graph=*/true).grads;
      std::vector<Tensor> wanted;
      for (std::size_t i = 0; i < n; ++i)
        if (inputs[i].requires_grad()) wanted.push_back(grads[i]);
      return flat_join(wanted);
    };
    check_first(reverse, with_w, opt, "reverse", r);
    // Forward as a function of (x, v).
    std::vector<Tensor> with_v = inputs;
    const std::vector<Tensor> v = directions(inputs, opt.seed + 3);
    for (const Tensor& d : v)
      if (d.defined()) with_v.push_back(Tensor(d.data<double>(), true));
    const GradcheckFn forward = [&](const std::vector<Tensor>& in) {
      const std::vector<Tensor> x(in.begin(), in.begin() + n);
      std::vector<Tensor> t;
      for (std::size_t i = 0, k = n; i < n; ++i) t.push_back(v[i].defined() ? in[k++] : Tensor());
      return jvp(f, x, t).second;
    };
    check_first(forward, with_v, opt, "forward", r);
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i].impl()->grad = std::move(kept[i]);
  if (!r.report.empty() && r.report.back() == '\n') r.report.pop_back();
  return r;
}

GradcheckResult gradgradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                              GradcheckOptions options) {
  options.order = 2;
  options.modes = CheckModes::reverse;
  return gradcheck(f, inputs, options);
}

}  // namespace tg

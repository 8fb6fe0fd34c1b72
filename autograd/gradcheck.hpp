// gradcheck: compares the tape's gradients with central finite differences.
//
//   auto r = tg::gradcheck([](const std::vector<tg::Tensor>& in) { return tg::tanh(in[0]); },
//                          {x64});   // x64: a float64 tensor with requires_grad
//   if (!r.ok) std::cerr << r.report;
//
// For an output y = f(inputs) of any shape, gradcheck draws a fixed random w of y's shape and
// checks the gradient of L = sum(w * y), which tests every entry of the Jacobian with high
// probability.  Analytic: backward with output gradient w.  Numeric, for each element x_j of
// each input that requires grad: (L(x_j + eps) - L(x_j - eps)) / (2 eps).
//
// The inputs are the caller's own tensors: gradcheck perturbs them in place and restores them,
// so a module's parameters can be checked by passing them as inputs even when f reaches them
// through the module.  Their previous gradients are restored afterwards.  Inputs must be
// float64: in float32, rounding swamps finite differences (use Tensor::to(Dtype::f64)).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace tg {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // an element passes if |analytic - numeric| <= atol + rtol |numeric|
  double rtol = 1e-3;
  std::uint64_t seed = 1234;  // for the random output weights w
};

struct GradcheckResult {
  bool ok = true;
  // The worst element (the largest error relative to its tolerance):
  std::size_t input = 0;  // which input
  Shape index;            // its position in that input
  double analytic = 0, numeric = 0, abs_error = 0, rel_error = 0;
  std::size_t checked = 0;  // elements compared
  std::string report;       // one line saying all of the above
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace tg

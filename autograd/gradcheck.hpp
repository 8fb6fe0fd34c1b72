// gradcheck: compares derivatives with central finite differences, in reverse and forward
// mode, to first or second order.
//
//   auto r = tg::gradcheck([](const std::vector<tg::Tensor>& in) { return tg::tanh(in[0]); },
//                          {x64});   // x64: a float64 tensor with requires_grad
//   if (!r.ok) std::cerr << r.report;
//   tg::gradcheck(f, {x64}, {.order = 2, .modes = tg::CheckModes::both});  // all four pairs
//
// Reverse: for an output y = f(inputs) of any shape, gradcheck draws a fixed random w of y's
// shape and checks the gradient of L = sum(w * y), which tests every entry of the Jacobian with
// high probability.  Analytic: backward with output gradient w.  Numeric, for each element x_j
// of each input that requires grad: (L(x_j + eps) - L(x_j - eps)) / (2 eps).
// Forward: draws a random direction v (one per input that requires grad) and checks the
// tangent of tg::jvp against (f(x + eps v) - f(x - eps v)) / (2 eps), element by element.
// Order 2 checks the first-order derivatives as functions, each way:
//   reverse of reverse: x, w -> the gradients above (with create_graph), checked in reverse;
//   forward of reverse (Hessian-vector products), reverse of forward, forward of forward.
// So every rule's own rules are checked, and the rules' linearity in w and v too.
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

enum class CheckModes { reverse, forward, both };

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // an element passes if |analytic - numeric| <= atol + rtol |numeric|
  double rtol = 1e-3;
  std::uint64_t seed = 1234;  // for the random output weights w and directions v
  int order = 1;              // 1 or 2
  CheckModes modes = CheckModes::reverse;
};

struct GradcheckResult {
  bool ok = true;
  // The worst element (the largest error relative to its tolerance) of the worst check:
  std::string check;      // which: "reverse", "forward", "reverse of forward", ...
  std::size_t input = 0;  // which input (reverse) or output element (forward)
  Shape index;            // its position
  double analytic = 0, numeric = 0, abs_error = 0, rel_error = 0;
  std::size_t checked = 0;  // elements compared, over all checks
  std::string report;       // one line per check saying all of the above
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Several tensors as one, each flattened and then joined: how a function with several outputs
// (an op's gradients, say) is checked, as the one output that gradcheck takes.
Tensor flat_join(const std::vector<Tensor>& parts);

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});
// gradcheck of order 2 in reverse mode only (PyTorch's name for it).
GradcheckResult gradgradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                              GradcheckOptions options = {});

}  // namespace tg

// Derivatives as functions: gradients as tensors, vector-Jacobian and Hessian-vector products,
// whole Jacobians and Hessians.  Forward mode (tg::jvp) is in forward.hpp.
//
//   x: a leaf with requires_grad, recorded on `tape`:
//   Tensor y = tg::sum(tg::pow(x, 3.0));
//   Tensor g = tg::grad(y, x, {.create_graph = true});  // 3 x^2, itself on the tape
//   Tensor h = tg::grad(tg::sum(g), x);                 // 6 x
#pragma once

#include <optional>
#include <vector>

#include "forward.hpp"
#include "tape.hpp"

namespace tg {

struct GradOptions {
  std::vector<Tensor> grad_outputs;  // one per output; none (or undefined): ones, for scalars
  bool create_graph = false;  // record the backward pass, so the gradients can be differentiated
  std::optional<bool> retain_graph;  // keep the rules for another pass; default: create_graph
};

// The gradients of `outputs` (weighted by grad_outputs) with respect to `inputs`, as tensors of
// the inputs' shapes (zeros for an input the outputs do not depend on).  Leaves' grad() is not
// touched.  Every input must require grad, and the outputs must have been recorded on a tape.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const GradOptions& options = {});
Tensor grad(const Tensor& output, const Tensor& input, const GradOptions& options = {});

struct VjpResult {
  Tensor output;              // f(primals)
  std::vector<Tensor> grads;  // v^T J_f(primals), one per primal
};
// Evaluates f at `primals` and pulls `v` (of f's output shape; undefined: ones for a scalar)
// back to them.  Records on the current tape when there is one (then, with create_graph, the
// result can be differentiated again), else on a tape of its own.
VjpResult vjp(const Function& f, const std::vector<Tensor>& primals, const Tensor& v = Tensor(),
              bool create_graph = false);

// The Hessian of a scalar f at x times v, by forward mode over the gradient (one forward and
// one backward pass, each carrying tangents): about 2-4 times the cost of a gradient.
Tensor hvp(const Function& f, const Tensor& x, const Tensor& v);
// The same for f of several tensors: H v with H the Hessian over all of them, v one per input.
std::vector<Tensor> hvp(const Function& f, const std::vector<Tensor>& xs,
                        const std::vector<Tensor>& vs);

// The Jacobian of f at x: shape f(x).shape + x.shape.  Forward mode takes one jvp per element
// of x, reverse one vjp per element of f(x); automatic picks the fewer.
enum class JacobianMode { automatic, forward, reverse };
Tensor jacobian(const Function& f, const Tensor& x, JacobianMode mode = JacobianMode::automatic);
// The Hessian of a scalar f at x: shape x.shape + x.shape, one hvp per element of x.
Tensor hessian(const Function& f, const Tensor& x);

}  // namespace tg

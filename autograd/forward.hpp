// Forward mode: tangents carried alongside values, one op at a time.
//
//   auto [y, dy] = tg::jvp([](const std::vector<tg::Tensor>& in) { return tg::sin(in[0]); },
//                          {x}, {v});          // y = sin x, dy = cos(x) * v
//
// While jvp runs f, every op whose inputs carry a tangent computes its output's tangent with
// its Jacobian-vector product rule (recorded beside its vjp, see tape.hpp): one forward pass,
// whatever the number of outputs.  The tangent rules are written with tapegrad's ops, so they
// can themselves be differentiated: jvp inside jvp (forward over forward), jvp of a gradient
// (forward over reverse: tg::hvp), or a gradient of a jvp.
//
// Nesting: each jvp opens a level; a tensor holds one tangent per level it is perturbed in.
// An op's rule for level L runs with levels L and deeper hidden, so the tangent it computes
// carries the tangents of the enclosing levels only; this keeps the perturbations of nested
// jvps apart (no "perturbation confusion").
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "tape.hpp"

namespace tg {

using Function = std::function<Tensor(const std::vector<Tensor>&)>;
using MultiFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

struct JvpResult {
  std::vector<Tensor> outputs;   // f(primals)
  std::vector<Tensor> tangents;  // J_f(primals) tangents, one per output
};

// Evaluates f at `primals` and its Jacobian-vector product along `tangents` (one per primal,
// of its shape and dtype; an undefined tangent is zero).
JvpResult jvp(const MultiFunction& f, const std::vector<Tensor>& primals,
              const std::vector<Tensor>& tangents);
// The same for an f with one output: {f(primals), its tangent}.
std::pair<Tensor, Tensor> jvp(const Function& f, const std::vector<Tensor>& primals,
                              const std::vector<Tensor>& tangents);

}  // namespace tg

#include "functional.hpp"

#include <string>

#include "ops.hpp"

namespace tg {

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const GradOptions& options) {
  if (outputs.empty()) fail("grad", "no outputs to differentiate");
  if (!options.grad_outputs.empty() && options.grad_outputs.size() != outputs.size())
    fail("grad", std::to_string(outputs.size()) + " outputs but " +
                     std::to_string(options.grad_outputs.size()) +
                     " grad_outputs; give one per output (or none, for scalars)");
  // The outputs' tape (a tape of no ops when every output is a leaf).
  std::shared_ptr<detail::TapeData> tape;
  for (const Tensor& y : outputs) {
    check_defined("grad", y);
    if (y.requires_grad() && !y.is_leaf()) {
      tape = y.impl()->tape.lock();
      if (!tape) fail("grad", "the tape that recorded the output no longer exists");
      break;
    }
  }
  Tape no_ops;
  detail::TapeData& data = tape ? *tape : no_ops.data();
  return detail::run_backward(data,
                              {.outputs = outputs,
                               .grad_outputs = options.grad_outputs,
                               .create_graph = options.create_graph,
                               .retain_graph = options.retain_graph.value_or(options.create_graph),
                               .inputs = &inputs});
}

Tensor grad(const Tensor& output, const Tensor& input, const GradOptions& options) {
  return grad(std::vector<Tensor>{output}, std::vector<Tensor>{input}, options)[0];
}

VjpResult vjp(const Function& f, const std::vector<Tensor>& primals, const Tensor& v,
              bool create_graph) {
  std::optional<Tape> own;
  std::optional<TapeGuard> recording;
  if (detail::current_tape() == nullptr) {
    own.emplace();
    recording.emplace(*own);
  }
  std::vector<Tensor> inputs;
  for (const Tensor& p : primals) {
    check_defined("vjp", p);
    if (p.requires_grad()) {
      inputs.push_back(clone(p));  // recorded: the gradient stays connected to p's graph
    } else {
      Tensor leaf = p.detach();
      leaf.impl()->tangents = p.impl()->tangents;  // forward mode still sees through it
      inputs.push_back(leaf.set_requires_grad());
    }
  }
  VjpResult r;
  r.output = f(inputs);
  check_defined("vjp", r.output);
  if (!r.output.requires_grad()) {  // f does not depend on its inputs
    for (const Tensor& p : primals) r.grads.push_back(zeros_like(p));
    return r;
  }
  r.grads = grad({r.output}, inputs, {.grad_outputs = {v}, .create_graph = create_graph});
  return r;
}

Tensor hvp(const Function& f, const Tensor& x, const Tensor& v) {
  return hvp(f, std::vector<Tensor>{x}, std::vector<Tensor>{v})[0];
}

std::vector<Tensor> hvp(const Function& f, const std::vector<Tensor>& xs,
                        const std::vector<Tensor>& vs) {
  const auto gradients = [&](const std::vector<Tensor>& in) { return vjp(f, in).grads; };
  return jvp(gradients, xs, vs).tangents;
}

namespace {

// e_j: zeros of `shape` but a one at flat index j.
Tensor basis(const Shape& shape, Dtype dtype, std::size_t j) {
  Tensor e = zeros(shape, dtype);
  dispatch(dtype, [&]<class T>() { e.data<T>().data()[j] = T(1); });
  return e;
}

Shape joined(const Shape& a, const Shape& b) {
  Shape s = a;
  s.insert(s.end(), b.begin(), b.end());
  return s;
}

std::vector<std::int64_t> signed_shape(const Shape& s) { return {s.begin(), s.end()}; }

}  // namespace

Tensor jacobian(const Function& f, const Tensor& x, JacobianMode mode) {
  check_defined("jacobian", x);
  Shape y_shape;
  {
    NoGradGuard no_grad;
    y_shape = f({x}).shape();
  }
  const std::size_t n = x.numel(), m = shape_numel(y_shape);
  if (mode == JacobianMode::automatic)
    mode = n <= m ? JacobianMode::forward : JacobianMode::reverse;
  const auto full = signed_shape(joined(y_shape, x.shape()));
  if (mode == JacobianMode::forward) {  // column j: J e_j
    std::vector<Tensor> columns;
    for (std::size_t j = 0; j < n; ++j)
      columns.push_back(reshape(jvp(f, {x}, {basis(x.shape(), x.dtype(), j)}).second, {-1}));
    return reshape(stack(columns, 1), full);
  }
  std::vector<Tensor> rows;  // row i: e_i^T J
  for (std::size_t i = 0; i < m; ++i)
    rows.push_back(reshape(vjp(f, {x}, basis(y_shape, x.dtype(), i)).grads[0], {-1}));
  return reshape(stack(rows, 0), full);
}

Tensor hessian(const Function& f, const Tensor& x) {
  check_defined("hessian", x);
  std::vector<Tensor> columns;  // H e_j; H is symmetric, so these are its rows too
  for (std::size_t j = 0; j < x.numel(); ++j)
    columns.push_back(reshape(hvp(f, x, basis(x.shape(), x.dtype(), j)), {-1}));
  return reshape(stack(columns, 0), signed_shape(joined(x.shape(), x.shape())));
}

}  // namespace tg

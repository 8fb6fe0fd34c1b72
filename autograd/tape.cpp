#include "tape.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <ostream>
#include <sstream>

#include "forward.hpp"
#include "ops.hpp"
#include "runtime/kernels.hpp"

namespace tg {
namespace {

thread_local Profiler* t_profiler = nullptr;
thread_local bool t_anomaly = false;

std::uint64_t next_tape_id() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

const Shape& shape_of(const AnyArray& a) {
  return std::visit([](const auto& v) -> const Shape& { return v.shape(); }, a);
}

// A gradient's shape and dtype must be its target's; a mismatch is a bug in an op's rule, so it
// is reported as such.
void check_gradient(const char* op, const char* target, const Shape& expected, Dtype dtype,
                    const Tensor& g) {
  if (g.shape() != expected)
    throw std::logic_error(std::string(op) + ": backward produced a gradient of shape " +
                           shape_str(g.shape()) + " for " + target + " of shape " +
                           shape_str(expected));
  if (g.dtype() != dtype)
    throw std::logic_error(std::string(op) + ": backward produced a " + dtype_name(g.dtype()) +
                           " gradient for " + target + " of dtype " + dtype_name(dtype));
}

// slot += g, or slot = g when nothing has arrived yet.  Without create_graph, a slot no one else
// holds is added into in place (the first-order fast path); otherwise the sum is a new tensor,
// made by `add` and so recorded when the backward records.
void accumulate(Tensor& slot, Tensor g, bool create_graph) {
  if (!slot.defined()) {
    slot = std::move(g);
    return;
  }
  if (!create_graph && slot.impl().use_count() == 1 && slot.impl()->tangents.empty() &&
      g.impl()->tangents.empty()) {
    std::visit(
        [&](auto& acc) {
          parallel_add_into(acc, std::get<std::decay_t<decltype(acc)>>(g.impl()->value));
        },
        slot.impl()->value);
    return;
  }
  slot = add(slot, g);
}

// Where the first NaN or infinity of `a` is: "" when every value is finite, else
// "NaN ... at [i, j]" or "inf ... at [i, j]".
std::string first_non_finite(const AnyArray& a) {
  return std::visit(
      [](const auto& v) -> std::string {
        for (std::size_t k = 0; k < v.size(); ++k) {
          const auto x = v.data()[k];
          if (std::isfinite(x)) continue;
          std::string where;
          std::size_t rest = k;
          std::vector<std::size_t> index(v.dimension());
          for (std::size_t d = v.dimension(); d-- > 0;)
            index[d] = rest % v.shape()[d], rest /= v.shape()[d];
          for (std::size_t d = 0; d < index.size(); ++d)
            where += (d ? ", " : "") + std::to_string(index[d]);
          return std::string(std::isnan(x) ? "NaN" : "inf") + " at [" + where + "]";
        }
        return "";
      },
      a);
}

// On a non-finite output: which op, where on the tape, and what its inputs looked like.
void check_output(const char* op, std::size_t index, const Tensor& out, const Tensor* const* inputs,
                  std::size_t n) {
  const std::string bad = first_non_finite(out.impl()->value);
  if (bad.empty()) return;
  const auto at = bad.find(" at ");
  std::string message = "anomaly: op #" + std::to_string(index) + " '" + op + "' produced " +
                        bad.substr(0, at) + " in its output " + shape_str(out.shape()) +
                        bad.substr(at) + "; inputs:";
  for (std::size_t i = 0; i < n; ++i) {
    const TensorImpl& in = *inputs[i]->impl();
    message +=
        (i ? ", " : " ") + shape_str(inputs[i]->shape()) + " " + dtype_name(inputs[i]->dtype());
    const std::string input_bad = first_non_finite(in.value);
    if (!input_bad.empty()) message += " (already holding " + input_bad + ")";
  }
  throw AnomalyError(message);
}

}  // namespace

DetectAnomaly::DetectAnomaly() : enabled_(t_anomaly, true) {}
bool anomaly_detection_enabled() { return t_anomaly; }

namespace detail {

// What the tape tells the thread's Profiler; nothing without one.
struct ProfilerHooks {
  using Clock = std::chrono::steady_clock;
  static double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  }
  // An op was recorded: its forward time is the time since the last mark.
  static void recorded(const char* op) {
    if (!t_profiler) return;
    OpTime& t = t_profiler->ops_[op];
    ++t.calls;
    const double ms = ms_since(t_profiler->mark_);
    t.forward_ms += ms, t_profiler->timed_ms_ += ms;
    t_profiler->mark_ = Clock::now();
  }
  // A rule starts: the ops it records (with create_graph, or a checkpoint's recompute) are timed
  // from now.  Returns the time given to ops so far, for ran().
  static double rule_starts() {
    if (!t_profiler) return 0;
    t_profiler->mark_ = Clock::now();
    return t_profiler->timed_ms_;
  }
  // A rule ran from `start`: its own backward time is the rest of the time, less what the ops it
  // recorded or ran were given since rule_starts() said `timed_before`.
  static void ran(const char* op, Clock::time_point start, double timed_before) {
    if (!t_profiler) return;
    const double own = ms_since(start) - (t_profiler->timed_ms_ - timed_before);
    t_profiler->ops_[op].backward_ms += own, t_profiler->timed_ms_ += own;
  }
};

void accumulate_leaf_grad(const char* op, TensorImpl& leaf, const Tensor& g) {
  check_gradient(op, "a leaf", shape_of(leaf.value),
                 leaf.value.index() == 0 ? Dtype::f32 : Dtype::f64, g);
  if (!leaf.grad) {
    // Take the values when no one else holds them; copy otherwise.
    if (g.impl().use_count() == 1) leaf.grad = std::move(g.impl()->value);
    else leaf.grad = g.impl()->value;
    return;
  }
  std::visit(
      [&](auto& acc) {
        parallel_add_into(acc, std::get<std::decay_t<decltype(acc)>>(g.impl()->value));
      },
      *leaf.grad);
}

Tensor output_gradient(const char* op, const Tensor& out, const Tensor& g_out) {
  if (!g_out.defined()) {
    if (out.numel() != 1)
      fail(op, "the output has shape " + shape_str(out.shape()) +
                   "; backward from a non-scalar needs an explicit output gradient "
                   "of that shape: out.backward(g_out)");
    return ones(out.shape(), out.dtype());
  }
  if (g_out.shape() != out.shape() || g_out.dtype() != out.dtype())
    fail(op, "the output gradient must match the output: output is " + shape_str(out.shape()) +
                 " " + dtype_name(out.dtype()) + ", gradient is " + shape_str(g_out.shape()) + " " +
                 dtype_name(g_out.dtype()));
  return g_out;
}

void record_on_tape(const char* op, Tensor& out, const Tensor* const* inputs, std::size_t n,
                    std::size_t saved_bytes, GradFn backward, bool once_differentiable) {
  TapeData* tape = detail::current;
  if (tape == nullptr) return;  // not recording
  bool wanted = false;
  for (std::size_t i = 0; i < n; ++i) wanted = wanted || inputs[i]->requires_grad();
  if (!wanted) return;  // only tangents were asked for
  ProfilerHooks::recorded(op);
  const auto index = static_cast<std::int32_t>(tape->nodes.size());
  if (t_anomaly) check_output(op, static_cast<std::size_t>(index), out, inputs, n);
  Node& node = tape->nodes.emplace_back();
  node.op = op;
  node.shape = out.shape();
  node.dtype = out.dtype();
  node.inputs.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& in = inputs[i]->impl();
    if (!in->requires_grad) continue;  // a constant: its gradient goes nowhere
    if (in->node < 0) {
      node.inputs[i].leaf = in;
    } else if (in->tape_id == tape->id) {
      node.inputs[i].node = in->node;
    } else {
      tape->nodes.pop_back();
      fail(op, "input " + std::to_string(i) +
                   " was recorded on another tape (or before this tape was cleared); "
                   "detach() it or recompute it on the current tape");
    }
  }
  node.backward = std::move(backward);
  node.saved_bytes = saved_bytes;
  node.once_differentiable = once_differentiable;

  TensorImpl& o = *out.impl();
  o.requires_grad = true;
  o.tape_id = tape->id;
  o.node = index;
  o.tape = tape->weak_from_this();
}

}  // namespace detail

namespace {

// One backward pass: what Grads::add and the sweep over the ops need besides the tape.
struct Pass {
  const char* op = "backward";  // "backward" or "grad", for messages
  bool create_graph = false;
  bool retain_graph = false;
  bool into_leaves = true;  // backward(): leaves accumulate into grad(); tg::grad: captured
  std::map<const TensorImpl*, std::size_t> captured_leaves;  // tg::grad's leaf inputs
  std::map<std::int64_t, std::size_t> captured_nodes;        // tg::grad's inputs made by ops
  std::vector<Tensor> results;                               // tg::grad's answers
};

[[noreturn]] void released(const Pass& pass, const detail::TapeData& tape, std::int64_t i) {
  fail(pass.op, "op #" + std::to_string(i) + " (" + tape.nodes[i].op +
                    ") was already released by an earlier backward; record the forward pass "
                    "again, or pass retain_graph, to differentiate it a second time");
}

// Runs the rules of ops top, top - 1, ..., bottom that a gradient reached, each adding into its
// inputs' gradients; `done(i)`, if given, after op i whether or not it ran (the leaf_done hook).
void sweep(detail::TapeData& tape, Pass& pass, std::int64_t top, std::int64_t bottom,
           const std::function<void(std::int64_t)>& done) {
  std::int64_t i = top;
  try {
    for (; i >= bottom; --i) {
      detail::Node& node = tape.nodes[i];
      if (!node.grad.defined()) {  // no gradient reached this op: not on the path to `out`
        if (done) done(i);
        continue;
      }
      if (node.released) released(pass, tape, i);
      if (auto it = pass.captured_nodes.find(i); it != pass.captured_nodes.end())
        pass.results[it->second] = node.grad;  // complete: every use comes later on the tape
      if (node.once_differentiable && (pass.create_graph || detail::forward_mode_on()))
        fail(node.op,
             "this op's rule works on arrays, so it is differentiable once only: no "
             "create_graph or forward mode through it (write its rule with tensor ops, "
             "see docs/ops.md)");
      Grads grads(tape, static_cast<std::size_t>(i), &pass);
      const auto start =
          t_profiler ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
      const double timed = detail::ProfilerHooks::rule_starts();
      const Tensor g = std::move(node.grad);
      node.grad = Tensor();
      GradFn rule = pass.retain_graph ? node.backward : std::move(node.backward);
      rule(g, grads);
      detail::ProfilerHooks::ran(node.op, start, timed);
      if (!pass.retain_graph) {  // release what the rule saved (the deque's nodes stay put)
        node.backward = nullptr;
        node.saved_bytes = 0;
        node.released = true;
      }
      if (done) done(i);
    }
  } catch (...) {
    // Leave no half-summed gradients behind for a later backward to trip over.
    for (; i >= bottom; --i) tape.nodes[i].grad = Tensor();
    throw;
  }
}

}  // namespace

namespace detail {

std::vector<Tensor> run_backward(TapeData& tape, const BackwardCall& call) {
  Pass pass;
  pass.create_graph = call.create_graph;
  pass.retain_graph = call.retain_graph;
  pass.into_leaves = call.inputs == nullptr;
  pass.op = pass.into_leaves ? "backward" : "grad";
  const char* op = pass.op;
  if (call.inputs) {
    pass.results.resize(call.inputs->size());
    for (std::size_t k = 0; k < call.inputs->size(); ++k) {
      const Tensor& x = (*call.inputs)[k];
      check_defined(op, x);
      if (!x.requires_grad())
        fail(op, "input " + std::to_string(k) +
                     " does not require grad, so nothing was recorded "
                     "from it; set_requires_grad() on the leaf before the forward pass");
      if (x.is_leaf()) pass.captured_leaves.emplace(x.impl().get(), k);
      else if (x.impl()->tape_id == tape.id) pass.captured_nodes.emplace(x.impl()->node, k);
      else fail(op, "input " + std::to_string(k) + " was recorded on another tape");
    }
  }

  // Seed the outputs' gradients.  With create_graph the backward's ops record onto this tape.
  std::int64_t top = -1;
  {
    for (std::size_t k = 0; k < call.outputs.size(); ++k) {
      const Tensor& out = call.outputs[k];
      check_defined(op, out);
      if (!out.requires_grad())
        fail(op, "output " + std::to_string(k) +
                     " does not require grad: no input required "
                     "grad, or it was computed with no tape current (see TapeGuard) or under "
                     "NoGradGuard");
      if (!out.is_leaf() && out.impl()->tape_id != tape.id)
        fail(op, "the tensor was not recorded on this tape, or the tape was cleared since");
    }
  }
  ScopedSetting<TapeData*> recording(detail::current, call.create_graph ? &tape : nullptr);
  for (std::size_t k = 0; k < call.outputs.size(); ++k) {
    const Tensor& out = call.outputs[k];
    Tensor g =
        output_gradient(op, out, k < call.grad_outputs.size() ? call.grad_outputs[k] : Tensor());
    if (out.is_leaf()) {  // d x / d x: straight to the leaf
      if (pass.into_leaves) {
        accumulate_leaf_grad(op, *out.impl(), g);
      } else if (auto it = pass.captured_leaves.find(out.impl().get());
                 it != pass.captured_leaves.end()) {
        accumulate(pass.results[it->second], g, call.create_graph);
      }
      continue;
    }
    const auto o = out.impl()->node;
    if (tape.nodes[o].released) released(pass, tape, o);
    accumulate(tape.nodes[o].grad, g, call.create_graph);
    top = std::max<std::int64_t>(top, o);
  }
  // tg::grad's answers: zeros for an input the outputs do not depend on.
  const auto answers = [&] {
    if (!pass.into_leaves)
      for (std::size_t k = 0; k < pass.results.size(); ++k)
        if (!pass.results[k].defined()) pass.results[k] = zeros_like((*call.inputs)[k]);
    return std::move(pass.results);
  };
  if (top < 0) return answers();  // every output is a leaf
  if (tape.backward_begins && pass.into_leaves) tape.backward_begins();

  // done_at[i]: the leaves whose last contribution comes from op i (their first use going
  // forward among the ops an earlier backward has not released), for the leaf_done hook.
  std::vector<std::vector<const TensorImpl*>> done_at;
  if (tape.leaf_done && pass.into_leaves) {
    done_at.resize(top + 1);
    std::map<const TensorImpl*, std::int64_t> first_use;
    for (std::int64_t n = 0; n <= top; ++n)
      if (!tape.nodes[n].released)
        for (const Edge& e : tape.nodes[n].inputs)
          if (e.leaf) first_use.emplace(e.leaf.get(), n);
    for (const auto& [leaf, n] : first_use) done_at[n].push_back(leaf);
  }
  std::function<void(std::int64_t)> leaves_done;
  if (!done_at.empty())
    leaves_done = [&](std::int64_t n) {
      for (const TensorImpl* leaf : done_at[n]) tape.leaf_done(*leaf);
    };
  sweep(tape, pass, top, 0, leaves_done);
  return answers();
}

}  // namespace detail

// Tensor::backward lives here, beside the tape it replays (tensor.cpp knows nothing of tapes).
void Tensor::backward() const { backward(Tensor()); }

void Tensor::backward(const Tensor& g_out) const {
  if (!requires_grad())
    fail("backward",
         "the tensor does not require grad: no input required grad, or it was "
         "computed with no tape current (see TapeGuard) or under NoGradGuard");
  if (is_leaf()) {  // d x / d x: the gradient goes straight into the leaf
    detail::accumulate_leaf_grad("backward", *impl_,
                                 detail::output_gradient("backward", *this, g_out));
    return;
  }
  auto tape = impl_->tape.lock();
  if (!tape) fail("backward", "the tape that recorded this tensor no longer exists");
  detail::run_backward(*tape, {.outputs = {*this}, .grad_outputs = {g_out}});
}

namespace detail {

namespace {
// A TensorImpl with x's place in the graph and `values`.
Tensor linked(const TensorImpl& x, AnyArray values) {
  auto impl = std::make_shared<TensorImpl>(std::move(values));  // (see Tensor's constructor)
  impl->requires_grad = x.requires_grad;
  impl->tape_id = x.tape_id;
  impl->node = x.node;
  impl->tape = x.tape;
  impl->name = x.name;
  return Tensor::from_impl(std::move(impl));
}
}  // namespace

Tensor graph_link(const Tensor& x) {
  check_defined("graph_link", x);
  if (x.is_leaf()) return x;
  return linked(
      *x.impl(),
      std::visit([](const auto& v) { return AnyArray(std::decay_t<decltype(v)>::from_shape({0})); },
                 x.impl()->value));
}

Tensor with_values(const Tensor& link, AnyArray values) {
  check_defined("with_values", link);
  if (link.is_leaf())
    fail("with_values", "the link is a leaf, which is its own graph link and keeps its values");
  const TensorImpl& l = *link.impl();
  const Dtype dtype = values.index() == 0 ? Dtype::f32 : Dtype::f64;
  // The op it stands for, when its tape still holds it: the values must fit that op's output.
  if (const auto tape = l.tape.lock(); tape && tape->id == l.tape_id) {
    const Node& op = tape->nodes[l.node];
    if (op.shape != shape_of(values) || op.dtype != dtype)
      fail("with_values", "values of " + shape_str(shape_of(values)) + " " + dtype_name(dtype) +
                              " for a link to op #" + std::to_string(l.node) + " (" + op.op +
                              "), whose output is " + shape_str(op.shape) + " " +
                              dtype_name(op.dtype));
  }
  return linked(l, std::move(values));
}

}  // namespace detail

bool needs_grad(const std::vector<Tensor>& inputs) {
  for (const Tensor& t : inputs)
    if (needs_grad(t)) return true;
  return false;
}

namespace detail {

void check_reads(const char* op, const TapeData& tape, std::size_t first,
                 const std::vector<Edge>& allowed) {
  const auto is_allowed = [&](const Edge& e) {
    return std::any_of(allowed.begin(), allowed.end(),
                       [&](const Edge& a) { return e.leaf ? a.leaf == e.leaf : a.node == e.node; });
  };
  for (std::size_t n = first; n < tape.nodes.size(); ++n) {
    for (const Edge& e : tape.nodes[n].inputs) {
      if (!e.wanted() || (!e.leaf && e.node >= static_cast<std::int64_t>(first)) || is_allowed(e))
        continue;
      std::string what;
      if (e.leaf) {
        what = (e.leaf->name.empty() ? std::string("a leaf") : "'" + e.leaf->name + "'") + " " +
               shape_str(shape_of(e.leaf->value));
      } else {
        const Node& from = tape.nodes[e.node];
        what = "the output of op #" + std::to_string(e.node) + " (" + from.op + ") " +
               shape_str(from.shape);
      }
      fail(op, "op #" + std::to_string(n) + " (" + tape.nodes[n].op + ") inside it reads " + what +
                   ", which requires grad but is not one of the " + op +
                   "'s inputs, so no gradient would reach it; pass it among the inputs");
    }
  }
}

}  // namespace detail

void Grads::recompute(const std::function<Tensor()>& forward, const Tensor& g_out) {
  auto& pass = *static_cast<Pass*>(pass_);
  const std::size_t first = tape_.nodes.size();
  // Without create_graph nothing refers to the recomputed ops once their rules have run: they
  // leave the tape at the end (on an error too), as the forward had never recorded them.
  struct Truncate {
    detail::TapeData& tape;
    std::size_t first;
    bool on;
    ~Truncate() {
      if (on) tape.nodes.resize(first);
    }
  } truncate{tape_, first, !pass.create_graph};
  Tensor out;
  {
    detail::ScopedSetting<detail::TapeData*> recording(detail::current, &tape_);
    out = forward();
  }
  check_defined(op_.op, out);
  detail::check_reads(op_.op, tape_, first, op_.inputs);
  if (!out.requires_grad()) return;  // it does not depend on the inputs that require grad
  if (!out.is_leaf() && out.impl()->tape_id != tape_.id)
    fail(op_.op, "the recomputed result was recorded on another tape");
  const auto o = out.impl()->node;
  if (out.is_leaf() || o < static_cast<std::int64_t>(first)) {  // it is one of the inputs
    for (std::size_t i = 0; i < op_.inputs.size(); ++i) {
      const Edge& e = op_.inputs[i];
      if (e.leaf ? e.leaf == out.impl() : e.node == o) return add(i, g_out);
    }
    fail(op_.op, "the recomputed result is a tensor that requires grad but is not one of the " +
                     std::string(op_.op) + "'s inputs");
  }
  accumulate(tape_.nodes[o].grad, g_out, pass.create_graph);
  sweep(tape_, pass, o, static_cast<std::int64_t>(first), nullptr);
}

void Grads::add(std::size_t i, Tensor g) {
  detail::Node& node = op_;
  auto& pass = *static_cast<Pass*>(pass_);
  if (t_anomaly) {
    const std::string bad = first_non_finite(g.impl()->value);
    if (!bad.empty()) {
      const auto at = bad.find(" at ");
      throw AnomalyError("anomaly: the backward of op #" + std::to_string(node_) + " '" + node.op +
                         "' produced " + bad.substr(0, at) + " in the gradient of its input " +
                         std::to_string(i) + " " + shape_str(g.shape()) + bad.substr(at));
    }
  }
  const Edge& e = node.inputs[i];
  if (e.node >= 0) {
    detail::Node& from = tape_.nodes[e.node];
    check_gradient(node.op, "an input", from.shape, from.dtype, g);
    accumulate(from.grad, std::move(g), pass.create_graph);
  } else if (e.leaf) {
    if (pass.into_leaves) {
      detail::accumulate_leaf_grad(node.op, *e.leaf, g);
    } else if (auto it = pass.captured_leaves.find(e.leaf.get());
               it != pass.captured_leaves.end()) {
      check_gradient(node.op, "an input", shape_of(e.leaf->value),
                     e.leaf->value.index() == 0 ? Dtype::f32 : Dtype::f64, g);
      accumulate(pass.results[it->second], std::move(g), pass.create_graph);
    }
  }
}

Tape::Tape() : data_(std::make_shared<detail::TapeData>()) { data_->id = next_tape_id(); }

void Tape::backward(const Tensor& out, const Tensor& g_out) {
  if (out.requires_grad() && !out.is_leaf() && out.impl()->tape_id != data_->id)
    fail("Tape::backward", "the tensor was not recorded on this tape");
  out.backward(g_out);
}

std::size_t Tape::saved_bytes() const {
  std::size_t total = 0;
  for (const auto& n : data_->nodes) total += n.saved_bytes;
  return total;
}

void Tape::clear() {
  data_->nodes.clear();
  data_->id = next_tape_id();
}

namespace {

std::string input_label(const Edge& e) {
  if (e.node >= 0) return std::string("#").append(std::to_string(e.node));
  if (e.leaf) return e.leaf->name.empty() ? "leaf" : e.leaf->name;
  return "const";
}

std::string bytes_str(std::size_t b) {
  if (b < 10 * 1024) return std::to_string(b) + " B";
  if (b < 10 * 1024 * 1024) return std::to_string(b / 1024) + " KiB";
  return std::to_string(b / (1024 * 1024)) + " MiB";
}

}  // namespace

std::string Tape::listing() const {
  std::ostringstream os;
  os << "tape: " << data_->nodes.size() << " ops, " << bytes_str(saved_bytes())
     << " saved for backward\n";
  char line[256];
  std::snprintf(line, sizeof line, "%5s  %-14s %-18s %-8s %-10s %s\n", "#", "op", "output", "dtype",
                "saved", "inputs");
  os << line;
  for (std::size_t i = 0; i < data_->nodes.size(); ++i) {
    const auto& n = data_->nodes[i];
    std::string ins;
    for (const Edge& e : n.inputs) ins += (ins.empty() ? "" : ", ") + input_label(e);
    std::snprintf(line, sizeof line, "%5zu  %-14s %-18s %-8s %-10s %s\n", i, n.op,
                  shape_str(n.shape).c_str(), dtype_name(n.dtype),
                  n.released ? "released" : bytes_str(n.saved_bytes).c_str(), ins.c_str());
    os << line;
  }
  return os.str();
}

std::string Tape::to_dot() const {
  std::ostringstream os;
  os << "digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n";
  int consts = 0;
  for (std::size_t i = 0; i < data_->nodes.size(); ++i) {
    const auto& n = data_->nodes[i];
    os << "  op" << i << " [shape=box, label=\"#" << i << " " << n.op << "\\n"
       << shape_str(n.shape) << "\"];\n";
    for (const Edge& e : n.inputs) {
      if (e.node >= 0) {
        os << "  op" << e.node << " -> op" << i << ";\n";
      } else if (e.leaf) {
        os << "  leaf" << e.leaf.get() << " [shape=ellipse, label=\""
           << (e.leaf->name.empty() ? "leaf" : e.leaf->name) << "\\n"
           << shape_str(shape_of(e.leaf->value)) << "\"];\n"
           << "  leaf" << e.leaf.get() << " -> op" << i << ";\n";
      } else {
        os << "  const" << consts << " [shape=plaintext, label=\"const\"];\n"
           << "  const" << consts << " -> op" << i << ";\n";
        ++consts;
      }
    }
  }
  os << "}\n";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tape& tape) { return os << tape.listing(); }

Profiler::Profiler() : mark_(std::chrono::steady_clock::now()), current_(t_profiler, this) {}

std::string Profiler::table() const {
  std::vector<std::pair<std::string, OpTime>> rows(ops_.begin(), ops_.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second.forward_ms + a.second.backward_ms > b.second.forward_ms + b.second.backward_ms;
  });
  double fwd = 0, bwd = 0;
  for (const auto& [op, t] : rows) fwd += t.forward_ms, bwd += t.backward_ms;
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "%-22s %7s %12s %12s %7s\n", "op", "calls", "forward ms",
                "backward ms", "share");
  out += line;
  for (const auto& [op, t] : rows) {
    std::snprintf(line, sizeof line, "%-22s %7zu %12.3f %12.3f %6.1f%%\n", op.c_str(), t.calls,
                  t.forward_ms, t.backward_ms,
                  100.0 * (t.forward_ms + t.backward_ms) / std::max(fwd + bwd, 1e-9));
    out += line;
  }
  std::snprintf(line, sizeof line, "%-22s %7s %12.3f %12.3f\n", "total", "", fwd, bwd);
  return out + line;
}

TapeGuard::TapeGuard(Tape& tape) : current_(detail::current, &tape.data()) {}
NoGradGuard::NoGradGuard() : current_(detail::current, nullptr) {}

}  // namespace tg

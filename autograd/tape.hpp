// The tape: ops recorded in execution order, each with its derivative rules.
//
//   tg::Tape tape;
//   {
//     tg::TapeGuard recording(tape);     // this thread now records onto `tape`
//     tg::Tensor loss = tg::sum(x * x);  // mul and sum are appended to the tape
//     loss.backward();                   // replays the tape in reverse: x.grad() == 2 x
//   }
//   std::cout << tape;                   // the listing: op, output shape, bytes saved
//
// Each op records a vector-Jacobian product (vjp): given the gradient of its output as a
// Tensor, it adds the gradients of its inputs, written with tapegrad's own ops.  So a backward
// pass is itself a computation made of ops: run with create_graph (tg::grad, functional.hpp)
// those ops are recorded onto the tape as well, and the gradients can be differentiated again,
// to any order.  Ops also give a Jacobian-vector product (jvp) for forward mode (forward.hpp).
//
// backward() walks the tape from the output's op down to the first op.  An op runs only if a
// gradient reached its output; its rule adds into its inputs' gradients, so a tensor used twice
// receives both contributions.  After an op's rule has run, the tape drops the rule and
// everything it saved (unless asked to retain the graph), so memory is returned as backward
// proceeds.  A second backward that needs a released op throws instead of computing wrong
// numbers.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace tg {

// Where one input's gradient goes: the op that produced it (node >= 0), a leaf that requires
// grad, or nowhere (a constant).
struct Edge {
  std::int32_t node = -1;
  std::shared_ptr<TensorImpl> leaf;
  bool wanted() const { return node >= 0 || leaf != nullptr; }
};

class Grads;
// A vector-Jacobian product: receives the gradient of the op's output and adds the gradients of
// the op's inputs through `g_in`.
using GradFn = std::function<void(const Tensor& g_out, Grads& g_in)>;
class Tangents;
// A Jacobian-vector product: from the tangents of the op's inputs, the tangent of its output.
using JvpFn = std::function<Tensor(const Tangents& t)>;

namespace detail {

struct Node {
  const char* op = "";
  Shape shape;  // of the output
  Dtype dtype = Dtype::f32;
  std::vector<Edge> inputs;
  GradFn backward;
  std::size_t saved_bytes = 0;       // what the rule keeps alive for backward
  Tensor grad;                       // gradient of the output, summed as it arrives
  bool released = false;             // backward has run and dropped the rule
  bool once_differentiable = false;  // an array-level rule: no create_graph, no forward mode
};

struct TapeData : std::enable_shared_from_this<TapeData> {
  std::uint64_t id = 0;  // changes on clear(), so old tensors never point at new ops
  // A deque: a backward with create_graph appends ops while it walks the older ones.
  std::deque<Node> nodes;
  std::function<void()> backward_begins;                  // Tape::on_backward
  std::function<void(const TensorImpl& leaf)> leaf_done;  // Tape::on_backward
};

// The thread's recording state, read inline by every op: its current tape (set by TapeGuard and
// NoGradGuard; nullptr: nothing is recorded), and how many tg::jvp are running (forward.cpp).
inline thread_local TapeData* current = nullptr;
inline thread_local int jvp_levels = 0;
inline TapeData* current_tape() { return current; }
inline bool forward_mode_on() { return jvp_levels > 0; }
// Appends the op when a tape records and an input requires grad.
void record_on_tape(const char* op, Tensor& out, const Tensor* const* inputs, std::size_t n,
                    std::size_t saved_bytes, GradFn backward, bool once_differentiable);
// The output's tangent at every running jvp level where an input has one (forward.cpp).  An
// empty jvp throws, naming the op, when a tangent reaches it.
void compute_tangents(const char* op, Tensor& out, const Tensor* const* inputs, std::size_t n,
                      const JvpFn& jvp, bool once_differentiable);

// What one backward pass is asked for (Tensor::backward, tg::grad).
struct BackwardCall {
  std::vector<Tensor> outputs, grad_outputs;  // grad_outputs[i] undefined: ones (scalars)
  bool create_graph = false;  // record the backward's ops, so its results can be differentiated
  bool retain_graph = false;  // keep the rules for another backward
  // tg::grad: return the gradients of these instead of accumulating into leaves' grad().
  const std::vector<Tensor>* inputs = nullptr;
};
std::vector<Tensor> run_backward(TapeData& tape, const BackwardCall& call);
// Throws, naming `op`, if an op on `tape` from index `first` on reads a tensor that requires grad
// (a leaf, or the output of an op before `first`) that is none of `allowed`: for an op made of
// ops (tg::checkpoint), whose gradients reach only its own inputs.
void check_reads(const char* op, const TapeData& tape, std::size_t first,
                 const std::vector<Edge>& allowed);
struct ProfilerHooks;  // what the tape tells the thread's Profiler (tape.cpp)
Tensor output_gradient(const char* op, const Tensor& out, const Tensor& g_out);
void accumulate_leaf_grad(const char* op, TensorImpl& leaf, const Tensor& g);

}  // namespace detail

// Gives a rule access to its inputs' gradients.
class Grads {
 public:
  Grads(detail::TapeData& tape, std::size_t node, void* pass)
      : tape_(tape), node_(node), op_(tape.nodes[node]), pass_(pass) {}

  // Does input i need a gradient?  (Skip the work when it does not.)
  bool wanted(std::size_t i) const { return op_.inputs[i].wanted(); }
  // Adds g into input i's gradient.  g must have input i's shape and dtype.
  void add(std::size_t i, Tensor g);
  // For array-level rules (once differentiable):
  void add(std::size_t i, AnyArray&& g) {
    add(i, std::visit([](auto& a) { return Tensor(std::move(a)); }, g));
  }
  template <class T>
  void add(std::size_t i, Array<T>&& g) {
    add(i, Tensor(std::move(g)));
  }
  // For a rule that computes its op's forward again (tg::checkpoint, activation_checkpoint.hpp):
  // records what `forward` computes onto this pass's tape, then runs those ops' rules from its
  // result, seeded with g_out, in this pass.  So their gradients reach this op's inputs as they
  // would have had the ops been recorded in the first place: in the same order, into the same
  // sums.  The ops may read nothing that requires grad but this op's inputs (else it throws,
  // naming what they read).  Without create_graph they leave the tape again at the end.
  void recompute(const std::function<Tensor()>& forward, const Tensor& g_out);

 private:
  detail::TapeData& tape_;
  std::size_t node_;
  detail::Node& op_;  // tape_.nodes[node_] (a deque's elements stay put as it grows)
  void* pass_;        // the backward pass running (tape.cpp)
};

// Gives a jvp rule the tangents of its op's inputs.
class Tangents {
 public:
  Tangents(const std::vector<Tensor>& t, const std::vector<bool>& given) : t_(t), given_(given) {}
  // The tangent of input i (zeros of its shape where it has none).
  const Tensor& operator[](std::size_t i) const { return t_[i]; }
  bool has(std::size_t i) const { return given_[i]; }  // input i has a tangent (not zero)
  std::size_t size() const { return t_.size(); }

 private:
  const std::vector<Tensor>& t_;
  const std::vector<bool>& given_;
};

class Tape {
 public:
  Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // Same as out.backward(g_out), checking that `out` was recorded on this tape.
  void backward(const Tensor& out, const Tensor& g_out = Tensor());
  std::size_t size() const { return data_->nodes.size(); }
  const detail::Node& node(std::size_t i) const { return data_->nodes.at(i); }
  std::size_t saved_bytes() const;  // held now by closures that have not run
  // Forgets every op, so the tape can record the next step.  Tensors recorded before can no
  // longer run backward on it.
  void clear();
  // Hooks into every backward on this tape, for work that starts while backward runs (summing
  // gradients across ranks: nn::GradientReducer).  `begins()` runs before any gradient is
  // computed; `leaf_done(leaf)` as soon as a leaf's gradient is complete, that is after the last
  // op in backward order that takes it (among ops no earlier backward released), whether or not
  // a gradient reached that op.  Empty functions remove the hooks.
  void on_backward(std::function<void()> begins,
                   std::function<void(const TensorImpl& leaf)> leaf_done) {
    data_->backward_begins = std::move(begins);
    data_->leaf_done = std::move(leaf_done);
  }

  std::string listing() const;  // a table: op, output shape, bytes saved, inputs
  // Returns the graph as Graphviz DOT text (it writes no file):
  //   std::ofstream("tape.dot") << tape.to_dot();     then: dot -Tsvg tape.dot > tape.svg
  std::string to_dot() const;

  detail::TapeData& data() { return *data_; }

 private:
  std::shared_ptr<detail::TapeData> data_;
};

std::ostream& operator<<(std::ostream& os, const Tape& tape);

namespace detail {
// Sets one of the thread's settings (its tape, anomaly detection, its profiler) for the guard's
// lifetime and puts the previous value back after, so guards nest.  The guards below are each
// one of these; like it, they cannot be copied.
template <class T>
class ScopedSetting {
 public:
  ScopedSetting(T& setting, T value) : setting_(setting), previous_(setting) { setting = value; }
  ~ScopedSetting() { setting_ = previous_; }
  ScopedSetting(const ScopedSetting&) = delete;
  ScopedSetting& operator=(const ScopedSetting&) = delete;

 private:
  T& setting_;
  T previous_;
};
}  // namespace detail

// Makes `tape` the thread's current tape for the guard's lifetime.
class TapeGuard {
 public:
  explicit TapeGuard(Tape& tape);

 private:
  detail::ScopedSetting<detail::TapeData*> current_;
};

// Stops recording for the guard's lifetime (evaluation, optimizer steps, finite differences).
class NoGradGuard {
 public:
  NoGradGuard();

 private:
  detail::ScopedSetting<detail::TapeData*> current_;
};

// Anomaly detection, for hunting NaN and infinity (off by default: it reads every value twice).
// While a DetectAnomaly guard lives, every op recorded on this thread checks its output, and
// every backward closure the gradients it produces; the first non-finite value throws
// AnomalyError naming the op, its place on the tape and the shapes:
//   anomaly: op #3 'log' produced NaN in its output (4, 5) at [2, 1]; inputs: (4, 5) float32
// (Ops whose inputs need no gradient are not recorded, so not checked; a NaN they make shows up
// in the first recorded op that uses it, whose message then says the input already held it.)
class AnomalyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class DetectAnomaly {
 public:
  DetectAnomaly();

 private:
  detail::ScopedSetting<bool> enabled_;
};
bool anomaly_detection_enabled();

// Per-op time profile, for learners to see where a training step goes.  While a Profiler lives,
// every op recorded on this thread is timed: forward = the time since the previous op was
// recorded (the op's own work plus any model code between the two), backward = its closure, less
// what the ops it records take: those (a backward with create_graph, a checkpoint's recompute in
// activation_checkpoint.hpp) count as forward calls of their own, so no time is counted twice.
//   { tg::Profiler profile; ...one step...; std::cout << profile.table(); }
struct OpTime {
  std::size_t calls = 0;
  double forward_ms = 0, backward_ms = 0;
};

class Profiler {
 public:
  Profiler();
  const std::map<std::string, OpTime>& ops() const { return ops_; }
  std::string table() const;  // sorted by total time

 private:
  friend struct detail::ProfilerHooks;
  std::map<std::string, OpTime> ops_;
  std::chrono::steady_clock::time_point mark_;
  double timed_ms_ = 0;                       // given to ops so far, forward and backward
  detail::ScopedSetting<Profiler*> current_;  // this one, while it lives
};

// ---- for writing ops ---------------------------------------------------------------------

namespace detail {
bool has_tangent(const Tensor& x);  // x carries a tangent of a running jvp

// An input's place in the graph, without its values.  A rule that keeps something the input's
// values can be recomputed from (cross_entropy keeps p = softmax(logits), and log p has the
// same softmax) need not keep the input itself; but the ops it records under create_graph must
// still connect to the input's op.  It keeps graph_link(x): x itself when x is a leaf (a leaf's
// values are the user's, alive anyway, and its gradient goes to that very TensorImpl), else a
// stand-in with x's place in the graph (requires_grad, tape, op, name) and no values: shape (0),
// x's dtype, no tangents (keep x itself while it carries one).
Tensor graph_link(const Tensor& x);
// The stand-in `link` given values, of the shape and dtype of the op output it stands for: ops
// that take the result record as if they took that output, so gradients reach its op.
Tensor with_values(const Tensor& link, AnyArray values);
}  // namespace detail

// Should an op with these inputs record its rules?  (A tape is current and an input needs
// grad, or forward mode runs and an input has a tangent.)
template <class... Ts>
bool needs_grad(const Ts&... inputs) {
  return (detail::current_tape() != nullptr && (inputs.requires_grad() || ...)) ||
         (detail::forward_mode_on() && (detail::has_tangent(inputs) || ...));
}
bool needs_grad(const std::vector<Tensor>& inputs);

// Is a rule that reads these tensors running at first order?  That is, nothing records the ops
// it runs (a backward without create_graph) and no running jvp differentiates along what it
// reads (tg::hvp runs a vjp inside a jvp).  Then nothing will differentiate its gradients again,
// and a rule may take a first-order shortcut: the same formula computed straight into arrays,
// by the same kernels (so the same bits), without the ops' shape checks and records.
// (layer_norm, cross_entropy and linear do.)
template <class... Ts>
bool first_order(const Ts&... read) {
  return detail::current_tape() == nullptr &&
         !(detail::forward_mode_on() && (detail::has_tangent(read) || ...));
}

// Bytes of the values a rule keeps alive (for the tape listing).
template <class... Ts>
std::size_t saved_bytes(const Ts&... saved) {
  return ((saved.numel() * dtype_size(saved.dtype())) + ... + 0);
}

namespace detail {
// Rules over tensors take (const Tensor& g_out, Grads&).  Array-level rules, written once for
// both element types as `[..]<class T>(const Array<T>& g_out, Grads& g) {..}`, are still
// accepted for ops written outside tapegrad: they are once differentiable (a backward with
// create_graph, or forward mode over them, throws naming the op).
template <class F>
constexpr bool is_tensor_rule = std::is_invocable_v<F&, const Tensor&, Grads&>;

template <class F>
GradFn to_grad_fn(F&& f) {
  if constexpr (is_tensor_rule<F>) {
    return GradFn(std::forward<F>(f));
  } else if constexpr (std::is_invocable_v<F&, const AnyArray&, Grads&>) {
    return [f = std::forward<F>(f)](const Tensor& g_out, Grads& g_in) {
      f(g_out.impl()->value, g_in);
    };
  } else {
    return [f = std::forward<F>(f)](const Tensor& g_out, Grads& g_in) {
      std::visit([&](const auto& g) { f(g, g_in); }, g_out.impl()->value);
    };
  }
}
}  // namespace detail

// Records op `op`: `out` was computed from `inputs`; `vjp` adds the gradients of the inputs (in
// this order) from the gradient of `out`; `jvp` gives the tangent of `out` from the inputs'.
// First onto the tape, then the tangents: a jvp rule that reads the output (exp: dy = y dx) must
// find it recorded, so that a gradient of the tangent flows through it.  (The jvp becomes a
// std::function only while forward mode runs: first-order training pays nothing for it.)
template <class V, class J = std::nullptr_t>
void record(const char* op, Tensor& out, const Tensor* const* inputs, std::size_t n,
            std::size_t saved_bytes, V&& vjp, J&& jvp = nullptr) {
  constexpr bool once = !detail::is_tensor_rule<V>;
  if (detail::current_tape() != nullptr)
    detail::record_on_tape(op, out, inputs, n, saved_bytes,
                           detail::to_grad_fn(std::forward<V>(vjp)), once);
  if (detail::forward_mode_on()) {
    JvpFn rule;
    if constexpr (!std::is_same_v<std::decay_t<J>, std::nullptr_t>) rule = std::forward<J>(jvp);
    detail::compute_tangents(op, out, inputs, n, rule, once);
  }
}

template <class V, class J = std::nullptr_t>
void record(const char* op, Tensor& out, std::initializer_list<Tensor> inputs,
            std::size_t saved_bytes, V&& vjp, J&& jvp = nullptr) {
  const Tensor* ptrs[8];
  std::size_t n = 0;
  for (const Tensor& t : inputs) ptrs[n++] = &t;  // ops have at most 8 fixed inputs
  record(op, out, ptrs, n, saved_bytes, std::forward<V>(vjp), std::forward<J>(jvp));
}

template <class V, class J = std::nullptr_t>
void record(const char* op, Tensor& out, const std::vector<Tensor>& inputs, std::size_t saved_bytes,
            V&& vjp, J&& jvp = nullptr) {
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : inputs) ptrs.push_back(&t);
  record(op, out, ptrs.data(), ptrs.size(), saved_bytes, std::forward<V>(vjp),
         std::forward<J>(jvp));
}

// Records an op linear in its one input x (reshape, slice, expand, the skews, the embedding
// gather and scatter, ...): its gradient is the adjoint map applied to g_out, its tangent the op
// itself applied to dx.  Both maps take a Tensor and return one.
template <class Adjoint, class Apply>
void record_linear(const char* op, Tensor& out, const Tensor& x, std::size_t saved_bytes,
                   Adjoint&& adjoint, Apply&& apply) {
  record(
      op, out, {x}, saved_bytes,
      [adjoint = std::forward<Adjoint>(adjoint)](const Tensor& g_out, Grads& g) {
        g.add(0, adjoint(g_out));
      },
      [apply = std::forward<Apply>(apply)](const Tangents& t) { return apply(t[0]); });
}

}  // namespace tg

// The tape: ops recorded in execution order, each with a backward closure.
//
//   tg::Tape tape;
//   {
//     tg::TapeGuard recording(tape);     // this thread now records onto `tape`
//     tg::Tensor loss = tg::sum(x * x);  // mul and sum are appended to the tape
//     loss.backward();                   // replays the tape in reverse: x.grad() == 2 x
//   }
//   std::cout << tape;                   // the listing: op, output shape, bytes saved
//
// backward() walks the tape from the output's op down to the first op.  An op runs only if a
// gradient reached its output; its closure adds (+=) into its inputs' gradients, so a tensor
// used twice receives both contributions.  After an op's closure has run, the tape drops the
// closure and everything it saved, so memory is returned as backward proceeds.  A second
// backward that needs a released op throws instead of computing wrong numbers.
#pragma once

#include <chrono>
#include <cstdint>
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
// A backward closure receives the gradient of the op's output and adds the gradients of the
// op's inputs through `g_in`.
using GradFn = std::function<void(const AnyArray& g_out, Grads& g_in)>;

namespace detail {

struct Node {
  const char* op = "";
  Shape shape;  // of the output
  Dtype dtype = Dtype::f32;
  std::vector<Edge> inputs;
  GradFn backward;
  std::size_t saved_bytes = 0;   // what the closure keeps alive for backward
  std::optional<AnyArray> grad;  // gradient of the output, summed as it arrives
  bool released = false;         // backward has run and dropped the closure
};

struct TapeData : std::enable_shared_from_this<TapeData> {
  std::uint64_t id = 0;  // changes on clear(), so old tensors never point at new ops
  std::vector<Node> nodes;
  std::function<void()> backward_begins;                  // Tape::on_backward
  std::function<void(const TensorImpl& leaf)> leaf_done;  // Tape::on_backward
};

TapeData* current_tape();  // the thread's current tape, or nullptr (no recording)
void record(const char* op, Tensor& out, const Tensor* const* inputs, std::size_t n,
            std::size_t saved_bytes, GradFn backward);
void run_backward(TapeData& tape, const Tensor& out, const Tensor& g_out);
AnyArray output_gradient(const Tensor& out, const Tensor& g_out);
void accumulate_leaf_grad(const char* op, TensorImpl& leaf, AnyArray&& g);

}  // namespace detail

// Gives a backward closure access to its inputs' gradients.
class Grads {
 public:
  Grads(detail::TapeData& tape, std::size_t node) : tape_(tape), node_(node) {}

  // Does input i need a gradient?  (Skip the work when it does not.)
  bool wanted(std::size_t i) const { return tape_.nodes[node_].inputs[i].wanted(); }
  // Adds g into input i's gradient.  g must have input i's shape.
  void add(std::size_t i, AnyArray&& g);
  template <class T>
  void add(std::size_t i, Array<T>&& g) {
    add(i, AnyArray(std::move(g)));
  }

 private:
  detail::TapeData& tape_;
  std::size_t node_;
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
// recorded (the op's own work plus any model code between the two), backward = its closure.
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
  friend void detail::record(const char*, Tensor&, const Tensor* const*, std::size_t, std::size_t,
                             GradFn);
  friend void detail::run_backward(detail::TapeData&, const Tensor&, const Tensor&);
  std::map<std::string, OpTime> ops_;
  std::chrono::steady_clock::time_point mark_;
  detail::ScopedSetting<Profiler*> current_;  // this one, while it lives
};

// ---- for writing ops ---------------------------------------------------------------------

// Should an op with these inputs record itself?  (A tape is current and an input needs grad.)
template <class... Ts>
bool needs_grad(const Ts&... inputs) {
  return detail::current_tape() != nullptr && (inputs.requires_grad() || ...);
}
bool needs_grad(const std::vector<Tensor>& inputs);

// Bytes of the values a backward closure keeps alive (for the tape listing).
template <class... Ts>
std::size_t saved_bytes(const Ts&... saved) {
  return ((saved.numel() * dtype_size(saved.dtype())) + ... + 0);
}

namespace detail {
// Backward closures may be written once for both element types, as a template lambda
// `[..]<class T>(const Array<T>& g_out, Grads& g) {..}`; this wraps one into a GradFn.
template <class F>
GradFn to_grad_fn(F&& f) {
  if constexpr (std::is_invocable_v<F&, const AnyArray&, Grads&>) {
    return GradFn(std::forward<F>(f));
  } else {
    return [f = std::forward<F>(f)](const AnyArray& g_out, Grads& g_in) {
      std::visit([&](const auto& g) { f(g, g_in); }, g_out);
    };
  }
}
}  // namespace detail

// Appends op `op` to the current tape: `out` was computed from `inputs`; `backward` will be
// called with the gradient of `out` and adds the gradients of the inputs (in this order).
template <class F>
void record(const char* op, Tensor& out, std::initializer_list<Tensor> inputs,
            std::size_t saved_bytes, F&& backward) {
  const Tensor* ptrs[8];
  std::size_t n = 0;
  for (const Tensor& t : inputs) ptrs[n++] = &t;  // ops have at most 8 fixed inputs
  detail::record(op, out, ptrs, n, saved_bytes, detail::to_grad_fn(std::forward<F>(backward)));
}

template <class F>
void record(const char* op, Tensor& out, const std::vector<Tensor>& inputs, std::size_t saved_bytes,
            F&& backward) {
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : inputs) ptrs.push_back(&t);
  detail::record(op, out, ptrs.data(), ptrs.size(), saved_bytes,
                 detail::to_grad_fn(std::forward<F>(backward)));
}

}  // namespace tg

// Optimizers: SGD (momentum, weight decay), Adam and AdamW; gradient clipping by global norm.
//
//   tg::nn::AdamW opt(model.named_parameters(), {.lr = 1e-3, .weight_decay = 0.01});
//   ... loss.backward(); tg::nn::clip_grad_norm(model.parameters(), 1.0); opt.step();
//   opt.zero_grad();
//
// Parameters that received no gradient in a step are left alone.  The state (per-parameter
// buffers and the step count) can be saved and loaded for checkpoints that resume exactly.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "../module.hpp"

namespace tg::nn {

using StateDict = std::map<std::string, AnyArray>;  // named arrays, as stored in checkpoints

// For load_state functions (they check everything before they assign anything):
// state[key], which must exist and have `like`'s shape and dtype; errors name `who` and the key.
const AnyArray& state_entry(const char* who, const StateDict& state, const std::string& key,
                            const Tensor& like);
// state[key] as one float64 value >= 0 (a step count, a decay).
double state_scalar(const char* who, const StateDict& state, const std::string& key);

class Optimizer {
 public:
  // `slots`: the per-parameter buffers this optimizer keeps, each starting at zeros.
  Optimizer(NamedTensors params, double lr, std::vector<std::string> slots);
  virtual ~Optimizer() = default;

  void step();  // one update from the current gradients
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr);  // schedules call this before each step
  std::size_t steps() const { return steps_; }
  virtual const char* name() const = 0;
  const NamedTensors& params() const { return params_; }

  // "<slot>.<parameter name>" for every buffer, and "steps".
  StateDict state() const;
  // Checks every name, shape and dtype first; on any mismatch throws and changes nothing.
  void load_state(const StateDict& state);

 protected:
  // Updates parameter i (which has a gradient) for step number `t` (1, 2, ...).
  virtual void update(std::size_t i, std::size_t t) = 0;
  AnyArray& slot(const std::string& name, std::size_t i);

  NamedTensors params_;
  double lr_;

 private:
  std::size_t steps_ = 0;
  std::vector<std::string> slot_names_;
  std::map<std::string, std::vector<AnyArray>> slots_;
};

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;      // v = momentum v + g;  p -= lr v
  double weight_decay = 0.0;  // L2: g += weight_decay p
};

class Sgd : public Optimizer {
 public:
  Sgd(NamedTensors params, const SgdOptions& options);
  const char* name() const override { return "sgd"; }

 private:
  void update(std::size_t i, std::size_t t) override;
  SgdOptions options_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled
  // false: vectors (biases, layer-norm gains and shifts: parameters of one dim) are not decayed,
  // only matrices and embedding tables, as GPT-2 and nanoGPT train.
  bool decay_vectors = true;
};

// Kingma and Ba 2015:
//   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
//   p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
class Adam : public Optimizer {
 public:
  Adam(NamedTensors params, const AdamOptions& options);
  const char* name() const override { return decoupled_ ? "adamw" : "adam"; }

 protected:
  Adam(NamedTensors params, const AdamOptions& options, bool decoupled);

 private:
  void update(std::size_t i, std::size_t t) override;
  AdamOptions options_;
  bool decoupled_;
};

// Loshchilov and Hutter 2019: weight decay decoupled from the gradient,
//   p -= lr weight_decay p, then the Adam step without L2.
class AdamW : public Adam {
 public:
  AdamW(NamedTensors params, const AdamOptions& options) : Adam(std::move(params), options, true) {}
};

// Scales all gradients together so that their global L2 norm is at most max_norm.
// Returns the norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace tg::nn

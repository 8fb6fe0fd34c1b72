// Module: the base of every layer and model.  A module owns parameters (tensors that require
// grad) and submodules, each registered under a name, so that
//
//   model.named_parameters()  ->  {"encoder.0.attn.qkv.weight", tensor}, ...
//
// walks the whole tree in registration order.  Submodules are ordinary members, registered by
// reference, so a module is neither copied nor moved (construct it where it lives).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "../autograd/forward.hpp"
#include "../autograd/runtime/generator.hpp"
#include "../autograd/tensor.hpp"

namespace tg::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  NamedTensors named_parameters() const;  // hierarchical names, registration order
  // Buffers: state that is not trained (no gradient, no optimizer) but belongs to the model,
  // such as the random features of kernelized attention.
  NamedTensors named_buffers() const;
  // What a model file or checkpoint stores: the parameters, then the buffers.
  NamedTensors named_tensors() const;
  std::vector<Tensor> parameters() const;
  std::size_t parameter_count() const;  // trainable scalars

  // Training mode (dropout active) or evaluation mode, for this module and every submodule.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Activation checkpointing, for this module and every submodule: a module made of blocks (the
  // transformer stacks) then records each block as one op that keeps only its inputs, and
  // backward computes the block again (nn::checkpoint below).  Less memory, one more forward
  // pass of the blocks; the same gradients, to the bit.
  void set_checkpointing(bool on = true);
  bool is_checkpointing() const { return checkpointing_; }
  // The generators this module and its submodules draw from in forward (dropout's), each once,
  // in registration order.
  std::vector<Generator*> generators() const;

  void zero_grad();
  // Converts every parameter and buffer to `dtype` in place: tensors held elsewhere see the
  // change.  Parameters lose their gradients.
  // (gradcheck a module in float64: model.to(Dtype::f64).)
  void to(Dtype dtype);

 protected:
  // Fails naming `layer` when x's dtype is not the one of this module's parameters (a float64
  // input to a float32 layer), before an op deep inside forward would.
  void check_input_dtype(const char* layer, const Tensor& x) const;
  // Registers `t` as a parameter (it becomes a leaf that requires grad, named `name` in tape
  // listings; registering this module in another prefixes the names) and returns it.
  Tensor register_parameter(const std::string& name, Tensor t);
  // Registers `t` as a buffer: saved and loaded with the parameters and converted by to(), but
  // never given a gradient or trained.  Returns it.
  Tensor register_buffer(const std::string& name, Tensor t);
  // Declares that forward draws from `gen` (for generators(): checkpointing replays them).
  void draws_from(Generator& gen);
  // Registers a submodule; it must live as long as this module (normally: a member).
  void register_module(const std::string& name, Module& child);
  // Registers a submodule whose parameters keep their own names, without a prefix: a wrapper
  // that holds one model (an ensemble of one) and must read that model's files.
  void adopt(Module& child);

 private:
  void check_new_name(const std::string& name) const;
  const Tensor* first_parameter() const;  // nullptr when there is none
  void collect(const std::string& prefix, bool buffers, NamedTensors& out) const;

  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  std::vector<Generator*> generators_;
  bool training_ = true;
  bool checkpointing_ = false;
};

// Evaluation mode for a scope (no dropout, CAPE's plain positions), and back to the mode the
// module had at its end (also when the scope throws):
//   { EvalMode eval(model); ... model.forward(x) ... }
class EvalMode {
 public:
  explicit EvalMode(Module& m) : module_(m), was_training_(m.is_training()) { m.eval(); }
  ~EvalMode() { module_.train(was_training_); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  Module& module_;
  bool was_training_;
};

// tg::checkpoint (autograd/activation_checkpoint.hpp) of a segment that runs `segment` (a
// transformer block): fn receives `inputs` followed by segment's parameters, and the generators
// segment draws from are replayed.  fn may read no other tensor that requires grad.
//   const auto f = [&block](const std::vector<Tensor>& in) { return block(in[0]); };
//   Tensor h = nn::checkpoint(block, f, {x});
Tensor checkpoint(const Module& segment, const Function& fn, std::vector<Tensor> inputs);

// A module that maps one tensor to one tensor: what Sequential chains.
class Layer : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

}  // namespace tg::nn

#include "module.hpp"

#include <algorithm>

#include "../autograd/activation_checkpoint.hpp"
#include "../autograd/shape.hpp"

namespace tg::nn {

void Module::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos)
    fail("Module", "name '" + name + "' must be non-empty and contain no '.'");
  for (const auto& [n, t] : params_)
    if (n == name) fail("Module", "name '" + name + "' is already a parameter");
  for (const auto& [n, t] : buffers_)
    if (n == name) fail("Module", "name '" + name + "' is already a buffer");
  for (const auto& [n, m] : children_)
    if (n == name) fail("Module", "name '" + name + "' is already a submodule");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name);
  if (!t.defined()) fail("Module", "parameter '" + name + "' is an undefined tensor");
  if (!t.is_leaf()) t = t.detach();
  t.set_requires_grad(true);
  t.set_name(name);  // the tape listing shows it by this name, prefixed as modules take it in
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name);
  if (!t.defined()) fail("Module", "buffer '" + name + "' is an undefined tensor");
  t = t.detach();
  t.set_name(name);
  buffers_.emplace_back(name, t);
  return t;
}

void Module::register_module(const std::string& name, Module& child) {
  check_new_name(name);
  if (&child == this) fail("Module", "a module cannot be its own submodule");
  children_.emplace_back(name, &child);
  // Name the child's parameters from here: "weight" -> "fc.weight"; registered in turn, this
  // module prefixes them again, so a model's tape lists "encoder.0.attn.in_proj.weight".
  for (auto& [child_name, t] : child.named_tensors()) Tensor(t).set_name(name + "." + child_name);
}

const Tensor* Module::first_parameter() const {
  if (!params_.empty()) return &params_.front().second;
  for (const auto& [name, child] : children_)
    if (const Tensor* p = child->first_parameter()) return p;
  return nullptr;
}

void Module::check_input_dtype(const char* layer, const Tensor& x) const {
  const Tensor* p = first_parameter();
  if (!p || !x.defined() || x.dtype() == p->dtype()) return;
  fail(layer, std::string("the input is ") + dtype_name(x.dtype()) + " but the parameters are " +
                  dtype_name(p->dtype()) +
                  "; convert one of them: x.to(dtype), or module.to(dtype)");
}

void Module::adopt(Module& child) {
  if (&child == this) fail("Module", "a module cannot adopt itself");
  children_.emplace_back("", &child);
}

void Module::collect(const std::string& prefix, bool buffers, NamedTensors& out) const {
  for (const auto& [name, t] : buffers ? buffers_ : params_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_)
    child->collect(name.empty() ? prefix : prefix + name + ".", buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_tensors() const {
  NamedTensors out = named_parameters();
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

std::size_t Module::parameter_count() const {
  std::size_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::set_checkpointing(bool on) {
  checkpointing_ = on;
  for (auto& [name, child] : children_) child->set_checkpointing(on);
}

void Module::draws_from(Generator& gen) {
  if (std::find(generators_.begin(), generators_.end(), &gen) == generators_.end())
    generators_.push_back(&gen);
}

std::vector<Generator*> Module::generators() const {
  std::vector<Generator*> out = generators_;
  for (const auto& [name, child] : children_)
    for (Generator* g : child->generators())
      if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
  return out;
}

Tensor checkpoint(const Module& segment, const Function& fn, std::vector<Tensor> inputs) {
  for (const Tensor& p : segment.parameters()) inputs.push_back(p);
  return tg::checkpoint(fn, inputs, {.generators = segment.generators()});
}

void Module::zero_grad() {
  for (Tensor& t : parameters()) t.zero_grad();
}

void Module::to(Dtype dtype) {
  for (Tensor& t : parameters()) {
    if (t.dtype() == dtype) continue;
    t.impl()->value = t.to(dtype).impl()->value;
    t.zero_grad();
  }
  for (auto& [name, t] : named_buffers())
    if (t.dtype() != dtype) t.impl()->value = t.to(dtype).impl()->value;
}

}  // namespace tg::nn

#include "checkpoint.hpp"

#include <map>
#include <stdexcept>

#include "npz.hpp"

namespace tg::nn {
namespace {

constexpr const char* kFormat = "tapegrad-checkpoint 1";

std::map<std::string, const NpyArray*> by_name(const NpzEntries& entries) {
  std::map<std::string, const NpyArray*> m;
  for (const auto& [name, a] : entries) m[name] = &a;
  return m;
}

// Matches a file's arrays (those under `prefix`) to the model's parameters and buffers.  Returns
// the new values in parameter order, or throws listing every problem.  float32 and float64 convert.
std::vector<AnyArray> match_parameters(const std::string& path, const Module& model,
                                       const NpzEntries& entries, const std::string& prefix) {
  std::vector<std::string> problems;
  std::vector<AnyArray> values;
  auto files = by_name(entries);
  for (const auto& [name, p] : model.named_tensors()) {
    auto it = files.find(prefix + name);
    if (it == files.end()) {
      problems.push_back("missing '" + name + "' " + shape_str(p.shape()));
      continue;
    }
    const NpyArray& a = *it->second;
    files.erase(it);
    if (a.shape != p.shape()) {
      problems.push_back("'" + name + "' has shape " + shape_str(a.shape) +
                         " in the file, the model expects " + shape_str(p.shape()));
      continue;
    }
    AnyArray v = npy_to_array(a, path + ": '" + name + "'");
    if (v.index() != p.impl()->value.index())  // float32 <-> float64
      v = std::visit(
          [dtype = p.dtype()](const auto& x) { return Tensor(x).to(dtype).impl()->value; }, v);
    values.push_back(std::move(v));
  }
  for (const auto& [name, a] : files)
    if (name.rfind(prefix, 0) == 0)
      problems.push_back("unexpected '" + name.substr(prefix.size()) + "' " + shape_str(a->shape));
  if (!problems.empty()) {
    std::string msg = path + ": the parameters do not match the model:";
    for (const auto& p : problems) msg += "\n  " + p;
    throw std::runtime_error(msg);
  }
  return values;
}

void assign(Module& model, std::vector<AnyArray>& values) {
  std::size_t i = 0;
  for (auto& [name, p] : model.named_tensors()) p.impl()->value = std::move(values[i++]);
}

}  // namespace

NpzEntries parameter_entries(const Module& model, const std::string& prefix) {
  NpzEntries entries;
  for (const auto& [name, p] : model.named_tensors())
    entries.emplace_back(prefix + name, to_npy(p.impl()->value));
  return entries;
}

void load_parameters(Module& model, const NpzEntries& entries, const std::string& path,
                     const std::string& prefix) {
  std::vector<AnyArray> values = match_parameters(path, model, entries, prefix);
  assign(model, values);
}

void save_parameters(const Module& model, const std::string& path) {
  write_npz(path, parameter_entries(model));
}

void load_parameters(Module& model, const std::string& path) {
  load_parameters(model, read_npz(path), path);
}

void save_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer,
                     const Generator& gen, std::size_t step, const NpzEntries& extra) {
  NpzEntries entries;
  entries.emplace_back("meta/format", text_to_npy(kFormat));
  entries.emplace_back("meta/step", int_to_npy(static_cast<std::int64_t>(step)));
  entries.emplace_back("meta/generator", text_to_npy(gen.state()));
  entries.emplace_back("meta/optimizer", text_to_npy(optimizer.name()));
  for (auto& entry : parameter_entries(model, "param/")) entries.push_back(std::move(entry));
  for (const auto& [name, a] : extra) entries.emplace_back("extra/" + name, a);
  for (const auto& [key, value] : optimizer.state())
    entries.emplace_back("optim/" + key, to_npy(value));
  write_npz(path, entries);
}

std::size_t load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer,
                            Generator& gen, NpzEntries* extra) {
  const NpzEntries entries = read_npz(path);
  const auto files = by_name(entries);
  const auto need = [&](const std::string& name) -> const NpyArray& {
    auto it = files.find(name);
    if (it == files.end())
      throw std::runtime_error(path + ": not a tapegrad checkpoint (no '" + name + "')");
    return *it->second;
  };
  const std::string format = npy_to_text(need("meta/format"), path + ": 'meta/format'");
  if (format != kFormat)
    throw std::runtime_error(path + ": checkpoint format '" + format + "', this tapegrad reads '" +
                             kFormat + "'");
  const std::string kind = npy_to_text(need("meta/optimizer"), path + ": 'meta/optimizer'");
  if (kind != optimizer.name())
    throw std::runtime_error(path + ": the checkpoint's optimizer is " + kind + ", this run uses " +
                             optimizer.name());
  const std::int64_t step = npy_to_int(need("meta/step"), path + ": 'meta/step'");
  if (step < 0) throw std::runtime_error(path + ": 'meta/step' is negative");
  const std::string gen_state = npy_to_text(need("meta/generator"), path + ": 'meta/generator'");

  std::vector<AnyArray> values = match_parameters(path, model, entries, "param/");
  StateDict state;
  for (const auto& [name, a] : entries)
    if (name.rfind("optim/", 0) == 0)
      state[name.substr(6)] = npy_to_array(a, path + ": '" + name + "'");

  // Check the rest before changing anything: the generator state, then the optimizer (whose
  // load_state checks everything before it assigns).  Nothing after that can fail.
  try {
    Generator check;
    check.set_state(gen_state);
    optimizer.load_state(state);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  assign(model, values);
  gen.set_state(gen_state);
  if (extra) {
    extra->clear();
    for (const auto& [name, a] : entries)
      if (name.rfind("extra/", 0) == 0) extra->emplace_back(name.substr(6), a);
  }
  return static_cast<std::size_t>(step);
}

}  // namespace tg::nn

// Saving and loading models and training runs, as NumPy .npz files.
//
//   save_parameters(model, "model.npz");   // Python: numpy.load("model.npz")["fc.weight"]
//   load_parameters(model, "model.npz");
//
//   save_checkpoint("run.ckpt.npz", model, optimizer, gen, step);
//   std::size_t step = load_checkpoint("run.ckpt.npz", model, optimizer, gen);
//
// "Parameters" in files means Module::named_tensors(): the parameters and the buffers (state
// that is not trained, such as random features), each under its module name.
//
// A training checkpoint holds the parameters ("param/<name>"), the optimizer's state
// ("optim/<slot>.<name>", "optim/steps"), the step, the generator's state and a format tag, so
// that training resumed from it continues exactly as if it had not stopped.
//
// Loading is all or nothing: every name, shape and dtype is checked first, and any problem
// (missing or unexpected names, shape mismatches, a truncated or corrupt file, another
// optimizer) throws with all of them listed, leaving the model, optimizer and generator as they
// were.  Saving writes a temporary file and renames it into place.
#pragma once

#include <string>

#include "../../autograd/runtime/generator.hpp"
#include "../module.hpp"
#include "npz.hpp"
#include "optim.hpp"

namespace tg::nn {

void save_parameters(const Module& model, const std::string& path);
void load_parameters(Module& model, const std::string& path);

// `extra` entries (a program's own state: vocabularies, epoch, history) are stored under
// "extra/" and handed back by load_checkpoint.
void save_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer,
                     const Generator& gen, std::size_t step, const NpzEntries& extra = {});
std::size_t load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer,
                            Generator& gen, NpzEntries* extra = nullptr);

// For files that hold more than parameters (a model with its vocabularies and settings):
// the parameter entries of `model` under `prefix`, and loading them back from entries already
// read (all or nothing, as load_parameters).  `path` names the file in errors.
NpzEntries parameter_entries(const Module& model, const std::string& prefix = "");
void load_parameters(Module& model, const NpzEntries& entries, const std::string& path,
                     const std::string& prefix = "");

}  // namespace tg::nn

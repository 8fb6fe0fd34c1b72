// Saving and loading models and training runs, as NumPy .npz files.
//
//   save_parameters(model, "model.npz");   // Python: numpy.load("model.npz")["fc.weight"]
//   load_parameters(model, "model.npz");
//
//   save_checkpoint("run.ckpt.npz", model, optimizer, gen, step);
//   std::size_t step = load_checkpoint("run.ckpt.npz", model, optimizer, gen);
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

#include "../autograd/generator.hpp"
#include "module.hpp"
#include "optim.hpp"

namespace tg::nn {

void save_parameters(const Module& model, const std::string& path);
void load_parameters(Module& model, const std::string& path);

void save_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer,
                     const Generator& gen, std::size_t step);
std::size_t load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer,
                            Generator& gen);

}  // namespace tg::nn

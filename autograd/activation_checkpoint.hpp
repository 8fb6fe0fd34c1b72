// Activation checkpointing: memory traded for time.  A segment of the forward pass (a transformer
// block) is recorded as one op that keeps only its inputs; backward computes the segment again
// from them and differentiates that.
//
//   Tensor h = tg::checkpoint([&](const std::vector<Tensor>& in) { return block(in[0]); },
//                             {x, w1, b1, w2, b2}, {.generators = {&gen}});
//
// What the segment reads that requires grad must be among `inputs` (parameters too: a module's
// code reads them from the module, the checkpoint needs to know them).  nn::checkpoint
// (nn/module.hpp) passes a module's parameters and generators for you.
//
// The forward runs fn without recording anything inside it, and records one op, "checkpoint",
// holding the inputs.  Its rule runs fn again, from the generators' states of the forward (so
// dropout draws the same masks), recording onto the tape of the backward pass, and runs the rules
// of what it recorded right there, inside the same pass (Grads::recompute, tape.hpp).  So each
// gradient is summed from the same terms in the same order as without checkpointing: the
// gradients are equal to the bit.  The generators are left as they were before the recompute.
// With create_graph the recomputed ops and their rules stay on the tape, so the gradients can be
// differentiated again, to any order; and tg::grad works as backward() does.
//
// Checks: a draw from a generator not in options.generators while fn runs throws (at once); the
// recomputed output must have the bits of the forward's (a digest of them is kept), so a
// parameter changed in place between forward and backward, or training mode switched, throws
// instead of giving wrong gradients; an op inside that reads a tensor requiring grad that is not
// an input throws in backward, naming it.
//
// Where nothing is to be saved, fn just runs: with no tape recording, or when the inputs carry
// forward-mode tangents (tg::jvp, tg::hvp: then the segment is recorded op by op, as without
// checkpointing, so every derivative of it works; no memory is saved there).
#pragma once

#include <vector>

#include "forward.hpp"
#include "runtime/generator.hpp"
#include "tensor.hpp"

namespace tg {

struct CheckpointOptions {
  // Every generator fn draws from (dropout's): their states are kept at the forward and put back
  // for the recompute.
  std::vector<Generator*> generators;
};

// fn(inputs), recorded as one op that keeps only `inputs` (see above).  fn is kept until the
// backward, so what it captures must live as long (capture by value); it must compute the same
// values from the same inputs and generator states, and keep nothing it computes (a cache, an
// attention-weights output): backward runs it again.
Tensor checkpoint(const Function& fn, const std::vector<Tensor>& inputs,
                  const CheckpointOptions& options = {});

}  // namespace tg

#include "activation_checkpoint.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "tape.hpp"

namespace tg {
namespace {

// One step of the digest below: FNV-1a's on a 64-bit word, with a rotation so that high bits
// reach low ones.  A bijection of h for each w, so one differing word always shows.
std::uint64_t mix(std::uint64_t h, std::uint64_t w) {
  h = (h ^ w) * 0x100000001b3ull;
  return (h << 29) | (h >> 35);
}

// A digest of a tensor's bits, so that the recompute can be compared with the forward without
// keeping the forward's output: four lanes over the 64-bit words (they run side by side), then
// the lanes and the bytes left over into one.
std::uint64_t digest(const Tensor& t) {
  return std::visit(
      [](const auto& a) {
        const auto* bytes = reinterpret_cast<const unsigned char*>(a.data());
        const std::size_t n = a.size() * sizeof(*a.data());
        std::uint64_t lane[4] = {0xcbf29ce484222325ull ^ n, 1, 2, 3};
        std::size_t i = 0;
        for (; i + 32 <= n; i += 32) {
          std::uint64_t w[4];
          std::memcpy(w, bytes + i, 32);
          for (int k = 0; k < 4; ++k) lane[k] = mix(lane[k], w[k]);
        }
        std::uint64_t h = mix(mix(mix(lane[0], lane[1]), lane[2]), lane[3]);
        for (; i < n; ++i) h = mix(h, bytes[i]);
        return h;
      },
      t.impl()->value);
}

// While it lives, `gens` are in the states `forward` (the forward's); after, they are back where
// they were, so backward leaves the training run's stream of numbers alone.
class Replay {
 public:
  Replay(const std::vector<Generator*>& gens, const std::vector<Generator>& forward) : gens_(gens) {
    for (std::size_t i = 0; i < gens.size(); ++i) {
      now_.push_back(*gens[i]);
      *gens[i] = forward[i];
    }
  }
  ~Replay() {
    for (std::size_t i = gens_.size(); i-- > 0;) *gens_[i] = now_[i];
  }
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

 private:
  const std::vector<Generator*>& gens_;
  std::vector<Generator> now_;
};

// fn(inputs) with draws allowed from `gens` only (detail::replayable).  Inside another
// checkpoint's segment, `gens` must be generators that one replays too.
Tensor run_drawing_from(const std::vector<Generator*>& gens, const Function& fn,
                        const std::vector<Tensor>& inputs) {
  if (const auto* outer = detail::replayable)
    for (std::size_t i = 0; i < gens.size(); ++i)
      if (std::find(outer->begin(), outer->end(), gens[i]) == outer->end())
        fail("checkpoint", "generator " + std::to_string(i) +
                               " is not one that the enclosing checkpoint replays; pass it to that "
                               "one too");
  detail::ScopedSetting<const std::vector<Generator*>*> only(detail::replayable, &gens);
  Tensor y = fn(inputs);
  if (!y.defined()) fail("checkpoint", "the segment returned an undefined tensor");
  return y;
}

}  // namespace

Tensor checkpoint(const Function& fn, const std::vector<Tensor>& inputs,
                  const CheckpointOptions& options) {
  if (!fn) fail("checkpoint", "no function given");
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined())
      fail("checkpoint", "input " + std::to_string(i) + " is an undefined tensor");
  const std::vector<Generator*>& gens = options.generators;
  for (std::size_t i = 0; i < gens.size(); ++i)
    if (gens[i] == nullptr) fail("checkpoint", "generator " + std::to_string(i) + " is null");

  detail::TapeData* tape = detail::current_tape();
  const bool tangents =
      detail::forward_mode_on() && std::any_of(inputs.begin(), inputs.end(), detail::has_tangent);
  if (tape == nullptr || tangents) return fn(inputs);  // nothing to save (see the header)
  if (std::none_of(inputs.begin(), inputs.end(),
                   [](const Tensor& x) { return x.requires_grad(); })) {
    // No gradient goes back through the inputs, so there is nothing to keep; but an op inside
    // that records reads something that requires grad, which would be an input.
    const std::size_t first = tape->nodes.size();
    Tensor y = fn(inputs);
    detail::check_reads("checkpoint", *tape, first, {});
    return y;
  }

  std::vector<Generator> states;  // as the forward found them, for the recompute
  for (Generator* g : gens) states.push_back(*g);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = run_drawing_from(gens, fn, inputs);
  }
  if (y.impl().use_count() > 1) y = y.detach();  // an input, or held elsewhere: record a copy
  std::size_t bytes = 0;  // what the op keeps alive: the inputs (leaves are alive anyway)
  for (const Tensor& x : inputs)
    if (!x.is_leaf()) bytes += saved_bytes(x);
  // The rule: the segment again, from the forward's generator states, run backward in this pass.
  record("checkpoint", y, inputs, bytes,
         [fn, inputs, gens, states = std::move(states), bits = digest(y)](const Tensor& g_y,
                                                                          Grads& g) {
           g.recompute(
               [&] {
                 const Replay replay(gens, states);
                 Tensor again = run_drawing_from(gens, fn, inputs);
                 if (digest(again) != bits)
                   fail("checkpoint",
                        "the segment, computed again in backward, gave other values than in the "
                        "forward: something it reads changed in between (a parameter updated in "
                        "place, training mode switched), or it draws from a generator it was not "
                        "given; its gradients would not be the forward's");
                 return again;
               },
               g_y);
         });
  return y;
}

}  // namespace tg

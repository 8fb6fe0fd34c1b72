// Swapping positional schemes in one model: a tiny encoder learns to copy, at each position,
// the token one step to its left -- a task that needs to know where tokens are.  The model
// takes its scheme as an option; everything else stays the same.
//
//   build/examples/position_schemes [steps]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

using namespace tg;
using namespace tg::nn;

constexpr std::size_t kVocab = 12, kDim = 32, kLen = 12, kBatch = 32;

// Embeddings, then positions (absolute: added to the embeddings; relative: inside attention),
// then an encoder and a per-token classifier.
class Tagger : public Module {
 public:
  Tagger(PositionScheme scheme, Generator& gen)
      : embed({.vocab = kVocab, .dim = kDim, .init_std = 1.0 / std::sqrt(double(kDim))}, gen),
        encoder({.d_model = kDim, .heads = 2, .ff = 64, .layers = 2, .dropout = 0.0, .attention_dropout = 0.0,
                 .relative_k = scheme == PositionScheme::relative ? 4u : 0u,
                 .attention_positions = attention_positions(scheme)}, gen),  // rope, alibi, t5
        head(kDim, kVocab, gen) {
    // nullptr for none and the schemes inside attention.  (The MLP sees position / scale: scale it to the lengths used.)
    positions = make_positional_encoding({.scheme = scheme, .dim = kDim, .mlp_scale = kLen}, gen);
    register_module("embed", embed);
    if (positions) register_module("positions", *positions);
    register_module("encoder", encoder);
    register_module("head", head);
  }

  // ids: (B, T) -> logits (B, T, V)
  Tensor forward(const Ids& ids) {
    Tensor x = embed(ids) * std::sqrt(static_cast<double>(kDim));
    if (positions) x = positions->forward(x);
    return head(encoder.forward(x));
  }

  Embedding embed;
  std::unique_ptr<PositionalEncoding> positions;
  Encoder encoder;
  Linear head;
};

// Random tokens 1..V-1; the target at position t is the token at t - 1 (position 0: itself).
void make_batch(Generator& gen, Ids& ids, Ids& targets) {
  ids = Ids::from_shape({kBatch, kLen});
  targets = Ids::from_shape({kBatch, kLen});
  for (std::size_t b = 0; b < kBatch; ++b)
    for (std::size_t t = 0; t < kLen; ++t) {
      ids(b, t) = 1 + static_cast<std::int64_t>(gen.below(kVocab - 1));
      targets(b, t) = ids(b, t == 0 ? 0 : t - 1);
    }
}

int main(int argc, char** argv) {
  CLI::App app{"position_schemes: each positional encoding learns to copy the previous token", "position_schemes"};
  app.option_defaults()->always_capture_default();
  int steps = 300;
  app.add_option("--steps", steps, "Adam steps per scheme")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  std::printf("task: copy the previous token; %d Adam steps per scheme, batch %zu x %zu\n\n",
              steps, kBatch, kLen);
  std::printf("%-11s %8s %10s %8s\n", "scheme", "params", "accuracy", "seconds");
  for (auto scheme : {PositionScheme::none, PositionScheme::sinusoidal, PositionScheme::learned,
                      PositionScheme::mlp, PositionScheme::fourier, PositionScheme::relative, PositionScheme::rope,
                      PositionScheme::alibi, PositionScheme::t5, PositionScheme::xl, PositionScheme::cape,
                      PositionScheme::gaussian}) {
    Generator gen(1);
    Tagger model(scheme, gen);
    Adam opt(model.named_parameters(), {.lr = 3e-3});
    Tape tape;
    Ids ids, targets;
    const auto start = std::chrono::steady_clock::now();
    for (int step = 0; step < steps; ++step) {
      make_batch(gen, ids, targets);
      tape.clear();
      TapeGuard recording(tape);
      cross_entropy(model.forward(ids), targets).backward();
      opt.step();
      opt.zero_grad();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    NoGradGuard no_grad;
    std::size_t right = 0, total = 0;
    for (int b = 0; b < 10; ++b) {
      make_batch(gen, ids, targets);
      const Tensor logits = model.forward(ids);
      for (std::size_t i = 0; i < targets.size(); ++i, ++total) {
        const float* row = logits.data<float>().data() + i * kVocab;
        right += static_cast<std::int64_t>(std::max_element(row, row + kVocab) - row) == targets.data()[i];
      }
    }
    std::printf("%-11s %8zu %9.1f%% %8.1f\n", position_scheme_name(scheme), model.parameter_count(),
                100.0 * right / total, seconds);
  }
  return 0;
}

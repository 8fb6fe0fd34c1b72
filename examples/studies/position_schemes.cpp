// Swapping positional schemes in one model: a tiny encoder learns to copy, at each position,
// the token k steps to its left -- a task that needs to know where tokens are -- and, with
// --test-lens, is tested on sequences longer than any it trained on.  The model
// takes its scheme as an option; everything else stays the same.
//
//   build/examples/position_schemes [--steps 300] [--k 1] [--train-len 12] [--min-len 12]
//   [--test-lens 64 128 256]
//                                   [--svg accuracy.svg]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

using namespace tg;
using namespace tg::nn;

constexpr std::size_t kVocab = 12, kDim = 32, kBatch = 32;

// Embeddings, then positions (absolute: added to the embeddings; the others: inside attention,
// which takes the scheme as it is), then an encoder and a per-token classifier.
class Tagger : public Module {
 public:
  Tagger(PositionScheme scheme, std::size_t train_len, Generator& gen)
      : embed({.vocab = kVocab, .dim = kDim, .init_std = 1.0 / std::sqrt(double(kDim))}, gen),
        encoder({.d_model = kDim,
                 .heads = 2,
                 .ff = 64,
                 .layers = 2,
                 .dropout = 0.0,
                 .attention_dropout = 0.0,
                 .positions = scheme,
                 .relative_k = 4},
                gen),  // relative_k: relative's offsets
        head(kDim, kVocab, gen) {
    // nullptr for none and the schemes inside attention.  (The MLP sees position / scale: scale it
    // to the lengths used.)
    positions = make_positional_encoding(
        {.scheme = scheme, .dim = kDim, .mlp_scale = double(train_len)}, gen);
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

// Random tokens 1..V-1 in sequences of `length`; the target at position t is the token k
// places to its left (positions t < k: the token itself).
void make_batch(Generator& gen, std::size_t length, std::size_t k, Ids& ids, Ids& targets) {
  ids = Ids::from_shape({kBatch, length});
  targets = Ids::from_shape({kBatch, length});
  for (std::size_t b = 0; b < kBatch; ++b)
    for (std::size_t t = 0; t < length; ++t)
      ids(b, t) = 1 + static_cast<std::int64_t>(gen.below(kVocab - 1));
  for (std::size_t b = 0; b < kBatch; ++b)
    for (std::size_t t = 0; t < length; ++t) targets(b, t) = ids(b, t < k ? t : t - k);
}

// Accuracy on the positions t >= k of sequences of `length`.
double accuracy(Tagger& model, Generator& gen, std::size_t length, std::size_t k) {
  NoGradGuard no_grad;
  std::size_t right = 0, total = 0;
  Ids ids, targets;
  for (int b = 0; b < 4; ++b) {
    make_batch(gen, length, k, ids, targets);
    const Tensor logits = model.forward(ids);
    for (std::size_t i = 0; i < targets.size(); ++i) {
      if (i % length < k) continue;
      const float* row = logits.data<float>().data() + i * kVocab;
      right +=
          static_cast<std::int64_t>(std::max_element(row, row + kVocab) - row) == targets.data()[i];
      ++total;
    }
  }
  return 100.0 * right / total;
}

int main(int argc, char** argv) {
  CLI::App app{"position_schemes: each positional encoding learns to copy the token k places back",
               "position_schemes"};
  app.option_defaults()->always_capture_default();
  int steps = 300;
  std::size_t k = 1, train_len = 12, min_len = 0;
  std::vector<std::size_t> test_lens;
  std::string svg;
  app.add_option("--steps", steps, "Adam steps per scheme")->check(CLI::PositiveNumber);
  app.add_option("--k", k, "copy the token this many places back")->check(CLI::PositiveNumber);
  app.add_option("--train-len", train_len, "the longest training sequences")
      ->check(CLI::PositiveNumber);
  app.add_option("--min-len", min_len,
                 "the shortest training sequences (0: all are --train-len long)");
  app.add_option("--test-lens", test_lens,
                 "also test at these lengths (extrapolation), e.g. 64 128 256");
  app.add_option("--svg", svg, "draw the accuracies as grouped bars");
  CLI11_PARSE(app, argc, argv);
  if (min_len == 0) min_len = train_len;
  if (train_len <= k || min_len <= k || min_len > train_len) {
    std::fprintf(stderr,
                 "position_schemes: need --k < --min-len <= --train-len, got %zu, %zu, %zu\n", k,
                 min_len, train_len);
    return 1;
  }
  std::printf(
      "task: copy the token %zu back; %d Adam steps per scheme, batches of %zu, lengths "
      "%zu..%zu%s\n\n",
      k, steps, kBatch, min_len, train_len,
      test_lens.empty() ? "" : "; accuracy at longer lengths after");
  std::printf("%-11s %8s %10s", "scheme", "params", "accuracy");
  for (std::size_t len : test_lens) std::printf(" %7s%-4zu", "at ", len);
  std::printf(" %8s\n", "seconds");
  std::vector<std::string> names;
  std::vector<std::vector<double>>
      table;  // accuracy at the training length, then at each test length
  for (const auto& [scheme, scheme_name] : enum_table(PositionScheme{}).values) {
    Generator gen(1);
    Tagger model(scheme, train_len, gen);
    Adam opt(model.named_parameters(), {.lr = 3e-3});
    Tape tape;
    Ids ids, targets;
    const auto start = std::chrono::steady_clock::now();
    for (int step = 0; step < steps; ++step) {
      make_batch(gen, min_len + gen.below(train_len - min_len + 1), k, ids, targets);
      tape.clear();
      TapeGuard recording(tape);
      cross_entropy(model.forward(ids), targets).backward();
      opt.step();
      opt.zero_grad();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    model.eval();
    names.push_back(scheme_name);
    table.push_back({accuracy(model, gen, train_len, k) / 100});
    std::printf("%-11s %8zu %9.1f%%", names.back().c_str(), model.parameter_count(),
                100 * table.back()[0]);
    for (std::size_t len : test_lens) {
      try {
        table.back().push_back(accuracy(model, gen, len, k) / 100);
        std::printf(" %10.1f%%", 100 * table.back().back());
      } catch (const std::exception&) {
        table.back().push_back(0);          // drawn as no bar
        std::printf(" %11s", "undefined");  // learned positions past their table
      }
    }
    std::printf(" %8.1f\n", seconds);
  }
  if (!svg.empty()) {
    std::vector<std::string> lengths = {"trained (" + std::to_string(min_len) + "-" +
                                        std::to_string(train_len) + ")"};
    for (std::size_t len : test_lens) lengths.push_back("at " + std::to_string(len));
    tg::models::write_bars_svg(
        svg, names, lengths, table,
        "copying the token " + std::to_string(k) + " back: accuracy by sequence length");
    std::printf("\ndrew %s\n", svg.c_str());
  }
  return 0;
}

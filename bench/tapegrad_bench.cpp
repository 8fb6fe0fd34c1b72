// The training-step benchmark: the four workloads of docs/speed.md (tiny, tagger, sentiment, translation), built with
// tapegrad's own models, timed like bench/torch_reference.py (the same models in PyTorch) and
// printed as the same JSON line, so that bench/compare.py can run both side by side:
//
//   /usr/bin/python3 bench/compare.py -- build/bench/tapegrad-bench
//   build/bench/tapegrad-bench --workload tagger --threads 1 --steps 10 --warmup 3
//
// One step: zero grads, forward, loss, backward, AdamW update, on a fixed random batch.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <xtensor/xview.hpp>

#include "tapegrad.hpp"

using namespace tg;

namespace {

struct Workload {
  std::function<Tensor()> loss;  // forward and loss of the fixed batch
  nn::Module* model = nullptr;
  std::size_t tokens = 0;  // non-padding tokens per step
};

// Random ids in [1, vocab) with each row's length uniform in [T/2, T], padding (0) after it.
Ids padded_tokens(Generator& gen, std::size_t batch, std::size_t T, std::size_t vocab) {
  Ids ids = xt::zeros<std::int64_t>({batch, T});
  for (std::size_t b = 0; b < batch; ++b) {
    const std::size_t len = T / 2 + gen.below(T - T / 2 + 1);
    for (std::size_t t = 0; t < len; ++t) ids(b, t) = 1 + static_cast<std::int64_t>(gen.below(vocab - 1));
  }
  return ids;
}

std::size_t count_real(const Ids& ids) {
  return static_cast<std::size_t>(std::count_if(ids.begin(), ids.end(), [](std::int64_t id) { return id != 0; }));
}

// Owns the models and batches of every workload (modules can't move, so they live here).
struct Bench {
  Generator gen{0};
  std::unique_ptr<models::Tagger> tagger;
  std::unique_ptr<models::Classifier> classifier;
  std::unique_ptr<models::Translator> translator;
  Ids a, b, c;

  Workload make(const std::string& name) {
    if (name == "tiny" || name == "tagger") {
      const bool tiny = name == "tiny";
      const std::size_t vocab = tiny ? 100 : 20000, tags = tiny ? 8 : 18, batch = tiny ? 4 : 32, T = tiny ? 8 : 48;
      tagger = std::make_unique<models::Tagger>(
          models::TaggerOptions{.encoder = {.vocab = vocab, .d_model = tiny ? 32u : 128u, .heads = tiny ? 2u : 4u,
                                            .ff = tiny ? 64u : 512u, .layers = tiny ? 1u : 2u, .dropout = 0.1,
                                            .relative_k = tiny ? 4u : 16u, .subword_buckets = 0, .subword_groups = {},
                                            .conv_width = 0},
                                .tags = tags},
          gen);
      a = padded_tokens(gen, batch, T, vocab);
      b = Ids::from_shape(a.shape());
      for (std::size_t i = 0; i < a.size(); ++i)
        b.data()[i] = a.data()[i] == 0 ? -100 : static_cast<std::int64_t>(gen.below(tags));
      return {[this] { return tagger->loss(a, b); }, tagger.get(), count_real(a)};
    }
    if (name == "sentiment") {
      classifier = std::make_unique<models::Classifier>(models::ClassifierOptions{
          .encoder = {.vocab = 20000, .dropout = 0.1, .positions = nn::PositionScheme::fourier, .relative_k = 16,
                      .subword_buckets = 0, .subword_groups = {}, .conv_width = 0},
          .classes = 2}, gen);
      a = padded_tokens(gen, 64, 64, 20000);
      b = Ids::from_shape({64});
      for (auto& label : b) label = static_cast<std::int64_t>(gen.below(2));
      return {[this] { return classifier->loss(a, b); }, classifier.get(), count_real(a)};
    }
    if (name == "translation") {
      translator = std::make_unique<models::Translator>(models::TranslatorOptions{.src_vocab = 8000, .tgt_vocab = 8000, .ff = 1024, .mlp_scale = 512}, gen);
      a = padded_tokens(gen, 64, 32, 8000);
      const Ids tgt = padded_tokens(gen, 64, 33, 8000);
      b = xt::view(tgt, xt::all(), xt::range(0, 32));
      c = xt::view(tgt, xt::all(), xt::range(1, 33));
      return {[this] { return translator->loss(a, b, c); }, translator.get(), count_real(a) + count_real(c)};
    }
    throw std::invalid_argument("unknown workload '" + name + "' (tiny, tagger, sentiment, translation)");
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tapegrad training-step benchmark (the PyTorch side: bench/torch_reference.py)"};
  std::string workload = "tiny";
  std::size_t threads = 1, steps = 10, warmup = 3;
  app.add_option("--workload", workload, "tiny, tagger, sentiment or translation")
      ->check(CLI::IsMember({"tiny", "tagger", "sentiment", "translation"}));
  app.add_option("--threads", threads, "threads for every kernel (TBB tiles, oneDNN products, BLAS)")->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps (the median is reported)")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first");
  bool profile = false;
  app.add_flag("--profile", profile, "print a per-op profile of one more step (to stderr)");
  CLI11_PARSE(app, argc, argv);

  set_num_threads(threads);
  Bench bench;
  Workload w = bench.make(workload);
  w.model->train();
  nn::AdamW opt(w.model->named_parameters(), {.lr = 1e-3, .weight_decay = 0.01});
  Tape tape;
  double loss = 0;
  std::vector<double> ms;
  for (std::size_t i = 0; i < warmup + steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    opt.zero_grad();
    tape.clear();
    {
      TapeGuard recording(tape);
      Tensor l = w.loss();
      l.backward();
      loss = l.item();
    }
    opt.step();
    const double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (i >= warmup) ms.push_back(elapsed);
  }
  if (profile) {
    opt.zero_grad();
    tape.clear();
    Profiler profiler;
    {
      TapeGuard recording(tape);
      w.loss().backward();
    }
    std::fprintf(stderr, "%s", profiler.table().c_str());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("{\"system\": \"tapegrad\", \"workload\": \"%s\", \"threads\": %zu, \"ms_per_step\": %.3f, "
              "\"tokens_per_s\": %.1f, \"params\": %zu, \"loss\": %.9g, \"peak_rss_mb\": %.1f}\n",
              workload.c_str(), threads, median, w.tokens / (median / 1e3), w.model->parameter_count(), loss,
              usage.ru_maxrss / 1024.0);
  return 0;
}

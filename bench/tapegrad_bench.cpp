// The training-step benchmark: the five workloads of docs/speed.md (tiny, tagger, sentiment,
// translation, lm), built with tapegrad's own models, timed like bench/torch_reference.py (the same
// models in PyTorch) and printed as the same JSON line, so that bench/compare.py can run both side
// by side:
//
//   /usr/bin/python3 bench/compare.py -- build/bench/tapegrad-bench
//   build/bench/tapegrad-bench --workload tagger --threads 1 --steps 10 --warmup 3
//
// One step: zero grads, forward, loss, backward, AdamW update, on a fixed random batch.
// Memory: peak_rss_mb, the process's peak; saved_mb, what the tape holds for backward when the
// forward ends (Tape::saved_bytes: the activations, each counted once for every op that keeps it).
// --checkpoint-blocks runs the transformer blocks with activation checkpointing.
//
// Started by mpirun, the ranks share the batch out by rows, as the training loop does, and sum
// their gradients before the update; the JSON line (from rank 0) then also gives the ranks, the
// gradient bytes each rank sends into the allreduce and the median time the exchange adds after
// backward (buckets are summed while backward runs, as in training; --no-overlap: after it):
//
//   mpirun -np 2 build/bench/tapegrad-bench --workload translation --threads 1
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <xtensor/xview.hpp>

#include "autograd/runtime/gemm.hpp"
#include "peak.hpp"
#include "tapegrad.hpp"

using namespace tg;

namespace {

struct Workload {
  std::function<Tensor()> loss;  // forward and loss of the fixed batch (this rank's rows of it)
  nn::Module* model = nullptr;
  std::size_t tokens = 0;  // non-padding tokens per step (of the whole batch)
};

// Random ids in [1, vocab) with each row's length uniform in [T/2, T], padding (0) after it.
Ids padded_tokens(Generator& gen, std::size_t batch, std::size_t T, std::size_t vocab) {
  Ids ids = xt::zeros<std::int64_t>({batch, T});
  for (std::size_t b = 0; b < batch; ++b) {
    const std::size_t len = T / 2 + gen.below(T - T / 2 + 1);
    for (std::size_t t = 0; t < len; ++t)
      ids(b, t) = 1 + static_cast<std::int64_t>(gen.below(vocab - 1));
  }
  return ids;
}

std::size_t count_real(const Ids& ids) {
  return static_cast<std::size_t>(
      std::count_if(ids.begin(), ids.end(), [](std::int64_t id) { return id != 0; }));
}

// The batch is shared out as by `ranks` ranks, and this process is rank `rank` of them: the
// world's ranks, or rank 0 of --share-of N ranks (one machine's part of an N-machine step).
std::size_t g_rank = 0, g_ranks = 1;

// This rank's rows of a batch (B, ...) -> (B_rank, ...): the slice nn::shard gives the loop.
Ids rows_of_rank(const Ids& ids) {
  const std::size_t B = ids.shape()[0];
  return xt::view(ids, xt::range(g_rank * B / g_ranks, (g_rank + 1) * B / g_ranks));
}

// Owns the models and batches of every workload (modules can't move, so they live here).
struct Bench {
  Generator gen{0};
  bool skip_padding = true;  // tagger, sentiment: the encoder on real tokens only
  std::unique_ptr<models::Tagger> tagger;
  std::unique_ptr<models::Classifier> classifier;
  std::unique_ptr<models::Translator> translator;
  std::unique_ptr<models::LanguageModel> language_model;
  Ids a, b, c;

  Workload make(const std::string& name) {
    if (name == "tiny" || name == "tagger") {
      const bool tiny = name == "tiny";
      const std::size_t vocab = tiny ? 100 : 20000, tags = tiny ? 8 : 18, batch = tiny ? 4 : 32,
                        T = tiny ? 8 : 48;
      tagger = std::make_unique<models::Tagger>(
          models::TaggerOptions{.encoder = {.vocab = vocab,
                                            .d_model = tiny ? 32u : 128u,
                                            .heads = tiny ? 2u : 4u,
                                            .ff = tiny ? 64u : 512u,
                                            .layers = tiny ? 1u : 2u,
                                            .dropout = 0.1,
                                            .relative_k = tiny ? 4u : 16u,
                                            .subword_buckets = 0,
                                            .subword_groups = {},
                                            .conv_width = 0,
                                            .skip_padding = skip_padding},
                                .tags = tags},
          gen);
      a = padded_tokens(gen, batch, T, vocab);
      b = Ids::from_shape(a.shape());
      for (std::size_t i = 0; i < a.size(); ++i)
        b.data()[i] = a.data()[i] == 0 ? -100 : static_cast<std::int64_t>(gen.below(tags));
      const std::size_t tokens = count_real(a);
      a = rows_of_rank(a), b = rows_of_rank(b);
      const double share = double(count_real(a)) / tokens;  // the loss is a mean over tokens
      return {[this, share] { return tagger->loss(a, b) * share; }, tagger.get(), tokens};
    }
    if (name == "sentiment") {
      classifier = std::make_unique<models::Classifier>(
          models::ClassifierOptions{.encoder = {.vocab = 20000,
                                                .dropout = 0.1,
                                                .positions = nn::PositionScheme::fourier,
                                                .relative_k = 16,
                                                .subword_buckets = 0,
                                                .subword_groups = {},
                                                .conv_width = 0,
                                                .skip_padding = skip_padding},
                                    .classes = 2},
          gen);
      a = padded_tokens(gen, 64, 64, 20000);
      b = Ids::from_shape({64});
      for (auto& label : b) label = static_cast<std::int64_t>(gen.below(2));
      const std::size_t tokens = count_real(a);
      a = rows_of_rank(a), b = rows_of_rank(b);
      const double share = double(b.size()) / 64;  // the loss is a mean over sentences
      return {[this, share] { return classifier->loss(a, b) * share; }, classifier.get(), tokens};
    }
    if (name == "translation") {
      translator = std::make_unique<models::Translator>(
          models::TranslatorOptions{
              .src_vocab = 8000, .tgt_vocab = 8000, .ff = 1024, .mlp_scale = 512},
          gen);
      a = padded_tokens(gen, 64, 32, 8000);
      const Ids tgt = padded_tokens(gen, 64, 33, 8000);
      b = xt::view(tgt, xt::all(), xt::range(0, 32));
      c = xt::view(tgt, xt::all(), xt::range(1, 33));
      const std::size_t tokens = count_real(a) + count_real(c), targets = count_real(c);
      a = rows_of_rank(a), b = rows_of_rank(b), c = rows_of_rank(c);
      const double share =
          double(count_real(c)) / targets;  // the loss is a mean over target tokens
      return {[this, share] { return translator->loss(a, b, c) * share; }, translator.get(),
              tokens};
    }
    if (name == "lm") {  // tapegrad-lm's default: nanoGPT's CPU recipe, 12 windows of 64
      constexpr std::size_t kVocab = 65, kBatch = 12, kContext = 64;  // Tiny Shakespeare's 65
      language_model = std::make_unique<models::LanguageModel>(
          models::LanguageModelOptions{.vocab = kVocab}, gen);
      Ids text = Ids::from_shape({kBatch, kContext + 1});  // (B, T + 1) random characters
      for (auto& id : text) id = static_cast<std::int64_t>(gen.below(kVocab));
      a = xt::view(text, xt::all(), xt::range(0, kContext));      // inputs (B, T)
      b = xt::view(text, xt::all(), xt::range(1, kContext + 1));  // targets, one ahead
      a = rows_of_rank(a), b = rows_of_rank(b);
      const double share = double(a.shape()[0]) / kBatch;  // the loss is a mean over characters
      return {[this, share] { return language_model->loss(a, b) * share; }, language_model.get(),
              kBatch * kContext};
    }
    throw std::invalid_argument("unknown workload '" + name +
                                "' (tiny, tagger, sentiment, translation, lm)");
  }
};

// This program's peak resident memory in MB: VmHWM, the high-water mark of its own address
// space.  getrusage's ru_maxrss is not that: it starts from the memory of the process that forked
// this one (10-13 MB when compare.py's Python starts it, more than the whole tiny workload).
double peak_rss_mb() {
  std::FILE* status = std::fopen("/proc/self/status", "r");
  char line[256];
  double kb = -1;
  while (status != nullptr && kb < 0 && std::fgets(line, sizeof line, status) != nullptr)
    if (std::sscanf(line, "VmHWM: %lf kB", &kb) != 1) kb = -1;
  if (status != nullptr) std::fclose(status);
  if (kb >= 0) return kb / 1024;
  rusage usage{};  // no /proc: the nearest the system reports
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

// The step against the machine's ceiling: its products' flops (2 per multiply-add), the rate it
// reaches, the measured peak for `threads` cores, and the share of the step the products would
// take at that peak (each precision's flops at its own peak) -- the fraction of peak.
void print_ceiling(const tg::ProductCount& count, double step_seconds, std::size_t threads) {
  const bench::Peak peak = bench::measure_peak();
  const double cores = static_cast<double>(threads);
  const double f32 = 2 * count.f32_macs, rounded = 2 * count.bf16_macs, all = f32 + rounded;
  double at_peak = f32 / (peak.f32_gflops * 1e9 * cores);
  if (rounded > 0) at_peak += rounded / (peak.bf16_gflops * 1e9 * cores);  // a peak of 0: inf
  std::printf(
      ", \"product_gflop\": %.3f, \"bf16_product_share\": %.3f, \"achieved_gflops\": %.1f, "
      "\"peak_f32_gflops\": %.1f, \"peak_f32_kernel\": \"%s\", \"peak_bf16_gflops\": %.1f, "
      "\"peak_bf16_kernel\": \"%s\", \"fraction_of_peak\": %.3f",
      all / 1e9, all > 0 ? rounded / all : 0.0, all / step_seconds / 1e9, peak.f32_gflops * cores,
      peak.f32_kernel.c_str(), peak.bf16_gflops * cores, peak.bf16_kernel.c_str(),
      at_peak / step_seconds);
}

}  // namespace

// The benchmark; main turns an exception into a message.
static int run(int argc, char** argv) {
  CLI::App app{"tapegrad training-step benchmark (the PyTorch side: bench/torch_reference.py)"};
  std::string workload = "tiny";
  std::size_t threads = 1, steps = 10, warmup = 3;
  app.add_option("--workload", workload, "tiny, tagger, sentiment, translation or lm")
      ->check(CLI::IsMember({"tiny", "tagger", "sentiment", "translation", "lm"}));
  app.add_option("--threads", threads,
                 "threads for every kernel (TBB tiles, oneDNN products, BLAS)")
      ->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps (the median is reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first");
  bool profile = false;
  app.add_flag("--profile", profile, "print a per-op profile of one more step (to stderr)");
  bool checkpoint_blocks = false;
  app.add_flag("--checkpoint-blocks", checkpoint_blocks,
               "activation checkpointing of every transformer block (Module::set_checkpointing)");
  bool no_overlap = false;
  app.add_flag("--no-overlap", no_overlap,
               "under mpirun: sum the gradients after backward, not while it runs");
  std::size_t share_of = 1;
  app.add_option("--share-of", share_of,
                 "time one rank's share of the batch split this many ways, alone (no exchange): a "
                 "machine's "
                 "compute in a step on that many machines")
      ->check(CLI::PositiveNumber);
  bool ceiling = false;
  app.add_flag("--ceiling", ceiling,
               "also report the products' flops in a step, the machine's measured peak (a "
               "micro-kernel of multiply-adds per core, times --threads) and the fraction of it "
               "the step reaches");
  bool keep_padding = false;
  app.add_flag("--keep-padding", keep_padding,
               "tiny, tagger, sentiment: run every layer on the padded batch, as before steps "
               "skipped padding (nn/packing.hpp)");
  std::string precision = "f32";
  app.add_option("--precision", precision,
                 "f32, or bf16: large products read bfloat16 operands (autograd/runtime/bf16.hpp)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  CLI11_PARSE(app, argc, argv);
  set_precision(enum_from_name<Precision>(precision));
  const nn::ProcessGroup* world = nullptr;
  try {
    world = &nn::ProcessGroup::world();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tapegrad-bench: %s\n", e.what());
    return 1;
  }
  const auto& group = *world;
  if (group.size() > 1 && share_of > 1) {
    std::fprintf(
        stderr,
        "tapegrad-bench: --share-of is for one process; under mpirun the ranks share the batch\n");
    return 1;
  }
  g_rank = group.rank(), g_ranks = std::max(group.size(), share_of);

  set_num_threads(threads);
  keep_freed_memory();  // as the programs do (examples/programs/cli.cpp)
  Bench bench;
  bench.skip_padding = !keep_padding;
  Workload w = bench.make(workload);
  w.model->train();
  w.model->set_checkpointing(checkpoint_blocks);
  nn::AdamW opt(w.model->named_parameters(), {.lr = 1e-3, .weight_decay = 0.01});
  const std::vector<Tensor> params = w.model->parameters();
  Tape tape;
  double loss = 0, saved_mb = 0;
  std::vector<double> ms, allreduce_ms;
  std::size_t calls = 0, early = 0;
  std::optional<nn::GradientReducer> reducer;  // as the training loop sums gradients
  if (group.size() > 1 && !no_overlap) reducer.emplace(params, group);
  using Clock = std::chrono::steady_clock;
  const auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  for (std::size_t i = 0; i < warmup + steps; ++i) {
    const auto start = Clock::now();
    opt.zero_grad();
    tape.clear();
    if (reducer) reducer->watch(tape);
    {
      TapeGuard recording(tape);
      Tensor l = w.loss();
      saved_mb = tape.saved_bytes() / 1e6;  // the activations kept for backward
      l.backward();
      loss = l.item();
    }
    // The exchange's time after backward: all of it with --no-overlap, what overlap left otherwise.
    const auto exchange = Clock::now();
    if (reducer) {
      early = reducer->finish(std::span<double>(&loss, 1));
      calls = reducer->buckets() + 1;
    } else {
      calls = nn::allreduce_gradients(params, group,
                                      std::span<double>(&loss, 1));  // nothing on one process
    }
    const double exchange_ms = ms_since(exchange);
    opt.step();
    const double elapsed = ms_since(start);
    if (i >= warmup) ms.push_back(elapsed), allreduce_ms.push_back(exchange_ms);
  }
  tg::ProductCount count;
  if (ceiling) {  // one more step, counted
    opt.zero_grad();
    tape.clear();
    count_products(true);
    {
      TapeGuard recording(tape);
      w.loss().backward();
    }
    count = product_count();
    count_products(false);
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
  const auto median_of = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  const double median = median_of(ms);
  if (!group.is_root()) return 0;
  std::printf(
      "{\"system\": \"tapegrad\", \"workload\": \"%s\", \"threads\": %zu, \"ms_per_step\": %.3f, "
      "\"tokens_per_s\": %.1f, \"params\": %zu, \"loss\": %.9g, \"peak_rss_mb\": %.1f, "
      "\"saved_mb\": %.1f",
      workload.c_str(), threads, median, w.tokens / (median / 1e3), w.model->parameter_count(),
      loss, peak_rss_mb(), saved_mb);
  if (checkpoint_blocks) std::printf(", \"checkpoint_blocks\": true");
  if (share_of > 1) std::printf(", \"share_of\": %zu", share_of);
  if (precision != "f32") std::printf(", \"precision\": \"%s\"", precision_description().c_str());
  if (group.size() > 1)  // float32 gradients: 4 bytes a parameter into each allreduce
    std::printf(
        ", \"ranks\": %zu, \"allreduce_bytes\": %zu, \"allreduce_calls\": %zu, \"overlap\": %s, "
        "\"started_in_backward\": %zu, \"allreduce_ms\": %.3f",
        group.size(), 4 * w.model->parameter_count(), calls, reducer ? "true" : "false", early,
        median_of(allreduce_ms));
  if (ceiling) print_ceiling(count, median / 1e3, threads);
  std::printf("}\n");
  return 0;
}

// Bad input (a TAPEGRAD_GEMM_KERNEL this CPU cannot run, say) is a message and exit code 1.
int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tapegrad-bench: %s\n", e.what());
    return 1;
  }
}

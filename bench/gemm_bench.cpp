// Matrix-product benchmark: the float32 products of the four training workloads of
// docs/speed.md (tapegrad-bench --workload), forward and backward, each timed through three
// kernels:
//   tapegrad       tg::gemm (autograd/runtime/gemm.hpp): oneDNN's sgemm on one thread per tile of
//   C, the
//                  tiles on oneTBB's threads;
//   OpenBLAS       cblas_sgemm as installed, on its own threads (openblas_set_num_threads);
//   oneDNN-OpenMP  dnnl_sgemm called directly, on OpenMP's threads (omp_set_num_threads);
// and tapegrad's bfloat16 products, tg::gemm under the bf16 policy (autograd/runtime/bf16.hpp:
// operands rounded to bfloat16, sums in float32), against its float32 ones.
// It prints GFLOP/s for every product and kernel, tapegrad's speed over the better of the other
// two, and that ratio averaged over the products, weighted by their flops in one training step;
// the same for bfloat16 over float32.
//
//   build/bench/gemm-bench --threads 1
//   build/bench/gemm-bench --threads 2 --workload translation --min-time 0.5
//   build/bench/gemm-bench --json                 # one JSON line per product
//
// Legend: C (M x N) = op(A) (M x K) op(B) (K x N), row-major; trans "N T" means B is stored
// N x K.  Rows are tokens, B x T, padding included (the models compute on it too).
//
// Shapes.  A Linear(in, out) on `rows` rows is one forward product, y = x W (rows x out x in),
// and two backward ones (autograd/ops_matmul.cpp): g_x = g_y W^T (rows x in x out, B transposed)
// and g_W = x^T g_y (in x out x rows, A transposed).  Fused attention
// (autograd/ops_fused_attention.cpp) multiplies small matrices per (batch, head) block, one
// block per thread; they are timed here one call at a time, as a block runs them (see
// add_attention).  Left out: products with K = 1 (the first layer of a position MLP).
#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "autograd/runtime/bf16.hpp"
#include "autograd/runtime/gemm.hpp"
#include "autograd/runtime/memory.hpp"
#include "autograd/runtime/parallel.hpp"

namespace {

// ---- the products of each workload ---------------------------------------------------------

// One matrix product of a workload, and how many times one training step runs it.
struct Product {
  std::string workload, name;  // name: "tagger qkv fwd (1536x384x128)"
  bool trans_a = false, trans_b = false;
  std::size_t M = 0, N = 0, K = 0;
  std::size_t per_step = 0;

  double flops() const {
    return 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  }
  std::size_t lda() const { return trans_a ? M : K; }  // packed: A is M x K, or K x M
  std::size_t ldb() const { return trans_b ? K : N; }  // packed: B is K x N, or N x K
};

using Products = std::vector<Product>;

void add(Products& list, const std::string& workload, const std::string& what, bool trans_a,
         bool trans_b, std::size_t M, std::size_t N, std::size_t K, std::size_t per_step) {
  const std::string dims = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
  list.push_back(Product{.workload = workload,
                         .name = workload + " " + what + " (" + dims + ")",
                         .trans_a = trans_a,
                         .trans_b = trans_b,
                         .M = M,
                         .N = N,
                         .K = K,
                         .per_step = per_step});
}

// Linear(in, out) on `rows` rows, `count` times per step: y = x W and its two backward products.
void add_linear(Products& list, const std::string& workload, const std::string& layer,
                std::size_t rows, std::size_t in, std::size_t out, std::size_t count) {
  add(list, workload, layer + " fwd", false, false, rows, out, in, count);  // y = x W
  add(list, workload, layer + " g_x", false, true, rows, in, out, count);   // g_x = g_y W^T
  add(list, workload, layer + " g_W", true, false, in, out, rows, count);   // g_W = x^T g_y
}

// A transformer layer's projections (nn/transformer.cpp): fused q, k, v, out, feed-forward.
void add_transformer_layers(Products& list, const std::string& workload, std::size_t rows,
                            std::size_t d, std::size_t ff, std::size_t layers) {
  add_linear(list, workload, "qkv", rows, d, 3 * d, layers);
  add_linear(list, workload, "out", rows, d, d, layers);
  add_linear(list, workload, "ff1", rows, d, ff, layers);
  add_linear(list, workload, "ff2", rows, ff, d, layers);
}

// Fused attention in `layers` attention layers of `blocks` (batch, head) blocks: T queries,
// S keys, head size D.  Per block, forward L = q k^T and o = W v, backward g_W = g_o v^T,
// g_q = g_L k, g_v = W^T g_o and g_k = g_L^T q: three shapes, each twice.  Relative positions
// (tables of R rows; R = 0: none) add q a_K^T and P a_V, each twice (forward and backward), and
// the two tables' gradients, each one product over all blocks' rows.
void add_attention(Products& list, const std::string& workload, std::size_t blocks, std::size_t T,
                   std::size_t S, std::size_t D, std::size_t R, std::size_t layers) {
  const std::size_t twice_per_block = 2 * blocks * layers;
  add(list, workload, "attn q k^T", false, true, T, S, D, twice_per_block);
  add(list, workload, "attn W v", false, false, T, D, S, twice_per_block);
  add(list, workload, "attn g_v", true, false, S, D, T, twice_per_block);
  if (R == 0) return;
  add(list, workload, "attn q a_K^T", false, true, T, R, D, twice_per_block);
  add(list, workload, "attn P a_V", false, false, T, D, R, twice_per_block);
  add(list, workload, "attn g_table", true, false, R, D, blocks * T, 2 * layers);
}

// The products of one workload, as tapegrad's models (models/) build it.
Products workload_products(const std::string& name) {
  Products list;
  if (name == "tiny" || name == "tagger") {
    // Tagger: encoder layers with Shaw relative attention, then Linear(d, tags) on every token.
    const bool tiny = name == "tiny";
    const std::size_t batch = tiny ? 4 : 32, T = tiny ? 8 : 48, d = tiny ? 32 : 128,
                      heads = tiny ? 2 : 4, ff = tiny ? 64 : 512, layers = tiny ? 1 : 2,
                      tags = tiny ? 8 : 18, k = tiny ? 4 : 16;
    add_transformer_layers(list, name, batch * T, d, ff, layers);
    add_linear(list, name, "head", batch * T, d, tags, 1);
    add_attention(list, name, batch * heads, T, T, d / heads, 2 * k + 1, layers);
  } else if (name == "sentiment") {
    // Classifier: Fourier positions (T rows, 64 features -> 128 -> d), encoder layers, then
    // Linear(d, 2) on each sentence's mean.
    const std::size_t batch = 64, T = 64, d = 128, heads = 4, ff = 512, layers = 2;
    add_linear(list, name, "fourier fc1", T, 64, 128, 1);
    add_linear(list, name, "fourier fc2", T, 128, d, 1);
    add_transformer_layers(list, name, batch * T, d, ff, layers);
    add_linear(list, name, "head", batch, d, 2, 1);
    add_attention(list, name, batch * heads, T, T, d / heads, 0, layers);
  } else if (name == "translation") {
    // Translator: 64 x 32 tokens on both sides, so encoder and decoder layers share shapes.
    // Decoder layers add cross-attention: q from the target (d x d), k and v from the memory.
    const std::size_t batch = 64, T = 32, d = 256, heads = 8, ff = 1024, layers = 3, vocab = 8000;
    const std::size_t rows = batch * T;
    add_linear(list, name, "positions fc2", T, 64, d, 2);            // source and target
    add_linear(list, name, "qkv", rows, d, 3 * d, 2 * layers);       // self-attention
    add_linear(list, name, "out, cross q", rows, d, d, 4 * layers);  // 3 out-projections, 1 q
    add_linear(list, name, "cross kv", rows, d, 2 * d, layers);
    add_linear(list, name, "ff1", rows, d, ff, 2 * layers);
    add_linear(list, name, "ff2", rows, ff, d, 2 * layers);
    add_linear(list, name, "head", rows, d, vocab, 1);
    add_attention(list, name, batch * heads, T, T, d / heads, 0, 3 * layers);  // self, self, cross
  } else {
    throw std::invalid_argument("gemm-bench: unknown workload '" + name +
                                "' (tiny, tagger, sentiment, translation)");
  }
  return list;
}

// ---- the kernels -----------------------------------------------------------------------------

// Each kernel computes C = op(A) op(B), overwriting C, after setting its threads.
struct Kernel {
  const char* name;
  void (*use_threads)(int threads);
  void (*multiply)(const Product& p, const float* A, const float* B, float* C);
};

// tapegrad's TBB threads are set once, in main (tg::set_num_threads).  Each tile calls oneDNN
// on one OpenMP thread, which gemm.cpp sets only once per thread: put the main thread's
// setting back after the oneDNN-OpenMP runs changed it.
void tapegrad_threads(int) { omp_set_num_threads(1); }

void tapegrad_multiply(const Product& p, const float* A, const float* B, float* C) {
  tg::gemm({.trans_a = p.trans_a, .trans_b = p.trans_b, .M = p.M, .N = p.N, .K = p.K}, A, B, C,
           0.0f);
}

void tapegrad_bf16_multiply(const Product& p, const float* A, const float* B, float* C) {
  tg::PrecisionGuard bf16(tg::Precision::bf16);
  tapegrad_multiply(p, A, B, C);
}

void openblas_threads(int threads) { openblas_set_num_threads(threads); }

void openblas_multiply(const Product& p, const float* A, const float* B, float* C) {
  cblas_sgemm(CblasRowMajor, p.trans_a ? CblasTrans : CblasNoTrans,
              p.trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(p.M), static_cast<int>(p.N),
              static_cast<int>(p.K), 1.0f, A, static_cast<int>(p.lda()), B,
              static_cast<int>(p.ldb()), 0.0f, C, static_cast<int>(p.N));
}

void onednn_threads(int threads) { omp_set_num_threads(threads); }

void onednn_multiply(const Product& p, const float* A, const float* B, float* C) {
  const auto dim = [](std::size_t n) { return static_cast<dnnl_dim_t>(n); };
  const dnnl_status_t status =
      dnnl_sgemm(p.trans_a ? 'T' : 'N', p.trans_b ? 'T' : 'N', dim(p.M), dim(p.N), dim(p.K), 1.0f,
                 A, dim(p.lda()), B, dim(p.ldb()), 0.0f, C, dim(p.N));
  if (status != dnnl_success)
    throw std::runtime_error("gemm-bench: dnnl_sgemm failed (status " + std::to_string(status) +
                             ") on " + p.name);
}

constexpr std::size_t kTapegrad = 0, kOpenBlas = 1, kOneDnn = 2, kBf16 = 3;
const std::array<Kernel, 4> kKernels{{{"tapegrad", tapegrad_threads, tapegrad_multiply},
                                      {"OpenBLAS", openblas_threads, openblas_multiply},
                                      {"oneDNN-OpenMP", onednn_threads, onednn_multiply},
                                      {"tapegrad-bf16", tapegrad_threads, tapegrad_bf16_multiply}}};

// ---- timing ----------------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;
constexpr int kWarmupCalls = 2;
constexpr std::size_t kMinCalls = 5;
// With more than one thread, each library's workers spin for a while after a call before they
// sleep, taking a core from the kernel timed next; this pause lets them go to sleep first.
constexpr auto kSettle = std::chrono::milliseconds(200);

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Seconds per call: the median of calls timed one by one, after the warm-up calls, until both
// `min_time` seconds and kMinCalls calls have gone by.
template <class Call>
double seconds_per_call(const Call& call, double min_time) {
  for (int i = 0; i < kWarmupCalls; ++i) call();
  std::vector<double> times;
  double total = 0;
  while (times.size() < kMinCalls || total < min_time) {
    const auto start = Clock::now();
    call();
    times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    total += times.back();
  }
  return median(times);
}

std::vector<float> random_matrix(std::size_t size, std::mt19937& gen) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> m(size);
  for (float& x : m) x = uniform(gen);
  return m;
}

// Kernels round differently, by a few units in the last place of sums of K terms; a wrong
// transpose or leading dimension would differ by as much as C's entries; bfloat16 operands move
// a sum of K terms by about sqrt(K) 2^-9 of its scale.  Warns on stderr.
void check_agreement(const Product& p, const std::array<std::vector<float>, 4>& c) {
  float largest = 0;
  for (float x : c[kOpenBlas]) largest = std::max(largest, std::abs(x));
  for (std::size_t k = 0; k < c.size(); ++k) {
    if (k == kOpenBlas) continue;
    float worst = 0;
    for (std::size_t i = 0; i < c[k].size(); ++i)
      worst = std::max(worst, std::abs(c[k][i] - c[kOpenBlas][i]));
    if (worst > (k == kBf16 ? 3e-2f : 1e-3f) * largest)
      std::fprintf(stderr, "gemm-bench: %s and OpenBLAS differ by %g (largest |C| %g) on %s\n",
                   kKernels[k].name, static_cast<double>(worst), static_cast<double>(largest),
                   p.name.c_str());
  }
}

// A product timed through every kernel.
struct Measured {
  Product product;
  std::array<double, 4> seconds{};  // per call, in kKernels' order

  double gflops(std::size_t kernel) const { return product.flops() / seconds[kernel] / 1e9; }
  double best_other_seconds() const { return std::min(seconds[kOpenBlas], seconds[kOneDnn]); }
  double ratio() const {
    return best_other_seconds() / seconds[kTapegrad];
  }  // > 1: tapegrad faster
  double bf16_speedup() const { return seconds[kTapegrad] / seconds[kBf16]; }
};

// Random A and B from `gen`; each kernel writes its own C (no aliasing), compared at the end.
Measured measure(const Product& p, std::mt19937& gen, int threads, double min_time) {
  const std::vector<float> a = random_matrix(p.M * p.K, gen), b = random_matrix(p.K * p.N, gen);
  std::array<std::vector<float>, 4> c;
  Measured m{p};
  for (std::size_t k = 0; k < kKernels.size(); ++k) {
    const Kernel& kernel = kKernels[k];
    if (threads > 1) std::this_thread::sleep_for(kSettle);
    kernel.use_threads(threads);
    c[k].assign(p.M * p.N, 0.0f);
    m.seconds[k] =
        seconds_per_call([&] { kernel.multiply(p, a.data(), b.data(), c[k].data()); }, min_time);
  }
  kKernels[kTapegrad].use_threads(threads);  // the main thread back on one OpenMP thread
  check_agreement(p, c);
  return m;
}

// ---- output ----------------------------------------------------------------------------------

std::string cpu_runtime_name(unsigned runtime) {
  if (runtime == DNNL_RUNTIME_OMP) return "OpenMP";
  if (runtime == DNNL_RUNTIME_TBB) return "TBB";
  if (runtime == DNNL_RUNTIME_SEQ) return "sequential";
  return "runtime " + std::to_string(runtime);
}

void print_setup(std::size_t threads, bool json) {
  const char* core = openblas_get_corename();
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  const dnnl_version_t* v = dnnl_version();
  const std::string onednn =
      std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  const std::string runtime = cpu_runtime_name(v->cpu_runtime);
  if (json) {
    std::printf(
        "{\"openblas_core\": \"%s\", \"openblas_coretype\": \"%s\", \"onednn\": \"%s\", "
        "\"onednn_cpu_runtime\": \"%s\", \"threads\": %zu}\n",
        core, coretype ? coretype : "not set", onednn.c_str(), runtime.c_str(), threads);
    return;
  }
  std::printf("OpenBLAS core: %s (OPENBLAS_CORETYPE: %s)\n", core, coretype ? coretype : "not set");
  std::printf("oneDNN: %s (CPU runtime: %s)\n", onednn.c_str(), runtime.c_str());
  std::printf("threads: %zu\n\n", threads);
  std::printf(
      "| product | M | N | K | trans (A B) | per step | tapegrad GFLOP/s | OpenBLAS GFLOP/s "
      "| oneDNN-OpenMP GFLOP/s | tapegrad / best | tapegrad bf16 GFLOP/s | bf16 / f32 |\n");
  std::printf("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
}

void print_row(const Measured& m, std::size_t threads, bool json) {
  const Product& p = m.product;
  if (json)
    std::printf(
        "{\"workload\": \"%s\", \"product\": \"%s\", \"m\": %zu, \"n\": %zu, \"k\": %zu, "
        "\"trans_a\": %s, \"trans_b\": %s, \"per_step\": %zu, \"threads\": %zu, "
        "\"tapegrad_gflops\": %.2f, "
        "\"openblas_gflops\": %.2f, \"onednn_openmp_gflops\": %.2f, \"ratio\": %.3f, "
        "\"bf16_gflops\": %.2f, \"bf16_speedup\": %.3f}\n",
        p.workload.c_str(), p.name.c_str(), p.M, p.N, p.K, p.trans_a ? "true" : "false",
        p.trans_b ? "true" : "false", p.per_step, threads, m.gflops(kTapegrad), m.gflops(kOpenBlas),
        m.gflops(kOneDnn), m.ratio(), m.gflops(kBf16), m.bf16_speedup());
  else
    std::printf(
        "| %s | %zu | %zu | %zu | %c %c | %zu | %.1f | %.1f | %.1f | %.2f | %.1f | %.2f |\n",
        p.name.c_str(), p.M, p.N, p.K, p.trans_a ? 'T' : 'N', p.trans_b ? 'T' : 'N', p.per_step,
        m.gflops(kTapegrad), m.gflops(kOpenBlas), m.gflops(kOneDnn), m.ratio(), m.gflops(kBf16),
        m.bf16_speedup());
  std::fflush(stdout);  // a row as soon as it is measured: whole runs take minutes
}

// How the bfloat16 products run on this CPU (the policy's description, read under it).
std::string bf16_kernel_label() {
  tg::PrecisionGuard bf16(tg::Precision::bf16);
  return tg::precision_description();
}

// Over a set of products: tapegrad's ratio to the best other kernel, averaged with weights
// flops x runs per step, and the time a training step spends in these products through each
// kernel (per-block attention products counted one after another, as on one thread).
void print_summary(const std::string& label, const std::vector<Measured>& rows, bool json) {
  double weighted_ratio = 0, weighted_bf16 = 0, weight = 0, best_ms = 0;
  std::array<double, 4> ms{};
  for (const Measured& m : rows) {
    const double w = m.product.flops() * static_cast<double>(m.product.per_step);
    weighted_ratio += w * m.ratio();
    weighted_bf16 += w * m.bf16_speedup();
    weight += w;
    for (std::size_t k = 0; k < ms.size(); ++k)
      ms[k] += 1e3 * m.seconds[k] * static_cast<double>(m.product.per_step);
    best_ms += 1e3 * m.best_other_seconds() * static_cast<double>(m.product.per_step);
  }
  const double mean_ratio = weight > 0 ? weighted_ratio / weight : 0;
  const double mean_bf16 = weight > 0 ? weighted_bf16 / weight : 0;
  if (json)
    std::printf(
        "{\"summary\": \"%s\", \"weighted_ratio\": %.3f, \"tapegrad_ms_per_step\": %.3f, "
        "\"openblas_ms_per_step\": %.3f, \"onednn_openmp_ms_per_step\": %.3f, "
        "\"best_ms_per_step\": %.3f, \"weighted_bf16_speedup\": %.3f, "
        "\"tapegrad_bf16_ms_per_step\": %.3f}\n",
        label.c_str(), mean_ratio, ms[kTapegrad], ms[kOpenBlas], ms[kOneDnn], best_ms, mean_bf16,
        ms[kBf16]);
  else
    std::printf(
        "%s: flop-weighted mean of tapegrad / best %.2f; products per step: tapegrad %.2f ms, "
        "OpenBLAS %.2f ms, oneDNN-OpenMP %.2f ms, best of the two per product %.2f ms; "
        "bfloat16: %.2f ms, flop-weighted mean of bf16 / f32 speed %.2f (%s)\n",
        label.c_str(), mean_ratio, ms[kTapegrad], ms[kOpenBlas], ms[kOneDnn], best_ms, ms[kBf16],
        mean_bf16, bf16_kernel_label().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "GFLOP/s of the workloads' float32 matrix products: tapegrad, OpenBLAS, oneDNN on OpenMP, "
      "and tapegrad's bfloat16 products"};
  std::size_t threads = 1;
  double min_time = 0.2;
  std::string workload = "all";
  bool json = false;
  app.add_option("--threads", threads, "threads for every kernel")->check(CLI::PositiveNumber);
  app.add_option("--min-time", min_time,
                 "seconds of timed calls per product and kernel (at least 5 calls)")
      ->check(CLI::PositiveNumber);
  app.add_option("--workload", workload, "all, tiny, tagger, sentiment or translation")
      ->check(CLI::IsMember({"all", "tiny", "tagger", "sentiment", "translation"}));
  app.add_flag("--json", json, "one JSON line per product instead of the table");
  CLI11_PARSE(app, argc, argv);
  tg::keep_freed_memory();  // as the programs do: buffers of the same sizes reuse their blocks

  tg::set_num_threads(threads);
  const std::vector<std::string> names =
      workload == "all" ? std::vector<std::string>{"tiny", "tagger", "sentiment", "translation"}
                        : std::vector<std::string>{workload};
  print_setup(threads, json);
  std::mt19937 gen(2024);
  std::vector<std::vector<Measured>> by_workload;
  for (const std::string& name : names) {
    by_workload.emplace_back();
    for (const Product& p : workload_products(name)) {
      by_workload.back().push_back(measure(p, gen, static_cast<int>(threads), min_time));
      print_row(by_workload.back().back(), threads, json);
    }
  }
  if (!json) std::printf("\n");
  std::vector<Measured> all;
  for (std::size_t i = 0; i < names.size(); ++i) {
    print_summary(names[i], by_workload[i], json);
    all.insert(all.end(), by_workload[i].begin(), by_workload[i].end());
  }
  if (names.size() > 1) print_summary("all", all, json);
  return 0;
}

#include "gemm_small.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "gemm_small_kernel.hpp"

namespace tg {
namespace small_gemm {
void product_avx512(const Operands& p);  // gemm_small_avx512.cpp
void product_avx2(const Operands& p);    // gemm_small_avx2.cpp
}  // namespace small_gemm

namespace {

// Where oneDNN's sgemm starts to win, measured with build/bench/gemm-bench (docs/speed.md).  On
// AMD's Zen 5 the kernels here are as fast as oneDNN up to about 10^8 multiply-adds (the tagger's
// largest products, 1536 x 512 x 128) and much faster on small ones; the translator's larger
// products (from 2048 x 256 x 256 up) stream operands of several MB through the caches, and
// oneDNN, which packs both operands into cache-sized blocks, runs them faster.  On Intel's
// Emerald Rapids oneDNN's kernels are faster from a few million multiply-adds up (the kernels
// here reached 0.59-0.80 of them on the tagger's layers, 0.93-0.94 on products of 3.5 and 6.5
// million), while below that oneDNN's per-call cost makes whole steps slower (the tiny
// workload's: 0.119 ms a step on oneDNN against 0.085).  Measured on that one Intel CPU; the
// rule covers every Intel CPU.
constexpr double kMaxSmallMacsOther = 1.2e8, kMaxSmallMacsIntel = 4194304.0;  // 2^22

bool runs_on_this_cpu(SmallKernel kernel) {
  switch (kernel) {
    case SmallKernel::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    case SmallKernel::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case SmallKernel::none: return false;
  }
  return false;
}

}  // namespace

SmallKernel best_small_kernel() {
  static const SmallKernel best = runs_on_this_cpu(SmallKernel::avx512) ? SmallKernel::avx512
                                  : runs_on_this_cpu(SmallKernel::avx2) ? SmallKernel::avx2
                                                                        : SmallKernel::none;
  return best;
}

SmallKernel kernel_named(const std::string& name) {
  const SmallKernel kernel =
      enum_from_name<SmallKernel>(name);  // an unknown name throws, listing the known
  if (kernel != SmallKernel::none && !runs_on_this_cpu(kernel)) {
    const std::string needs = kernel == SmallKernel::avx512 ? "AVX-512" : "AVX2 with FMA";
    fail("gemm kernel",
         "this CPU does not report " + needs + ", which the " + name + " kernel needs");
  }
  return kernel;
}

SmallKernel small_kernel_in_use() {
  static const SmallKernel in_use = [] {
    const char* name = std::getenv("TAPEGRAD_GEMM_KERNEL");
    if (name == nullptr || *name == '\0') return best_small_kernel();
    try {
      return kernel_named(name);
    } catch (const std::invalid_argument& e) {  // say where the name came from
      throw std::invalid_argument("TAPEGRAD_GEMM_KERNEL=" + std::string(name) + ": " + e.what());
    }
  }();
  return in_use;
}

double small_product_limit() {
  static const double limit = [] {
    const char* value = std::getenv("TAPEGRAD_GEMM_SMALL_MACS");
    if (value == nullptr || *value == '\0')
      return __builtin_cpu_is("intel") ? kMaxSmallMacsIntel : kMaxSmallMacsOther;
    double macs = -1;
    const char* end = value + std::strlen(value);
    const auto [stop, error] = std::from_chars(value, end, macs);
    if (error != std::errc() || stop != end || !(macs >= 0))
      throw std::invalid_argument("TAPEGRAD_GEMM_SMALL_MACS='" + std::string(value) +
                                  "': want the largest product, in multiply-adds, the own "
                                  "kernels take (0 or more; 1.2e8 as on AMD, 4194304 as on Intel)");
    return macs;
  }();
  return limit;
}

bool is_small_product(const GemmArgs& p) { return multiply_adds(p) <= small_product_limit(); }

// Blocks of 16 rows of B: 16 floats of every row of the copy are written together, and the 16
// rows read stay in the cache from one k to the next.
const float* rows_of_b(GemmArgs& p, const float* B, std::vector<float>& buffer) {
  if (!p.trans_b) return B;
  buffer.resize(p.K * p.N);
  for (std::size_t n0 = 0; n0 < p.N; n0 += 16) {
    const std::size_t n1 = std::min(p.N, n0 + 16);
    for (std::size_t k = 0; k < p.K; ++k)
      for (std::size_t n = n0; n < n1; ++n) buffer[k * p.N + n] = B[n * p.ldb + k];
  }
  p.trans_b = false;
  p.ldb = p.N;
  return buffer.data();
}

void gemm_small_rows(SmallKernel kernel, const GemmArgs& p, const float* A, const float* B_rows,
                     float* C, float beta) {
  if (p.trans_b)
    throw std::invalid_argument("gemm_small_rows: op(B) must be given as rows (trans_b false)");
  if (!runs_on_this_cpu(kernel))
    throw std::invalid_argument("gemm_small: this CPU cannot run the " +
                                std::string(enum_name(kernel)) + " kernel");
  const small_gemm::Operands o{.M = p.M,
                               .N = p.N,
                               .K = p.K,
                               .A = A,
                               .rs_a = p.trans_a ? 1 : p.lda,
                               .cs_a = p.trans_a ? p.lda : 1,
                               .B = B_rows,
                               .ldb = p.ldb,
                               .C = C,
                               .ldc = p.ldc,
                               .beta = beta};
  if (kernel == SmallKernel::avx512) small_gemm::product_avx512(o);
  else small_gemm::product_avx2(o);
}

void gemm_small(SmallKernel kernel, const GemmArgs& p, const float* A, const float* B, float* C,
                float beta) {
  thread_local std::vector<float> buffer;  // no TBB task runs inside, so no other product shares it
  GemmArgs rows = p;
  const float* B_rows = rows_of_b(rows, B, buffer);
  gemm_small_rows(kernel, rows, A, B_rows, C, beta);
}

void gemm_reference(const GemmArgs& p, const float* A, const float* B, float* C, float beta) {
  for (std::size_t i = 0; i < p.M; ++i)
    for (std::size_t j = 0; j < p.N; ++j) {
      float& c = C[i * p.ldc + j];
      float acc = beta == 0.0f ? 0.0f : beta * c;
      for (std::size_t k = 0; k < p.K; ++k) {
        const float a = p.trans_a ? A[k * p.lda + i] : A[i * p.lda + k];
        const float b = p.trans_b ? B[j * p.ldb + k] : B[k * p.ldb + j];
        acc = std::fma(a, b, acc);
      }
      c = acc;
    }
}

}  // namespace tg

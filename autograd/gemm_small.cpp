#include "gemm_small.hpp"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "gemm_small_kernel.hpp"

namespace tg {
namespace small_gemm {
void product_avx512(const Operands& p);  // gemm_small_avx512.cpp
void product_avx2(const Operands& p);    // gemm_small_avx2.cpp
}  // namespace small_gemm

namespace {

// Where the kernels beat oneDNN's sgemm (build/bench/gemm-bench): up to about 64 x 64 x 64
// multiply-adds, and a row of op(B)'s panel, K x 32 floats, that stays in the L1 and L2 caches.
constexpr double kMaxSmallMacs = 64.0 * 64.0 * 64.0;
constexpr std::size_t kMaxSmallK = 512;

// op(B) as rows: a transposed B (N x K) copied to K x N, in a buffer each thread keeps.
const float* rows_of_b(const GemmArgs& p, const float* B, std::size_t& ldb) {
  if (!p.trans_b) {
    ldb = p.ldb;
    return B;
  }
  thread_local std::vector<float> rows;
  rows.resize(p.K * p.N);
  for (std::size_t n = 0; n < p.N; ++n)
    for (std::size_t k = 0; k < p.K; ++k) rows[k * p.N + n] = B[n * p.ldb + k];
  ldb = p.N;
  return rows.data();
}

bool runs_on_this_cpu(SmallKernel kernel) {
  switch (kernel) {
    case SmallKernel::avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
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

std::string to_string(SmallKernel kernel) {
  switch (kernel) {
    case SmallKernel::avx512: return "avx512";
    case SmallKernel::avx2: return "avx2";
    case SmallKernel::none: return "none";
  }
  return "?";
}

bool is_small_product(const GemmArgs& p) {
  const double macs = static_cast<double>(p.M) * static_cast<double>(p.N) * static_cast<double>(p.K);
  return macs <= kMaxSmallMacs && p.K <= kMaxSmallK;
}

void gemm_small(SmallKernel kernel, const GemmArgs& p, const float* A, const float* B, float* C, float beta) {
  if (!runs_on_this_cpu(kernel))
    throw std::invalid_argument("gemm_small: this CPU cannot run the " + to_string(kernel) + " kernel");
  small_gemm::Operands o{.M = p.M, .N = p.N, .K = p.K, .A = A,
                         .rs_a = p.trans_a ? 1 : p.lda, .cs_a = p.trans_a ? p.lda : 1,
                         .B = nullptr, .ldb = 0, .C = C, .ldc = p.ldc, .beta = beta};
  o.B = rows_of_b(p, B, o.ldb);
  if (kernel == SmallKernel::avx512)
    small_gemm::product_avx512(o);
  else
    small_gemm::product_avx2(o);
}

void gemm_reference(const GemmArgs& p, const float* A, const float* B, float* C, float beta) {
  for (std::size_t i = 0; i < p.M; ++i)
    for (std::size_t j = 0; j < p.N; ++j) {
      float acc = 0.0f;
      for (std::size_t k = 0; k < p.K; ++k) {
        const float a = p.trans_a ? A[k * p.lda + i] : A[i * p.lda + k];
        const float b = p.trans_b ? B[j * p.ldb + k] : B[k * p.ldb + j];
        acc = std::fma(a, b, acc);
      }
      float& c = C[i * p.ldc + j];
      c = beta == 0.0f ? acc : std::fma(beta, c, acc);
    }
}

}  // namespace tg

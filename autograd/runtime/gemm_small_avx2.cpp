// gemm_small's kernel in AVX2 registers: 8 floats a vector, blocks of 6 rows x 16 columns (12
// accumulators of the 16 registers).  Compiled with -mavx2 -mfma, called only on CPUs that report
// both (gemm_small.cpp).
#include <immintrin.h>

#include "gemm_small_kernel.hpp"

namespace tg::small_gemm {
namespace {

struct Avx2 {
  using V = __m256;
  using Mask = __m256i;  // all ones in the lanes to load or store
  static constexpr int W = 8;
  static Mask mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static V zero() { return _mm256_setzero_ps(); }
  static V broadcast(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, V v, Mask m) { _mm256_maskstore_ps(p, m, v); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};

}  // namespace

void product_avx2(const Operands& p) { product<Avx2, 6>(p); }

}  // namespace tg::small_gemm

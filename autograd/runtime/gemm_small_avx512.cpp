// gemm_small's kernel in AVX-512 registers: 16 floats a vector, blocks of 8 rows x 32 columns
// (16 accumulators of the 32 registers).  Compiled with -mavx512f -mfma, called only on CPUs that
// report AVX-512 (gemm_small.cpp).
#include <immintrin.h>

#include "gemm_small_kernel.hpp"

namespace tg::small_gemm {
namespace {

struct Avx512 {
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int W = 16;
  static Mask mask(int n) { return static_cast<Mask>((1u << n) - 1u); }
  static V zero() { return _mm512_setzero_ps(); }
  static V broadcast(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};

}  // namespace

void product_avx512(const Operands& p) { product<Avx512, 8>(p); }

}  // namespace tg::small_gemm

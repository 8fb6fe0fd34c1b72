// The register-blocked loop of gemm_small.hpp, written once for both vector instruction sets.
//
// Instantiated only in gemm_small_avx512.cpp and gemm_small_avx2.cpp, each compiled for its own
// instruction set (gemm_small.cpp includes this header for `Operands` only).  Nothing from the
// standard library but <cstddef>'s std::size_t is used here, and the instruction sets are types
// of an unnamed namespace: a function instantiated in an AVX-512 file must never be shared with
// the rest of the program, which runs on any x86-64 CPU.
#pragma once

#include <cstddef>

#include <immintrin.h>

namespace tg::small_gemm {
namespace {

// The registers of each instruction set: a vector of 8 or 16 floats, and a mask that says which
// lanes of a vector are columns of C (the last block may be narrow).
template <int Floats>
struct Registers;
template <>
struct Registers<8> {  // AVX2: a mask is a vector, all ones in the lanes to load or store
  using V = __m256;
  using Mask = __m256i;
};
template <>
struct Registers<16> {  // AVX-512: a mask is a bit per lane
  using V = __m512;
  using Mask = __mmask16;
};

// What the loop does with them, each operation spelled for AVX2 (8 floats, with FMA) and for
// AVX-512 (16); a file instantiates only its own instruction set's branches.
template <int Floats>
struct Isa {
  using V = typename Registers<Floats>::V;
  using Mask = typename Registers<Floats>::Mask;
  static constexpr int W = Floats;
  static constexpr bool kAvx512 = Floats == 16;

  static Mask mask(int n) {  // the first n lanes
    if constexpr (kAvx512) return static_cast<Mask>((1u << n) - 1u);
    else return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V zero() {
    if constexpr (kAvx512) return _mm512_setzero_ps();
    else return _mm256_setzero_ps();
  }
  static V broadcast(float x) {
    if constexpr (kAvx512) return _mm512_set1_ps(x);
    else return _mm256_set1_ps(x);
  }
  static V load(const float* p, Mask m) {
    if constexpr (kAvx512) return _mm512_maskz_loadu_ps(m, p);
    else return _mm256_maskload_ps(p, m);
  }
  static void store(float* p, V v, Mask m) {
    if constexpr (kAvx512) _mm512_mask_storeu_ps(p, m, v);
    else _mm256_maskstore_ps(p, m, v);
  }
  static V mul(V a, V b) {
    if constexpr (kAvx512) return _mm512_mul_ps(a, b);
    else return _mm256_mul_ps(a, b);
  }
  static V fma(V a, V b, V c) {  // a * b + c, rounded once
    if constexpr (kAvx512) return _mm512_fmadd_ps(a, b, c);
    else return _mm256_fmadd_ps(a, b, c);
  }
};

}  // namespace

// One product, with op(B) already as rows: op(A)[i][k] is A[i * rs_a + k * cs_a] (so a
// transposed A is read in place), op(B)[k][j] is B[k * ldb + j].
struct Operands {
  std::size_t M, N, K;
  const float* A;
  std::size_t rs_a, cs_a;
  const float* B;
  std::size_t ldb;
  float* C;
  std::size_t ldc;
  float beta;
};

// Rows [i, i + MR) and columns [j, j + NV W) of C, summed over k in [k0, k1), with only the
// first columns of the last vector valid (mask).  Every element is summed as
//   acc = beta C (or 0 when beta is 0);  acc = fma(op(A)[i][k], op(B)[k][j], acc) for k = 0, 1, ...
// and a slice of K that is not the first starts from the partial sum the slice before it stored
// in C: so cutting K into slices changes no bit of the result.
template <class Isa, int MR, int NV>
inline void block(const Operands& p, std::size_t i, std::size_t j, std::size_t k0, std::size_t k1,
                  const typename Isa::Mask (&mask)[NV]) {
  using V = typename Isa::V;
  V acc[MR][NV];
  float* c = p.C + i * p.ldc + j;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const float* c_rv = c + r * p.ldc + v * Isa::W;
      if (k0 > 0) acc[r][v] = Isa::load(c_rv, mask[v]);
      else if (p.beta == 0.0f) acc[r][v] = Isa::zero();
      else acc[r][v] = Isa::mul(Isa::broadcast(p.beta), Isa::load(c_rv, mask[v]));
    }

  const float* a = p.A + i * p.rs_a + k0 * p.cs_a;  // op(A)[i][k0]
  const float* b = p.B + k0 * p.ldb + j;            // op(B)[k0][j]
  for (std::size_t k = k0; k < k1; ++k, a += p.cs_a, b += p.ldb) {
    V b_k[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) b_k[v] = Isa::load(b + v * Isa::W, mask[v]);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const V a_rk = Isa::broadcast(a[r * p.rs_a]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = Isa::fma(a_rk, b_k[v], acc[r][v]);
    }
  }

#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) Isa::store(c + r * p.ldc + v * Isa::W, acc[r][v], mask[v]);
}

// The rows left below the last whole block of MR: `rows` < MR of them.
template <class Isa, int MR, int NV>
inline void tail_rows(const Operands& p, std::size_t i, std::size_t j, std::size_t k0,
                      std::size_t k1, const typename Isa::Mask (&mask)[NV], std::size_t rows) {
  if constexpr (MR > 1) {
    if (rows == MR - 1) block<Isa, MR - 1, NV>(p, i, j, k0, k1, mask);
    else tail_rows<Isa, MR - 1, NV>(p, i, j, k0, k1, mask, rows);
  }
}

// The loops around the blocks, for caches of the sizes x86-64 cores have (L1 32-48 KB, L2 1-2 MB):
//   rows of C in chunks of kChunk (the chunk's slice of op(A), kChunk x kDepth floats, stays in
//   L2),
//     K in slices of kDepth,
//       a panel of columns (2 vectors wide, or 1 for a last panel of at most W columns), whose
//       slice of op(B) (kDepth x 2 W floats) stays in L1,
//         the blocks of MR rows down the chunk.
inline constexpr std::size_t kDepth = 128, kChunk = 192;

template <class Isa, int MR, int NV>
inline void panel(const Operands& p, std::size_t i0, std::size_t i1, std::size_t j, std::size_t k0,
                  std::size_t k1, const typename Isa::Mask (&mask)[NV]) {
  std::size_t i = i0;
  for (; i + MR <= i1; i += MR) block<Isa, MR, NV>(p, i, j, k0, k1, mask);
  if (i < i1) tail_rows<Isa, MR, NV>(p, i, j, k0, k1, mask, i1 - i);
}

template <class Isa, int MR>
inline void product(const Operands& p) {
  for (std::size_t i0 = 0; i0 < p.M; i0 += kChunk) {
    const std::size_t i1 = p.M - i0 < kChunk ? p.M : i0 + kChunk;
    for (std::size_t k0 = 0; k0 < p.K || k0 == 0; k0 += kDepth) {
      const std::size_t k1 = p.K - k0 < kDepth ? p.K : k0 + kDepth;
      for (std::size_t j = 0; j < p.N; j += 2 * Isa::W) {
        const std::size_t cols = p.N - j < 2 * Isa::W ? p.N - j : 2 * Isa::W;
        if (cols <= Isa::W) {
          const typename Isa::Mask mask[1] = {Isa::mask(static_cast<int>(cols))};
          panel<Isa, MR, 1>(p, i0, i1, j, k0, k1, mask);
        } else {
          const typename Isa::Mask mask[2] = {Isa::mask(Isa::W),
                                              Isa::mask(static_cast<int>(cols - Isa::W))};
          panel<Isa, MR, 2>(p, i0, i1, j, k0, k1, mask);
        }
      }
    }
  }
}

}  // namespace tg::small_gemm

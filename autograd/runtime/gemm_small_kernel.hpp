// The register-blocked loop of gemm_small.hpp, written once for any vector instruction set.
//
// Instantiated only in gemm_small_avx512.cpp and gemm_small_avx2.cpp, each compiled for its own
// instruction set with a traits struct `Isa` in an anonymous namespace (gemm_small.cpp includes
// it for `Operands` only):
//   Isa::V, Isa::W        a vector of W floats
//   Isa::Mask             which lanes of a vector are columns of C (the last block may be narrow)
//   Isa::mask(n)          the first n lanes
//   Isa::zero(), broadcast(x), load(p, mask), store(p, v, mask), mul(a, b), fma(a, b, c) = a * b + c
// Nothing from the standard library but <cstddef>'s std::size_t is used here: a function
// instantiated in an AVX-512 file must never be shared with the rest of the program, which runs
// on any x86-64 CPU.
#pragma once

#include <cstddef>

namespace tg::small_gemm {

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
inline void tail_rows(const Operands& p, std::size_t i, std::size_t j, std::size_t k0, std::size_t k1,
                      const typename Isa::Mask (&mask)[NV], std::size_t rows) {
  if constexpr (MR > 1) {
    if (rows == MR - 1)
      block<Isa, MR - 1, NV>(p, i, j, k0, k1, mask);
    else
      tail_rows<Isa, MR - 1, NV>(p, i, j, k0, k1, mask, rows);
  }
}

// The loops around the blocks, for caches of the sizes x86-64 cores have (L1 32-48 KB, L2 1-2 MB):
//   rows of C in chunks of kChunk (the chunk's slice of op(A), kChunk x kDepth floats, stays in L2),
//     K in slices of kDepth,
//       a panel of columns (2 vectors wide, or 1 for a last panel of at most W columns), whose
//       slice of op(B) (kDepth x 2 W floats) stays in L1,
//         the blocks of MR rows down the chunk.
inline constexpr std::size_t kDepth = 128, kChunk = 192;

template <class Isa, int MR, int NV>
inline void panel(const Operands& p, std::size_t i0, std::size_t i1, std::size_t j, std::size_t k0, std::size_t k1,
                  const typename Isa::Mask (&mask)[NV]) {
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
          const typename Isa::Mask mask[2] = {Isa::mask(Isa::W), Isa::mask(static_cast<int>(cols - Isa::W))};
          panel<Isa, MR, 2>(p, i0, i1, j, k0, k1, mask);
        }
      }
    }
  }
}

}  // namespace tg::small_gemm

// The register-blocked loop of gemm_small.hpp, written once for any vector instruction set.
//
// Included only by gemm_small_avx512.cpp and gemm_small_avx2.cpp, each compiled for its own
// instruction set with a traits struct `Isa`:
//   Isa::V, Isa::W        a vector of W floats
//   Isa::Mask             which lanes of a vector are columns of C (the last block may be narrow)
//   Isa::mask(n)          the first n lanes
//   Isa::zero(), broadcast(x), load(p, mask), store(p, v, mask), fma(a, b, c) = a * b + c
// Nothing from the standard library is included here: a template instantiated in an AVX-512
// file must never be shared with the rest of the program, which runs on any x86-64 CPU.
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

// C[i .. i + MR)[j .. j + NV W), with only the first columns of the last vector valid (mask).
template <class Isa, int MR, int NV>
inline void block(const Operands& p, std::size_t i, std::size_t j, const typename Isa::Mask (&mask)[NV]) {
  using V = typename Isa::V;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = Isa::zero();

  const float* a = p.A + i * p.rs_a;  // op(A)[i][0]
  const float* b = p.B + j;           // op(B)[0][j]
  for (std::size_t k = 0; k < p.K; ++k, a += p.cs_a, b += p.ldb) {
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
    for (int v = 0; v < NV; ++v) {
      float* c = p.C + (i + r) * p.ldc + j + v * Isa::W;
      const V out = p.beta == 0.0f ? acc[r][v] : Isa::fma(Isa::broadcast(p.beta), Isa::load(c, mask[v]), acc[r][v]);
      Isa::store(c, out, mask[v]);
    }
}

// The rows left below the last whole block of MR: `rows` < MR of them.
template <class Isa, int MR, int NV>
inline void tail_rows(const Operands& p, std::size_t i, std::size_t j, const typename Isa::Mask (&mask)[NV],
                      std::size_t rows) {
  if constexpr (MR > 1) {
    if (rows == MR - 1)
      block<Isa, MR - 1, NV>(p, i, j, mask);
    else
      tail_rows<Isa, MR - 1, NV>(p, i, j, mask, rows);
  }
}

// All of C, a panel of columns at a time: 2 vectors wide, or 1 for a panel of at most W columns.
template <class Isa, int MR>
inline void product(const Operands& p) {
  for (std::size_t j = 0; j < p.N; j += 2 * Isa::W) {
    const std::size_t cols = p.N - j < 2 * Isa::W ? p.N - j : 2 * Isa::W;
    const auto run = [&](const auto& mask) {
      constexpr int nv = sizeof(mask) / sizeof(mask[0]);
      std::size_t i = 0;
      for (; i + MR <= p.M; i += MR) block<Isa, MR, nv>(p, i, j, mask);
      if (i < p.M) tail_rows<Isa, MR, nv>(p, i, j, mask, p.M - i);
    };
    if (cols <= Isa::W) {
      const typename Isa::Mask mask[1] = {Isa::mask(static_cast<int>(cols))};
      run(mask);
    } else {
      const typename Isa::Mask mask[2] = {Isa::mask(Isa::W), Isa::mask(static_cast<int>(cols - Isa::W))};
      run(mask);
    }
  }
}

}  // namespace tg::small_gemm

// Matrix products: the one place where tapegrad multiplies matrices.
//
// float32 products up to about 10^8 multiply-adds (2^22 on Intel CPUs) run on tapegrad's own
// AVX-512 or AVX2 kernels (gemm_small.hpp), larger ones on oneDNN's sgemm (Debian's libdnnl), whose
// kernels are generated at run time for the instruction sets the CPU reports (AVX2, AVX-512, AMX),
// on Intel and AMD alike.  Both choose from what the CPU reports; OpenBLAS 0.3.21 picks its kernels
// from a table of the CPUs it knows instead, and on newer ones falls back to SSE3 at a fifth of the
// speed. float64 products (gradcheck) stay on BLAS.  oneDNN and BLAS are opened when a product
// first needs them (libraries.hpp): a program whose products are all small never maps either.
//
// Threads.  Every kernel call runs on one thread: tapegrad cuts a product into tiles of C whose
// size depends on M, N and K only, and runs the tiles on oneTBB's threads.  So
//   - OpenMP, which Debian's oneDNN is built with, never starts a team of its own, and no OpenMP
//     thread spins after a product, stealing a core from the TBB kernels that follow;
//   - each element of C is summed by the same kernel in the same order on 1 thread or on 8:
//     results are the same bits whatever the thread count.
#pragma once

#include "gemm_args.hpp"

namespace tg {

class Bf16Matrix;  // bf16.hpp

// In parallel tiles, for one large product.
void gemm(const GemmArgs& p, const float* A, const float* B, float* C, float beta);
void gemm(const GemmArgs& p, const double* A, const double* B, double* C, double beta);

// The same product with operands rounded beforehand (bf16.hpp's Bf16Matrix, packed, of A's and
// B's stored shapes): under the bf16 policy a product reads the rounded copies it is given
// instead of rounding A or B again (the same bits: the same rounding, the same kernel).  An
// empty copy is rounded as usual; under the f32 policy, or for a product too small to round,
// the copies are not read.
void gemm(const GemmArgs& p, const float* A, const float* B, float* C, float beta,
          const Bf16Matrix& a_rounded, const Bf16Matrix& b_rounded);

// True when this float32 product reads bfloat16 operands: under the bf16 policy, from 2^20
// multiply-adds up (smaller ones stay float32; bf16.hpp).
bool rounds_to_bf16(const GemmArgs& p);

// On the calling thread only: for kernels that are already parallel (one product per batch
// element or per attention head).
void gemm_serial(const GemmArgs& p, const float* A, const float* B, float* C, float beta);
void gemm_serial(const GemmArgs& p, const double* A, const double* B, double* C, double beta);

// Multiply-adds of the products run since counting began, for benchmarks (tapegrad-bench
// --ceiling): float32 ones, and those that read bfloat16 operands (bf16.hpp).  Counting costs an
// atomic add per product, so it is off until asked for.
struct ProductCount {
  double f32_macs = 0, bf16_macs = 0;
};
void count_products(bool on);  // on: from zero; off: the count kept
ProductCount product_count();

}  // namespace tg

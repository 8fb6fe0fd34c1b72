// tapegrad's own matrix-product kernels, register-blocked, for every float32 product up to about
// 10^8 multiply-adds (4 million on Intel CPUs; small_product_limit below): a tiny model's layers
// and attention's per-head blocks, and on other CPUs all of the tagger's and most of the
// sentiment model's products.  Larger ones go to oneDNN (gemm.cpp).
//
// oneDNN's sgemm packs both operands into its own layout before it multiplies.  For a 32 x 32
// x 32 product that packing and the call's bookkeeping cost more than the 32,768 multiply-adds,
// and it reaches a third of the core's speed.  The kernels here pack nothing (unless B is
// transposed, when they copy it once into rows) and keep a block of C in vector registers:
//
//   for each block of MR rows and W (or 2 W) columns of C:    // W: floats in one vector
//     acc[MR][..] = beta C block (or 0)                        // in registers
//     for k in 0..K:
//       b = row k of op(B), the block's columns                // 1 or 2 vector loads
//       for r in 0..MR: acc[r] += op(A)[i + r][k] * b           // a broadcast, fused multiply-add
//     C block = acc
//
// which is `gemm_reference` below, with the inner loops in AVX-512 or AVX2 registers, and K cut
// into slices that keep op(B)'s panel in the L1 cache (gemm_small_kernel.hpp).  The kernel is
// chosen once from the instructions the CPU reports; each element of C is summed in the order
// k = 0, 1, ..., K - 1 by one thread, so results do not depend on the thread count or the tiles.
#pragma once

#include <string>
#include <vector>

#include "../named_enum.hpp"
#include "gemm_args.hpp"

namespace tg {

enum class SmallKernel { none, avx2, avx512 };
// Names for TAPEGRAD_GEMM_KERNEL and messages: enum_name(kernel),
// enum_from_name<SmallKernel>("avx2").
constexpr auto enum_table(SmallKernel) {
  return named_values<SmallKernel>(
      "gemm kernel",
      {{SmallKernel::avx512, "avx512"}, {SmallKernel::avx2, "avx2"}, {SmallKernel::none, "none"}});
}

// The best kernel this CPU runs (none: it has neither AVX2 with FMA nor AVX-512).
SmallKernel best_small_kernel();

// The kernel tg::gemm uses: the best this CPU runs, or the one the environment variable
// TAPEGRAD_GEMM_KERNEL names (avx512, avx2, or none for oneDNN on every product), to run the
// test suite as it runs on another CPU.  A name this CPU cannot run, or an unknown one, throws
// std::invalid_argument at the first product.
SmallKernel small_kernel_in_use();

// The kernel of that name, checked against this CPU (what TAPEGRAD_GEMM_KERNEL is read with).
SmallKernel kernel_named(const std::string& name);

// The largest product, in multiply-adds, that tg::gemm sends to these kernels: 1.2e8 (AMD and
// others), or 2^22 on Intel CPUs, where oneDNN's sgemm overtakes them sooner (gemm_small.cpp);
// or the number TAPEGRAD_GEMM_SMALL_MACS gives, to run the test suite as on the other kind of
// CPU.  A value that is not a number throws std::invalid_argument at the first product.
double small_product_limit();

// True for the products tg::gemm sends to these kernels: it depends on M, N and K and on the
// limit above, which is fixed for the process.
bool is_small_product(const GemmArgs& p);

// C = op(A) op(B) + beta C with the given kernel (GemmArgs' leading dimensions must be set).
// Throws std::invalid_argument for SmallKernel::none or a kernel this CPU cannot run.
void gemm_small(SmallKernel kernel, const GemmArgs& p, const float* A, const float* B, float* C,
                float beta);

// op(B) as rows (K x N): B itself, or a transposed B copied into buffer, in which case p becomes
// the product's arguments for the copy (trans_b false, ldb N).
const float* rows_of_b(GemmArgs& p, const float* B, std::vector<float>& buffer);

// gemm_small with op(B) given as rows, p.trans_b false (tg::gemm arranges B once and cuts C into
// tiles).
void gemm_small_rows(SmallKernel kernel, const GemmArgs& p, const float* A, const float* B_rows,
                     float* C, float beta);

// The same product as plain loops, summed in the same order: what the kernels compute.
void gemm_reference(const GemmArgs& p, const float* A, const float* B, float* C, float beta);

}  // namespace tg

// gemm_small's kernel in AVX-512 registers: 16 floats a vector, blocks of 8 rows x 32 columns
// (16 accumulators of the 32 registers).  Compiled with -mavx512f -mfma, called only on CPUs that
// report AVX-512 (gemm_small.cpp).
#include "gemm_small_kernel.hpp"

namespace tg::small_gemm {

void product_avx512(const Operands& p) { product<Isa<16>, 8>(p); }

}  // namespace tg::small_gemm

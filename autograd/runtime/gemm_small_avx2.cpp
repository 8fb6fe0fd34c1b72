// gemm_small's kernel in AVX2 registers: 8 floats a vector, blocks of 6 rows x 16 columns (12
// accumulators of the 16 registers).  Compiled with -mavx2 -mfma, called only on CPUs that report
// both (gemm_small.cpp).
#include "gemm_small_kernel.hpp"

namespace tg::small_gemm {

void product_avx2(const Operands& p) { product<Isa<8>, 6>(p); }

}  // namespace tg::small_gemm

// A helper for tapegrad's own tests that reads an implementation header (which product kernel
// runs), so it stays out of testing.hpp, which is installed for tests of users' layers.
#pragma once

#include "autograd/runtime/gemm_small.hpp"
#include "testing.hpp"

namespace testing {

// float32 tensors that one computation reaches through other row or key counts (packed tokens
// against padded ones): equal to the bit on tapegrad's own product kernels, which sum every
// element k = 0, 1, ... whatever the sizes, so that the padded sums only add exact zeros; with
// every product on oneDNN (TAPEGRAD_GEMM_KERNEL=none, a CPU without AVX2, or a products limit
// below the tests' few thousand multiply-adds), which may block other sizes otherwise, within
// float32 rounding of values of order 1.  "To the bit" as float equality: +0 and -0 are equal.
inline bool same_bits_or_close(const tg::Tensor& a, const tg::Tensor& b) {
  if (a.shape() != b.shape()) return false;
  const tg::Array<float>&x = a.data<float>(), &y = b.data<float>();
  if (tg::small_kernel_in_use() != tg::SmallKernel::none && tg::small_product_limit() >= 1 << 16)
    return x == y;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!close_to(x.data()[i], y.data()[i], 1e-5, 1e-6)) return false;
  return true;
}

}  // namespace testing

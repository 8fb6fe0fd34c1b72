// The arguments of one matrix product, shared by tg::gemm (gemm.hpp) and the kernels it calls
// (gemm_small.hpp): a header of their own, so that neither of the two includes the other.
#pragma once

#include <cstddef>

namespace tg {

// C (M x N) = op(A) op(B) + beta C, row-major with leading dimensions lda, ldb, ldc, where
// op(A) is M x K (A is K x M when trans_a) and op(B) is K x N (B is N x K when trans_b).
// beta 0 overwrites C (which may hold garbage); beta 1 adds the product into it.
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  std::size_t M = 0, N = 0, K = 0;
  std::size_t lda = 0, ldb = 0, ldc = 0;  // 0: the packed width (K or M; N or K; N)
};

// The product's multiply-adds, M N K, as a double (what kernels and tilings are chosen by).
inline double multiply_adds(const GemmArgs& p) {
  return static_cast<double>(p.M) * static_cast<double>(p.N) * static_cast<double>(p.K);
}

}  // namespace tg

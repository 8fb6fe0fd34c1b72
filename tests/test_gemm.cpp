#define BOOST_TEST_MODULE gemm
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "autograd/runtime/gemm.hpp"
#include "testing.hpp"

using namespace tg;

namespace {

// op(A) (M x K) op(B) (K x N) + beta C through tg::gemm or tg::gemm_serial, against the same sums
// in float64, for one layout: leading dimensions `pad` wider than packed, C holding NaN before a
// beta-0 product (it must be overwritten, not read) and known values before a beta-1 one.
void check_layout(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, float beta,
                  bool serial) {
  std::mt19937 rng(static_cast<unsigned>(M * 131 + N * 17 + K));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const std::size_t pad = 3;
  const std::size_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K,
                    b_cols = tb ? K : N;
  const std::size_t lda = a_cols + pad, ldb = b_cols + pad, ldc = N + pad;
  std::vector<float> A(a_rows * lda), B(b_rows * ldb), C(M * ldc);
  for (float& x : A) x = uniform(rng);
  for (float& x : B) x = uniform(rng);
  for (float& x : C) x = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : uniform(rng);
  const std::vector<float> C0 = C;
  const GemmArgs p{
      .trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc};
  if (serial) gemm_serial(p, A.data(), B.data(), C.data(), beta);
  else gemm(p, A.data(), B.data(), C.data(), beta);
  double worst = 0;
  for (std::size_t i = 0; i < M; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      double want = beta == 0.0f ? 0.0 : beta * static_cast<double>(C0[i * ldc + j]);
      for (std::size_t k = 0; k < K; ++k)
        want += static_cast<double>(ta ? A[k * lda + i] : A[i * lda + k]) *
                (tb ? B[j * ldb + k] : B[k * ldb + j]);
      worst = std::max(worst, std::abs(C[i * ldc + j] - want));  // NaN makes this fail below
      if (!std::isfinite(C[i * ldc + j])) worst = std::numeric_limits<double>::infinity();
    }
  // Sums of K products of values in [-1, 1]: float32 rounding is below K * 1e-7.
  BOOST_TEST(worst <= 1e-6 * static_cast<double>(K + 1), "M " << M << " N " << N << " K " << K
                                                              << " trans " << ta << tb << " beta "
                                                              << beta << ": error " << worst);
  // Padding between rows is left alone.
  for (std::size_t i = 0; i < M; ++i)
    for (std::size_t j = N; j < ldc; ++j)
      BOOST_TEST((std::isnan(C[i * ldc + j]) ? std::isnan(C0[i * ldc + j])
                                             : C[i * ldc + j] == C0[i * ldc + j]));
}

}  // namespace

BOOST_AUTO_TEST_CASE(single_products_every_layout) {
  // One oneDNN call each (too small to cut into tiles), odd sizes included.
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 1.0f})
        for (auto [M, N, K] :
             {std::array<std::size_t, 3>{1, 1, 1}, {5, 17, 3}, {48, 48, 32}, {33, 70, 9}}) {
          check_layout(ta, tb, M, N, K, beta, true);
          check_layout(ta, tb, M, N, K, beta, false);
        }
}

BOOST_AUTO_TEST_CASE(large_products_in_tiles_every_layout) {
  // Cut into tiles of rows (M >= N) or of columns (N > M), each one oneDNN call.
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (auto [M, N, K] : {std::array<std::size_t, 3>{700, 260, 150}, {90, 900, 200}}) {
        check_layout(ta, tb, M, N, K, 0.0f, false);
        check_layout(ta, tb, M, N, K, 1.0f, false);
      }
}

BOOST_AUTO_TEST_CASE(empty_sums_and_empty_products) {
  std::vector<float> C(6, std::numeric_limits<float>::quiet_NaN());
  gemm(GemmArgs{.M = 2, .N = 3, .K = 0}, nullptr, nullptr, C.data(), 0.0f);  // K = 0: C = 0
  for (float c : C) BOOST_TEST(c == 0.0f);
  std::vector<float> D(6, 2.0f);
  gemm(GemmArgs{.M = 2, .N = 3, .K = 0}, nullptr, nullptr, D.data(), 1.0f);  // C = 1 C
  for (float d : D) BOOST_TEST(d == 2.0f);
  gemm_serial(GemmArgs{.M = 2, .N = 3, .K = 0}, nullptr, nullptr, D.data(), 0.5f);  // C = 0.5 C
  for (float d : D) BOOST_TEST(d == 1.0f);
  gemm(GemmArgs{.M = 0, .N = 3, .K = 4}, nullptr, nullptr, nullptr, 0.0f);  // nothing to write
}

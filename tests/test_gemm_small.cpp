#define BOOST_TEST_MODULE gemm_small
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "autograd/runtime/gemm.hpp"
#include "autograd/runtime/gemm_small.hpp"
#include "testing.hpp"

using namespace tg;

namespace {

// One product's operands, with leading dimensions wider than packed and C either NaN (a beta-0
// product must overwrite it without reading it) or random.
struct Case {
  GemmArgs p;
  std::vector<float> A, B, C;
};

Case make_case(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, float beta,
               unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const std::size_t pad = 3;
  const std::size_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K,
                    b_cols = tb ? K : N;
  Case c;
  c.p = GemmArgs{.trans_a = ta,
                 .trans_b = tb,
                 .M = M,
                 .N = N,
                 .K = K,
                 .lda = a_cols + pad,
                 .ldb = b_cols + pad,
                 .ldc = N + pad};
  c.A.resize(a_rows * c.p.lda);
  c.B.resize(b_rows * c.p.ldb);
  c.C.resize(M * c.p.ldc);
  for (float& x : c.A) x = uniform(rng);
  for (float& x : c.B) x = uniform(rng);
  for (float& x : c.C) x = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : uniform(rng);
  return c;
}

// The same bits, NaN included (padding between rows must be left as it was).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The kernels this CPU runs: AVX-512 CPUs run the AVX2 one too.
std::vector<SmallKernel> runnable_kernels() {
  switch (best_small_kernel()) {
    case SmallKernel::avx512: return {SmallKernel::avx2, SmallKernel::avx512};
    case SmallKernel::avx2: return {SmallKernel::avx2};
    case SmallKernel::none: return {};
  }
  return {};
}

}  // namespace

BOOST_AUTO_TEST_CASE(reference_loops_agree_with_float64) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 1.0f, 0.5f}) {
        Case c = make_case(ta, tb, 7, 19, 33, beta, 1);
        const std::vector<float> C0 = c.C;
        gemm_reference(c.p, c.A.data(), c.B.data(), c.C.data(), beta);
        double worst = 0;
        for (std::size_t i = 0; i < c.p.M; ++i)
          for (std::size_t j = 0; j < c.p.N; ++j) {
            double want = beta == 0.0f ? 0.0 : beta * static_cast<double>(C0[i * c.p.ldc + j]);
            for (std::size_t k = 0; k < c.p.K; ++k)
              want += static_cast<double>(ta ? c.A[k * c.p.lda + i] : c.A[i * c.p.lda + k]) *
                      (tb ? c.B[j * c.p.ldb + k] : c.B[k * c.p.ldb + j]);
            const float got = c.C[i * c.p.ldc + j];
            worst = std::isfinite(got) ? std::max(worst, std::abs(got - want))
                                       : std::numeric_limits<double>::infinity();
          }
        BOOST_TEST(worst <= 1e-5, "trans " << ta << tb << " beta " << beta << ": error " << worst);
      }
}

// Each kernel sums every element of C in the reference's order with the same fused
// multiply-adds, so it must give the reference's bits: every row count around the register
// blocks (8 and 6 rows), every column count around the vectors (8 and 16 floats) and the two-vector
// panels, K across its slices of 128, both transposes, and beta 0, 1 and 0.5.
BOOST_AUTO_TEST_CASE(kernels_give_the_reference_bits) {
  const std::vector<SmallKernel> kernels = runnable_kernels();
  if (kernels.empty()) {
    BOOST_TEST_MESSAGE("this CPU has neither AVX2 with FMA nor AVX-512: no kernel to check");
    BOOST_TEST((small_kernel_in_use() == SmallKernel::none));  // and tg::gemm calls none
  }
  BOOST_TEST_MESSAGE("kernels this CPU runs: "
                     << kernels.size() << ", best " << enum_name(best_small_kernel())
                     << ", tg::gemm uses " << enum_name(small_kernel_in_use()));
  unsigned seed = 0;
  for (SmallKernel kernel : kernels) {
    std::size_t checked = 0;
    for (std::size_t M : {1, 2, 5, 6, 7, 8, 9, 12, 13, 16, 17, 33})
      for (std::size_t N : {1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40})
        for (std::size_t K : {0, 1, 3, 33, 128, 129, 257})
          for (bool ta : {false, true})
            for (bool tb : {false, true})
              for (float beta : {0.0f, 1.0f, 0.5f}) {
                Case want = make_case(ta, tb, M, N, K, beta, ++seed);
                Case got = want;
                gemm_reference(want.p, want.A.data(), want.B.data(), want.C.data(), beta);
                gemm_small(kernel, got.p, got.A.data(), got.B.data(), got.C.data(), beta);
                const bool same = same_bits(got.C, want.C);
                BOOST_TEST(same, enum_name(kernel) << ": M " << M << " N " << N << " K " << K
                                                   << " trans " << ta << tb << " beta " << beta);
                if (!same) return;  // one failure says it; thousands would bury it
                ++checked;
              }
    BOOST_TEST(checked == 12u * 13u * 7u * 4u * 3u);
  }
}

BOOST_AUTO_TEST_CASE(gemm_sends_products_up_to_the_limit_to_the_kernels) {
  // 1.2e8 multiply-adds, 2^22 on Intel CPUs, or what TAPEGRAD_GEMM_SMALL_MACS says.
  const char* set = std::getenv("TAPEGRAD_GEMM_SMALL_MACS");
  const double limit = small_product_limit();
  if (set != nullptr && *set != '\0') BOOST_TEST(limit == std::strtod(set, nullptr));
  else BOOST_TEST(limit == (__builtin_cpu_is("intel") ? 4194304.0 : 1.2e8));
  BOOST_TEST(is_small_product({.M = 32, .N = 32, .K = 32}) == (32768 <= limit));
  BOOST_TEST(is_small_product({.M = 256, .N = 128, .K = 128}) == (4194304 <= limit));
  BOOST_TEST(is_small_product({.M = 257, .N = 128, .K = 128}) == (4210688 <= limit));
  BOOST_TEST(is_small_product({.M = 1536, .N = 512, .K = 128}) == (100663296 <= limit));
  BOOST_TEST(!is_small_product({.M = 2048, .N = 256, .K = 256}));  // the translator's: oneDNN
  if (small_kernel_in_use() == SmallKernel::none) return;          // TAPEGRAD_GEMM_KERNEL=none
  if (limit < 4194304) return;  // a lower TAPEGRAD_GEMM_SMALL_MACS: oneDNN's bits, not these
  // Through gemm_serial, and through tg::gemm in one piece or in tiles of rows or of columns
  // (some of them on other threads), a product has the reference's bits: the tiles never split
  // a sum, and K's slices (of 128) never change its order.  At most 2^22 multiply-adds each,
  // so that the kernels take them on any CPU.
  for (auto [M, N, K] :
       {std::array<std::size_t, 3>{48, 48, 32}, {300, 90, 150}, {90, 300, 150}, {130, 70, 400}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (bool serial : {false, true})
          for (float beta : {0.0f, 1.0f}) {
            Case want = make_case(ta, tb, M, N, K, beta, 7);
            Case got = want;
            gemm_reference(want.p, want.A.data(), want.B.data(), want.C.data(), beta);
            if (serial) gemm_serial(got.p, got.A.data(), got.B.data(), got.C.data(), beta);
            else gemm(got.p, got.A.data(), got.B.data(), got.C.data(), beta);
            BOOST_TEST(same_bits(got.C, want.C), "M " << M << " N " << N << " K " << K << " trans "
                                                      << ta << tb << " beta " << beta
                                                      << (serial ? " gemm_serial" : " gemm"));
          }
}

BOOST_AUTO_TEST_CASE(a_kernel_the_cpu_lacks_is_refused) {
  Case c = make_case(false, false, 2, 2, 2, 0.0f, 3);
  CHECK_THROWS_WITH(gemm_small(SmallKernel::none, c.p, c.A.data(), c.B.data(), c.C.data(), 0.0f),
                    "gemm_small: this CPU cannot run the none kernel");
  if (best_small_kernel() != SmallKernel::avx512)
    CHECK_THROWS_WITH(
        gemm_small(SmallKernel::avx512, c.p, c.A.data(), c.B.data(), c.C.data(), 0.0f),
        "cannot run the avx512 kernel");
}

BOOST_AUTO_TEST_CASE(the_environment_names_a_kernel_this_cpu_runs) {
  BOOST_TEST((kernel_named("none") == SmallKernel::none));
  CHECK_THROWS_WITH(kernel_named("avx3"),
                    "gemm kernel: unknown gemm kernel 'avx3' (known: avx512, avx2, none)");
  CHECK_THROWS_WITH(kernel_named(""), "unknown gemm kernel '' (known: avx512, avx2, none)");
  if (best_small_kernel() == SmallKernel::avx512)
    BOOST_TEST((kernel_named("avx2") == SmallKernel::avx2));
  if (best_small_kernel() != SmallKernel::avx512)
    CHECK_THROWS_WITH(
        kernel_named("avx512"),
        "gemm kernel: this CPU does not report AVX-512, which the avx512 kernel needs");
  else BOOST_TEST((kernel_named("avx512") == SmallKernel::avx512));
}

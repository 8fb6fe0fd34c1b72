// bfloat16 (autograd/runtime/bf16.hpp): rounding to nearest even against a rounding computed
// another way, and products under the bf16 policy against float64 sums of the rounded operands,
// on the kernel in use (oneDNN's on a CPU with bfloat16 instructions; CTest runs this file again
// with TAPEGRAD_BF16_KERNEL=emulated).
#define BOOST_TEST_MODULE bf16
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "autograd/runtime/bf16.hpp"
#include "autograd/runtime/gemm.hpp"
#include "testing.hpp"

using namespace tg;

namespace {

// x rounded to 8 significant bits, ties to even, by float64 arithmetic: x = m 2^e with
// 0.5 <= |m| < 1, and m 2^8 rounded by nearbyint (the default rounding mode is to nearest even).
// Numbers below float32's smallest normal keep bfloat16's fixed spacing of 2^-133.
double reference_round(float x) {
  if (!std::isfinite(x) || x == 0.0f) return x;
  int e = 0;
  std::frexp(static_cast<double>(x), &e);
  const int step = std::max(e - 8, -133);  // the spacing of bfloat16 numbers around x
  const double r = std::ldexp(std::nearbyint(std::ldexp(static_cast<double>(x), -step)), step);
  return std::abs(r) > std::numeric_limits<float>::max() ? std::copysign(INFINITY, r) : r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(rounding_is_to_nearest_even) {
  const float one = 1.0f, ulp = std::ldexp(1.0f, -7);  // bfloat16's spacing at 1
  BOOST_TEST(to_bf16(one) == 0x3f80u);
  BOOST_TEST(round_bf16(one + ulp / 2) == one);                // a tie: to the even 1
  BOOST_TEST(round_bf16(one + 3 * ulp / 2) == one + 2 * ulp);  // a tie: to the even 1 + 2 ulp
  BOOST_TEST(round_bf16(one + ulp / 2 + std::ldexp(1.0f, -20)) == one + ulp);  // above a tie
  BOOST_TEST(round_bf16(-(one + 3 * ulp / 2)) == -(one + 2 * ulp));
  BOOST_TEST(round_bf16(std::numeric_limits<float>::max()) == INFINITY);  // past the largest
  BOOST_TEST(round_bf16(-INFINITY) == -INFINITY);
  BOOST_TEST(std::signbit(round_bf16(-0.0f)));
  BOOST_TEST(std::isnan(round_bf16(std::numeric_limits<float>::quiet_NaN())));
  // A signalling NaN whose payload sits in the lower half would round to infinity if cut.
  BOOST_TEST(std::isnan(round_bf16(std::bit_cast<float>(0x7f800001u))));
  BOOST_TEST(from_bf16(0x4049u) == 3.140625f);  // bfloat16's pi: exact
}

BOOST_AUTO_TEST_CASE(rounding_agrees_with_float64_arithmetic) {
  // Random bit patterns (every exponent, subnormals included), then the array versions.
  std::mt19937 rng(7);
  std::vector<float> xs;
  for (int i = 0; i < 200000; ++i) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    if (!std::isnan(x)) xs.push_back(x);
  }
  for (std::uint32_t low : {0x8000u, 0x7fffu, 0x8001u, 0x18000u})  // ties and their neighbours
    for (std::uint32_t high : {0x3f80u, 0x3f81u, 0x0001u, 0x7f7fu, 0xbf80u})
      if (const float x = std::bit_cast<float>((high << 16) + low); !std::isnan(x)) xs.push_back(x);
  std::size_t wrong = 0;
  for (float x : xs)
    if (static_cast<double>(round_bf16(x)) != reference_round(x)) {
      if (++wrong <= 5)
        BOOST_TEST_MESSAGE("bits " << std::hex << std::bit_cast<std::uint32_t>(x) << ": "
                                   << round_bf16(x) << " against " << reference_round(x));
    }
  BOOST_TEST(wrong == 0u);
  std::vector<std::uint16_t> bits(xs.size());
  std::vector<float> rounded(xs.size());
  to_bf16(xs.data(), bits.data(), xs.size());
  round_bf16(xs.data(), rounded.data(), xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    BOOST_TEST_REQUIRE(bits[i] == to_bf16(xs[i]));
    BOOST_TEST_REQUIRE(std::bit_cast<std::uint32_t>(rounded[i]) ==
                       std::bit_cast<std::uint32_t>(round_bf16(xs[i])));
  }
}

namespace {

// One product under the bf16 policy, op(A) (M x K) op(B) (K x N) + beta C, leading dimensions
// wider than packed, against float64 sums of the rounded operands (what it must compute) and of
// the operands themselves (what it must not: the rounding has to show).
void check_product(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, float beta,
                   bool serial) {
  std::mt19937 rng(static_cast<unsigned>(M * 7 + N * 3 + K));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const std::size_t pad = 5, a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K,
                    b_cols = tb ? K : N, lda = a_cols + pad, ldb = b_cols + pad, ldc = N + pad;
  std::vector<float> A(a_rows * lda), B(b_rows * ldb), C(M * ldc);
  for (float& x : A) x = uniform(rng);
  for (float& x : B) x = uniform(rng);
  for (float& x : C) x = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : uniform(rng);
  const std::vector<float> C0 = C;
  {
    PrecisionGuard bf16(Precision::bf16);
    const GemmArgs p{
        .trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc};
    if (serial) gemm_serial(p, A.data(), B.data(), C.data(), beta);
    else gemm(p, A.data(), B.data(), C.data(), beta);
  }
  double worst = 0, from_exact = 0;
  for (std::size_t i = 0; i < M; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      const double start = beta == 0.0f ? 0.0 : static_cast<double>(C0[i * ldc + j]);
      double want = start, exact = start;
      for (std::size_t k = 0; k < K; ++k) {
        const float a = ta ? A[k * lda + i] : A[i * lda + k],
                    b = tb ? B[j * ldb + k] : B[k * ldb + j];
        want += reference_round(a) * reference_round(b);
        exact += static_cast<double>(a) * b;
      }
      const double got = C[i * ldc + j];
      worst = std::isfinite(got) ? std::max(worst, std::abs(got - want)) : INFINITY;
      from_exact = std::max(from_exact, std::abs(got - exact));
    }
  const std::string where = "M " + std::to_string(M) + " N " + std::to_string(N) + " K " +
                            std::to_string(K) + " trans " + std::to_string(ta) +
                            std::to_string(tb) + " beta " + std::to_string(beta) + " on " +
                            precision_description();
  // Exact products summed in float32: within K float32 roundings of sums below K.
  BOOST_TEST(worst <= 1e-6 * static_cast<double>(K + 1), where << ": error " << worst);
  // Operands rounded to 8 bits move a sum of K terms by about sqrt(K) 2^-9: far above float32's.
  BOOST_TEST(from_exact > 1e-4, where << ": no rounding shows (" << from_exact << ")");
  for (std::size_t i = 0; i < M; ++i)  // padding between rows left alone
    for (std::size_t j = N; j < ldc; ++j)
      BOOST_TEST_REQUIRE(std::isnan(C[i * ldc + j]) == std::isnan(C0[i * ldc + j]));
}

}  // namespace

BOOST_AUTO_TEST_CASE(products_read_rounded_operands_every_layout) {
  // At least 2^20 multiply-adds: in tiles on oneTBB's threads (tg::gemm) and on one thread.
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 1.0f}) {
        check_product(ta, tb, 300, 290, 70, beta, /*serial=*/false);
        check_product(ta, tb, 96, 130, 200, beta, /*serial=*/true);
      }
}

BOOST_AUTO_TEST_CASE(small_products_stay_float32) {
  // Below 2^20 multiply-adds (an attention block, 64 x 64 x 32) the bits of the float32 product.
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> A(64 * 32), B(64 * 32), f32(64 * 64), bf16(64 * 64);
  for (float& x : A) x = uniform(rng);
  for (float& x : B) x = uniform(rng);
  const GemmArgs p{.trans_b = true, .M = 64, .N = 64, .K = 32};
  gemm(p, A.data(), B.data(), f32.data(), 0.0f);
  {
    PrecisionGuard guard(Precision::bf16);
    gemm(p, A.data(), B.data(), bf16.data(), 0.0f);
  }
  BOOST_TEST(f32 == bf16, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_policy_is_scoped) {
  BOOST_TEST((precision() == Precision::f32));
  {
    PrecisionGuard bf16(Precision::bf16);
    BOOST_TEST((precision() == Precision::bf16));
    BOOST_TEST(testing::contains(precision_description(), "bf16"));
    // oneDNN capped below its bfloat16 kernels (CTest's test_bf16.onednn_avx2): the emulation.
    const char* isa = std::getenv("ONEDNN_MAX_CPU_ISA");
    if (isa != nullptr && std::string(isa) == "AVX2" &&
        std::getenv("TAPEGRAD_BF16_KERNEL") == nullptr) {
      BOOST_TEST((bf16_kernel_in_use() == Bf16Kernel::emulated));
      if (cpu_has_bf16())
        BOOST_TEST(precision_description() ==
                   "bf16 (emulated: ONEDNN_MAX_CPU_ISA=AVX2 leaves oneDNN no bfloat16 kernels)");
    }
  }
  BOOST_TEST((precision() == Precision::f32));
  BOOST_TEST(precision_description() == "f32");
  BOOST_TEST((enum_from_name<Precision>("bf16") == Precision::bf16));
  CHECK_THROWS_WITH(enum_from_name<Precision>("fp8"), "fp8");
}

BOOST_AUTO_TEST_CASE(products_are_counted_by_precision) {
  // 300 x 290 x 70 reads bfloat16 operands under the policy, 64 x 64 x 32 does not.
  std::vector<float> A(300 * 70, 0.5f), B(70 * 290, 0.25f), C(300 * 290);
  const GemmArgs large{.M = 300, .N = 290, .K = 70}, small{.M = 64, .N = 64, .K = 32};
  count_products(true);
  gemm(large, A.data(), B.data(), C.data(), 0.0f);  // float32
  {
    PrecisionGuard bf16(Precision::bf16);
    gemm(large, A.data(), B.data(), C.data(), 0.0f);
    gemm_serial(small, A.data(), B.data(), C.data(), 0.0f);
  }
  const ProductCount n = product_count();
  count_products(false);
  BOOST_TEST(n.f32_macs == 300.0 * 290 * 70 + 64.0 * 64 * 32);
  BOOST_TEST(n.bf16_macs == 300.0 * 290 * 70);
  gemm(large, A.data(), B.data(), C.data(), 0.0f);  // not counted once counting is off
  BOOST_TEST(product_count().f32_macs == n.f32_macs);
}

// Operands rounded once (Bf16Matrix) give the bits of operands rounded by the product itself:
// the same rounding read by the same kernel, in every layout, with a copy for A, for B or both.
BOOST_AUTO_TEST_CASE(products_read_operands_rounded_beforehand_with_the_same_bits) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const std::size_t M = 300, N = 290, K = 70;
  std::vector<float> A(M * K), B(K * N);
  for (float& x : A) x = uniform(rng);
  for (float& x : B) x = uniform(rng);
  PrecisionGuard bf16(Precision::bf16);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const GemmArgs p{.trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K};
      const Bf16Matrix a(A.data(), ta ? K : M, ta ? M : K), b(B.data(), tb ? N : K, tb ? K : N);
      BOOST_TEST_REQUIRE(!a.empty());
      BOOST_TEST(a.bytes() == M * K * (a.bits() ? 2 : 4));
      std::vector<float> plain(M * N), both(M * N), only_a(M * N), only_b(M * N);
      gemm(p, A.data(), B.data(), plain.data(), 0.0f);
      gemm(p, A.data(), B.data(), both.data(), 0.0f, a, b);
      gemm(p, A.data(), B.data(), only_a.data(), 0.0f, a, Bf16Matrix());
      gemm(p, A.data(), B.data(), only_b.data(), 0.0f, Bf16Matrix(), b);
      BOOST_TEST(plain == both, "trans " << ta << tb);
      BOOST_TEST(plain == only_a, "trans " << ta << tb);
      BOOST_TEST(plain == only_b, "trans " << ta << tb);
    }
  // A copy of another shape is a mistake, named; under the f32 policy a copy is never read.
  const Bf16Matrix wrong(A.data(), K, M);
  std::vector<float> C(M * N), f32(M * N);
  CHECK_THROWS_WITH(gemm(GemmArgs{.M = M, .N = N, .K = K}, A.data(), B.data(), C.data(), 0.0f,
                         wrong, Bf16Matrix()),
                    "the rounded copy of A is 70 x 300, the operand is stored 300 x 70");
  PrecisionGuard back_to_f32(Precision::f32);
  BOOST_TEST(Bf16Matrix(A.data(), M, K).empty());
  gemm(GemmArgs{.M = M, .N = N, .K = K}, A.data(), B.data(), f32.data(), 0.0f);
  {
    PrecisionGuard rounded(Precision::bf16);
    const Bf16Matrix made_under_bf16(A.data(), M, K);
    PrecisionGuard f32_again(Precision::f32);
    gemm(GemmArgs{.M = M, .N = N, .K = K}, A.data(), B.data(), C.data(), 0.0f, made_under_bf16,
         Bf16Matrix());
  }
  BOOST_TEST(C == f32);
}

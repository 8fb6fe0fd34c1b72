#define BOOST_TEST_MODULE libraries
#include <dlfcn.h>

#include <cmath>
#include <random>
#include <vector>

#include "autograd/runtime/gemm.hpp"
#include "autograd/runtime/gemm_small.hpp"
#include "autograd/runtime/parallel.hpp"
#include "testing.hpp"

// oneDNN and BLAS are opened when a product first needs them (autograd/runtime/libraries.hpp). This
// test is one case, in order: what is open depends on every product the process ran before.

using namespace tg;

namespace {

// Whether the process has this library open now (RTLD_NOLOAD opens nothing new).
bool is_open(const char* soname) {
  void* handle = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  dlclose(handle);  // the reference RTLD_NOLOAD added
  return true;
}

// C = op(A) op(B) for random A, B (M x K, K x N) through tg::gemm, against the same sums in
// float64; the largest error.
template <class T>
double product_error(std::size_t M, std::size_t N, std::size_t K) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<T> uniform(-1, 1);
  std::vector<T> A(M * K), B(K * N), C(M * N);
  for (T& x : A) x = uniform(rng);
  for (T& x : B) x = uniform(rng);
  gemm(GemmArgs{.trans_a = false, .trans_b = false, .M = M, .N = N, .K = K}, A.data(), B.data(),
       C.data(), T(0));
  double worst = 0;
  for (std::size_t i = 0; i < M; i += 7)  // every 7th row: enough to see a wrong product, and fast
    for (std::size_t j = 0; j < N; ++j) {
      double want = 0;
      for (std::size_t k = 0; k < K; ++k) want += static_cast<double>(A[i * K + k]) * B[k * N + j];
      worst = std::max(worst, std::abs(C[i * N + j] - want));
    }
  return worst;
}

}  // namespace

BOOST_AUTO_TEST_CASE(opened_when_a_product_first_needs_them) {
  // Nothing has multiplied yet: neither library is open (the test links neither).
  BOOST_TEST(!is_open(TAPEGRAD_DNNL_SONAME));
  BOOST_TEST(!is_open(TAPEGRAD_BLAS_SONAME));
  set_num_threads(3);  // kept for OpenBLAS until it opens (3: no default OpenBLAS would pick here)

  // A small float32 product runs on tapegrad's own kernels; with TAPEGRAD_GEMM_KERNEL=none (or
  // a limit, TAPEGRAD_GEMM_SMALL_MACS, below its 120,000 multiply-adds), on oneDNN, which it opens.
  const bool own =
      small_kernel_in_use() != SmallKernel::none && small_product_limit() >= 40 * 50 * 60;
  BOOST_TEST(product_error<float>(40, 50, 60) <= 1e-6 * 61);
  BOOST_TEST(is_open(TAPEGRAD_DNNL_SONAME) == !own);
  BOOST_TEST(!is_open(TAPEGRAD_BLAS_SONAME));

  // Above the own kernels' limit (1.2e8 multiply-adds, 2^22 on Intel: small_product_limit()) a
  // float32 product goes to oneDNN.
  BOOST_TEST(!is_small_product(GemmArgs{.M = 600, .N = 500, .K = 420}));
  BOOST_TEST(product_error<float>(600, 500, 420) <= 1e-6 * 421);
  BOOST_TEST(is_open(TAPEGRAD_DNNL_SONAME));
  BOOST_TEST(!is_open(TAPEGRAD_BLAS_SONAME));

  // float64 products go to BLAS, which opens with the thread count set before.
  BOOST_TEST(product_error<double>(30, 20, 10) <= 1e-13);
  BOOST_REQUIRE(is_open(TAPEGRAD_BLAS_SONAME));
  void* blas = dlopen(TAPEGRAD_BLAS_SONAME, RTLD_NOW | RTLD_NOLOAD);
  const auto threads = reinterpret_cast<int (*)()>(dlsym(blas, "openblas_get_num_threads"));
  BOOST_REQUIRE(threads != nullptr);
  BOOST_TEST(threads() == 3);
  set_num_threads(1);  // and now that it is open, at once
  BOOST_TEST(threads() == 1);
  dlclose(blas);
}

#include "gemm.hpp"
#include "bf16.hpp"
#include "gemm_bf16.hpp"
#include "gemm_small.hpp"
#include "libraries.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

namespace tg {
namespace {

// Tiles for oneDNN: at least 16 MFLOP (0.1-0.2 ms on one core) and at least 128 rows or columns:
// every oneDNN call packs its own copy of the operand the tiles share (all of op(B) for a tile of
// rows), so small tiles would spend their time packing.  Up to 8 tiles share out a product
// among the threads; edges fall on multiples of 16, the register block of the AVX-512 kernels.
constexpr double kTileFlops = 16e6;
constexpr std::size_t kMaxTiles = 8;
constexpr std::size_t kMinTileEdge = 128;
constexpr std::size_t kTileAlign = 16;

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// The packed leading dimensions where the caller gave none.
GemmArgs with_leading_dims(GemmArgs p) {
  if (p.lda == 0) p.lda = p.trans_a ? p.M : p.K;
  if (p.ldb == 0) p.ldb = p.trans_b ? p.K : p.N;
  if (p.ldc == 0) p.ldc = p.N;
  return p;
}

// Handles what no kernel should see: an empty C, or an empty sum (C = beta C).  True when done.
template <class T>
bool trivial(const GemmArgs& p, T* C, T beta) {
  if (p.M == 0 || p.N == 0) return true;
  if (p.K > 0) return false;
  if (beta != T(1))
    for (std::size_t i = 0; i < p.M; ++i)
      for (std::size_t j = 0; j < p.N; ++j)
        C[i * p.ldc + j] = beta == T(0) ? T(0) : beta * C[i * p.ldc + j];
  return true;
}

// oneDNN is built with OpenMP; one thread per call means OpenMP never starts a team.  The
// setting is per thread, so each thread (the caller's, every TBB worker) makes it once.
void one_openmp_thread() {
  thread_local bool done = false;
  if (!done) {
    detail::onednn().omp_set_num_threads(1);
    done = true;
  }
}

// One oneDNN call on the calling thread.
void serial_kernel(const GemmArgs& p, const float* A, const float* B, float* C, float beta) {
  one_openmp_thread();
  const auto dim = [](std::size_t n) { return static_cast<dnnl_dim_t>(n); };
  const dnnl_status_t status =
      detail::onednn().sgemm(p.trans_a ? 'T' : 'N', p.trans_b ? 'T' : 'N', dim(p.M), dim(p.N),
                             dim(p.K), 1.0f, A, dim(p.lda), B, dim(p.ldb), beta, C, dim(p.ldc));
  if (status != dnnl_success)
    throw std::runtime_error("gemm: oneDNN's sgemm failed (status " + std::to_string(status) +
                             ") for M " + std::to_string(p.M) + ", N " + std::to_string(p.N) +
                             ", K " + std::to_string(p.K));
}

void serial_kernel(const GemmArgs& p, const double* A, const double* B, double* C, double beta) {
  const auto dim = [](std::size_t n) { return static_cast<int>(n); };
  detail::blas().dgemm(CblasRowMajor, p.trans_a ? CblasTrans : CblasNoTrans,
                       p.trans_b ? CblasTrans : CblasNoTrans, dim(p.M), dim(p.N), dim(p.K), 1.0, A,
                       dim(p.lda), B, dim(p.ldb), beta, C, dim(p.ldc));
}

// Tiles for tapegrad's own kernels (gemm_small.hpp), which pack nothing per tile: op(B) is put
// in rows once (when B is transposed) and shared.  So tiles can be small: about 4 MFLOP (20-40
// us), up to 32 of them, so that 2 or 3 threads get even shares; edges on multiples of 48 rows
// (whole blocks of 6 and of 8) or 32 columns (whole panels of two AVX-512 vectors).
constexpr double kOwnTileFlops = 4e6;
constexpr std::size_t kOwnMaxTiles = 32;
constexpr std::size_t kOwnRowAlign = 48, kOwnColumnAlign = 32;

// How one product is cut: along its longer side, into `tiles` pieces of `step` rows (or columns).
struct Tiling {
  bool by_rows;
  std::size_t extent, step, tiles;
};

Tiling tiling(const GemmArgs& p, double tile_flops, std::size_t max_tiles, std::size_t min_edge,
              std::size_t align) {
  const double flops = 2.0 * multiply_adds(p);
  const auto wanted =
      static_cast<std::size_t>(std::clamp(flops / tile_flops, 1.0, double(max_tiles)));
  Tiling t{.by_rows = p.M >= p.N, .extent = 0, .step = 0, .tiles = 0};
  t.extent = t.by_rows ? p.M : p.N;
  t.step = std::max(min_edge, ceil_div(ceil_div(t.extent, wanted), align) * align);
  t.tiles = ceil_div(t.extent, t.step);
  return t;
}

// Runs product(tile, A, B, C) for every tile of C, in parallel: rows [begin, begin + size) of
// op(A) and of C, or columns [begin, begin + size) of op(B) and of C.  Operands of float32 or
// of bfloat16 (as their bits).
template <class Operand, class Product>
void for_each_tile(const GemmArgs& p, const Tiling& t, const Operand* A, const Operand* B, float* C,
                   const Product& product) {
  if (t.tiles <= 1) {
    product(p, A, B, C);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(0, t.tiles, 1),
      [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i < r.end(); ++i) {
          const std::size_t begin = i * t.step, size = std::min(t.step, t.extent - begin);
          GemmArgs tile = p;
          if (t.by_rows) {
            tile.M = size;
            product(tile, A + (p.trans_a ? begin : begin * p.lda), B, C + begin * p.ldc);
          } else {
            tile.N = size;
            product(tile, A, B + (p.trans_b ? begin * p.ldb : begin), C + begin);
          }
        }
      });
}

// The own kernel a product runs on, or none for oneDNN: the same choice for gemm and gemm_serial.
SmallKernel own_kernel_for(const GemmArgs& p) {
  const SmallKernel in_use =
      small_kernel_in_use();  // first: a bad TAPEGRAD_GEMM_KERNEL fails any product
  return is_small_product(p) ? in_use : SmallKernel::none;
}

// On tapegrad's own kernels: each element of C is summed in the same order whatever the tiles.
void gemm_own(SmallKernel kernel, const GemmArgs& p, const float* A, const float* B, float* C,
              float beta) {
  const bool by_rows = p.M >= p.N;
  const Tiling t = tiling(p, kOwnTileFlops, kOwnMaxTiles, by_rows ? kOwnRowAlign : kOwnColumnAlign,
                          by_rows ? kOwnRowAlign : kOwnColumnAlign);
  // op(B)'s rows go to a buffer.  A product of one tile runs right here, with nothing waiting
  // inside, so when op(B) is small it takes the thread's buffer, kept from one product to the
  // next (for a small product a fresh one, allocated, zeroed and written cold, costs as much as
  // the transposing).  Only op(B)s of up to kKeptFloats go there, so that a large one is freed
  // with its product rather than held for the rest of the process.  Larger ones, and several
  // tiles, take this call's own: a TBB thread waiting below may run another product.
  constexpr std::size_t kKeptFloats = 4096;  // 16 KB
  thread_local std::vector<float> thread_buffer;
  std::vector<float> own_buffer;
  std::vector<float>& buffer =
      t.tiles <= 1 && p.K * p.N <= kKeptFloats ? thread_buffer : own_buffer;
  GemmArgs rows = p;
  const float* B_rows = rows_of_b(rows, B, buffer);  // rows: the same product with op(B) as rows
  for_each_tile(rows, t, A, B_rows, C,
                [&](const GemmArgs& tile, const float* a, const float* b, float* c) {
                  gemm_small_rows(kernel, tile, a, b, c, beta);
                });
}

// The product counter (count_products): multiply-adds, whole numbers well inside a double's 2^53.
std::atomic<bool> counting{false};
std::atomic<double> f32_macs{0}, bf16_macs{0};

void count(const GemmArgs& p) {
  if (!counting.load(std::memory_order_relaxed)) return;
  (rounds_to_bf16(p) ? bf16_macs : f32_macs).fetch_add(multiply_adds(p), std::memory_order_relaxed);
}

}  // namespace

void count_products(bool on) {
  if (on) f32_macs = 0, bf16_macs = 0;  // off: the count stays readable
  counting = on;
}

ProductCount product_count() { return {f32_macs.load(), bf16_macs.load()}; }

namespace {

// Every float32 product, serial or not: counted, then in the policy's precision (reading the
// operands' rounded copies where given).
void gemm_float(const GemmArgs& args, const float* A, const float* B, float* C, float beta,
                bool parallel, const Bf16Matrix* a_rounded = nullptr,
                const Bf16Matrix* b_rounded = nullptr) {
  const GemmArgs p = with_leading_dims(args);
  if (trivial(p, C, beta)) return;
  count(p);
  if (precision() == Precision::bf16)
    detail::gemm_bf16(p, A, B, C, beta, parallel, a_rounded, b_rounded);
  else detail::gemm_f32(p, A, B, C, beta, parallel);
}

}  // namespace

void gemm_serial(const GemmArgs& args, const float* A, const float* B, float* C, float beta) {
  gemm_float(args, A, B, C, beta, /*parallel=*/false);
}

void gemm_serial(const GemmArgs& args, const double* A, const double* B, double* C, double beta) {
  const GemmArgs p = with_leading_dims(args);
  if (!trivial(p, C, beta)) serial_kernel(p, A, B, C, beta);
}

void gemm(const GemmArgs& args, const float* A, const float* B, float* C, float beta) {
  gemm_float(args, A, B, C, beta, /*parallel=*/true);
}

void gemm(const GemmArgs& args, const float* A, const float* B, float* C, float beta,
          const Bf16Matrix& a_rounded, const Bf16Matrix& b_rounded) {
  gemm_float(args, A, B, C, beta, /*parallel=*/true, &a_rounded, &b_rounded);
}

namespace detail {

// In parallel: C cut along its longer side into tiles of whole rows (or whole columns); each tile
// is one serial product over all of K, so no sum is ever split between threads.
void gemm_f32(const GemmArgs& p, const float* A, const float* B, float* C, float beta,
              bool parallel) {
  const SmallKernel own = own_kernel_for(p);
  if (!parallel) {
    if (own != SmallKernel::none) gemm_small(own, p, A, B, C, beta);
    else serial_kernel(p, A, B, C, beta);
    return;
  }
  if (own != SmallKernel::none) {
    gemm_own(own, p, A, B, C, beta);
    return;
  }
  const Tiling t = tiling(p, kTileFlops, kMaxTiles, kMinTileEdge, kTileAlign);
  for_each_tile(p, t, A, B, C, [&](const GemmArgs& tile, const float* a, const float* b, float* c) {
    serial_kernel(tile, a, b, c, beta);
  });
}

// oneDNN's bfloat16 kernels pack their operands as sgemm's do: the same tiles.
void gemm_onednn_bf16(const GemmArgs& p, const std::uint16_t* A, const std::uint16_t* B, float* C,
                      float beta, bool parallel) {
  one_openmp_thread();
  if (!parallel) return onednn_bf16_kernel(p, A, B, C, beta);
  const Tiling t = tiling(p, kTileFlops, kMaxTiles, kMinTileEdge, kTileAlign);
  for_each_tile(
      p, t, A, B, C,
      [&](const GemmArgs& tile, const std::uint16_t* a, const std::uint16_t* b, float* c) {
        one_openmp_thread();
        onednn_bf16_kernel(tile, a, b, c, beta);
      });
}

}  // namespace detail

// float64 is for gradcheck, where speed matters little: BLAS, with its own threads.
void gemm(const GemmArgs& args, const double* A, const double* B, double* C, double beta) {
  gemm_serial(args, A, B, C, beta);
}

}  // namespace tg

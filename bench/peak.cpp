#include "peak.hpp"

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Each kernel runs `rounds` rounds of independent multiply-adds on 12 accumulators of type V
// (more than the instructions' latency times their throughput, so the units never wait) and
// returns GFLOP/s: `lanes` float32 lanes, `per_lane` multiply-adds each per instruction;
// madd(c, a, b) is c + a b in the kernel's instruction.  The accumulators are summed into
// `sink` so that nothing is optimised away.  A macro makes the whole function, because each
// kernel must be compiled for its own instruction set (a target attribute on the function),
// which a shared template or lambda would not get.
#define PEAK_KERNEL(name, isa, V, set1, add, madd, a_value, b_value, lanes, per_lane)         \
  __attribute__((target(isa))) double name(long rounds, float& sink) {                        \
    const auto a = a_value;                                                                   \
    const auto b = b_value;                                                                   \
    /* distinct starting values: equal accumulators would be merged into one */               \
    V c0 = set1(0.0f), c1 = set1(1.0f), c2 = set1(2.0f), c3 = set1(3.0f);                     \
    V c4 = set1(4.0f), c5 = set1(5.0f), c6 = set1(6.0f), c7 = set1(7.0f);                     \
    V c8 = set1(8.0f), c9 = set1(9.0f), c10 = set1(10.0f), c11 = set1(11.0f);                 \
    const auto start = Clock::now();                                                          \
    for (long r = 0; r < rounds; ++r) {                                                       \
      c0 = madd(c0, a, b), c1 = madd(c1, a, b), c2 = madd(c2, a, b), c3 = madd(c3, a, b);     \
      c4 = madd(c4, a, b), c5 = madd(c5, a, b), c6 = madd(c6, a, b), c7 = madd(c7, a, b);     \
      c8 = madd(c8, a, b), c9 = madd(c9, a, b), c10 = madd(c10, a, b), c11 = madd(c11, a, b); \
    }                                                                                         \
    const double s = seconds_since(start);                                                    \
    const V total = add(add(add(add(c0, c1), add(c2, c3)), add(add(c4, c5), add(c6, c7))),    \
                        add(add(c8, c9), add(c10, c11)));                                     \
    alignas(64) float sums[lanes];                                                            \
    std::memcpy(sums, &total, sizeof total);                                                  \
    for (float x : sums) sink += x;                                                           \
    return 12.0 * (lanes) * (per_lane)*2 * static_cast<double>(rounds) / s / 1e9;             \
  }

#define FMA512(c, a, b) _mm512_fmadd_ps(a, b, c)
#define FMA256(c, a, b) _mm256_fmadd_ps(a, b, c)
PEAK_KERNEL(fma_avx512, "avx512f,fma", __m512, _mm512_set1_ps, _mm512_add_ps, FMA512,
            _mm512_set1_ps(1.0f), _mm512_set1_ps(1e-8f), 16, 1)
PEAK_KERNEL(fma_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_add_ps, FMA256,
            _mm256_set1_ps(1.0f), _mm256_set1_ps(1e-8f), 8, 1)
// vdpbf16ps: 16 lanes, each adding two bfloat16 products.
PEAK_KERNEL(dot_bf16, "avx512f,avx512bf16", __m512, _mm512_set1_ps, _mm512_add_ps, _mm512_dpbf16_ps,
            (__m512bh)_mm512_set1_epi16(0x3f80), (__m512bh)_mm512_set1_epi16(0x3200), 16, 2)
#undef FMA512
#undef FMA256
#undef PEAK_KERNEL

// AMX: tdpbf16ps multiplies a 16 x 32 bfloat16 tile by a 32 x 16 one into a 16 x 16 float32
// tile, 8192 multiply-adds; four accumulator tiles from two A and two B tiles.  Linux hands out
// the tile registers only to a process that asks (arch_prctl ARCH_REQ_XCOMP_PERM for
// XFEATURE_XTILEDATA); -1 when it says no.
struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {};
  std::uint8_t rows[16] = {};
};

__attribute__((target("amx-tile,amx-bf16"))) double tiles_bf16(long rounds, float& sink) {
  constexpr long kRequestPermission = 0x1023, kTileData = 18;
  if (syscall(SYS_arch_prctl, kRequestPermission, kTileData) != 0) return -1;
  TileConfig config;
  for (int t = 0; t < 8; ++t) config.rows[t] = 16, config.bytes_per_row[t] = 64;
  _tile_loadconfig(&config);
  alignas(64) static std::uint16_t operand[16 * 32] = {};  // zeros: the sums stay 0
  alignas(64) static float result[16 * 16];
  _tile_zero(0);  // (the tile intrinsics are statements, not expressions)
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand, 64);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  const auto start = Clock::now();
  for (long r = 0; r < rounds; ++r) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  const double s = seconds_since(start);
  _tile_stored(0, result, 64);
  _tile_release();
  sink += result[0];
  return 4.0 * 8192 * 2 * static_cast<double>(rounds) / s / 1e9;
}

// The fastest of four runs of at least `seconds` / 4 each: the round count doubles until one
// run takes that long.
double fastest(double (*kernel)(long, float&), double seconds, float& sink) {
  long rounds = 1000;
  for (;;) {
    const auto start = Clock::now();
    if (kernel(rounds, sink) <= 0) return 0;  // the kernel cannot run here
    if (seconds_since(start) >= seconds / 4) break;
    rounds *= 2;
  }
  double best = 0;
  for (int run = 0; run < 4; ++run) best = std::max(best, kernel(rounds, sink));
  return best;
}

}  // namespace

Peak measure_peak(double seconds) {
  Peak peak;
  float sink = 0;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) {
    peak.f32_gflops = fastest(fma_avx512, seconds, sink), peak.f32_kernel = "AVX-512 FMA";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    peak.f32_gflops = fastest(fma_avx2, seconds, sink), peak.f32_kernel = "AVX2 FMA";
  }
  if (__builtin_cpu_supports("amx-bf16")) {
    const double tiles = fastest(tiles_bf16, seconds, sink);
    if (tiles > 0) peak.bf16_gflops = tiles, peak.bf16_kernel = "AMX";
  }
  if (peak.bf16_gflops == 0 && __builtin_cpu_supports("avx512bf16"))
    peak.bf16_gflops = fastest(dot_bf16, seconds, sink), peak.bf16_kernel = "AVX512_BF16";
  if (peak.bf16_gflops == 0) peak.bf16_kernel = "none";
  if (sink == 1234.5f) peak.f32_kernel += " ";  // keeps the sums alive
  return peak;
}

}  // namespace bench

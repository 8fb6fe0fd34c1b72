// Float32 exp and erf written as plain arithmetic, with no libm call, so that loops using them
// vectorise (glibc's expf and erff are called one element at a time).  Accurate to a few float
// ulps; tests compare them with std::exp and std::erf in float64.  Library-internal.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>

// TAPEGRAD_CPU_CLONES("avx512f", "avx2", "default") before a function: the compiler builds it
// once for each instruction set and the program picks the best the CPU has when it loads (GCC's
// and Clang's target_clones).  Only on x86-64 with those compilers, where the names mean
// something; elsewhere (ARM, other compilers, -DTAPEGRAD_NO_CPU_CLONES) one plain version.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(TAPEGRAD_NO_CPU_CLONES)
#define TAPEGRAD_CPU_CLONES(...) __attribute__((target_clones(__VA_ARGS__)))
#else
#define TAPEGRAD_CPU_CLONES(...)
#endif

namespace tg {

// exp(x) for x <= 88: 2^n * e^r with x = n ln2 + r, |r| <= ln2 / 2 (Cody-Waite split of ln2),
// e^r by its degree-6 Taylor polynomial (relative error < 2e-7).  Below -87 it returns
// about 1.6e-38 (0 for any sum it joins); NaN stays NaN.
inline float exp_poly(float x) {
  x = std::max(x, -87.0f);
  const float shifted =
      x * 1.44269504f + 12582912.0f;  // adding 1.5 * 2^23 rounds x / ln2 to an integer
  const float n = shifted - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const std::int32_t two_n = (std::bit_cast<std::int32_t>(shifted) - 0x4B400000 + 127) << 23;
  return p * std::bit_cast<float>(two_n);
}

// erf(v / sqrt 2), given gauss = exp(-v^2 / 2): Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
inline float erf_scaled(float v, float gauss) {
  const float t = 1.0f / (1.0f + 0.3275911f * float(std::numbers::sqrt2 / 2) * std::fabs(v));
  const float poly =
      ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
       0.254829592f) *
      t;
  return std::copysign(1.0f - poly * gauss, v);
}

}  // namespace tg

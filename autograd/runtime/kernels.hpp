// Loop helpers for kernels: elementwise maps that run in parallel (oneTBB) once an array is
// large enough to pay for the threads.  Library-internal, but ops you add may use them too.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include "../tensor.hpp"

namespace tg {

constexpr std::size_t kParallelGrain = 16384;  // elements per task: below this, one thread

// Calls body(begin, end) over [0, n), in parallel chunks when n is large.
template <class F>
void parallel_range(std::size_t n, F body) {
  if (n < 2 * kParallelGrain) {
    body(std::size_t{0}, n);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, kParallelGrain),
                    [&](const tbb::blocked_range<std::size_t>& r) { body(r.begin(), r.end()); });
}

// Rows [0, rows) of `row_size` elements, cut into chunks of a fixed number of rows that depends
// on the sizes only (never on the thread count); calls body(chunk, begin, end) for each, in
// parallel when there are several.  A kernel that sums per-chunk results in chunk order gets the
// same bits on 1 thread as on 2.  Returns the number of chunks.
inline std::size_t rows_per_chunk(std::size_t row_size) {
  return std::max<std::size_t>(1, kParallelGrain / std::max<std::size_t>(row_size, 1));
}
inline std::size_t chunk_count(std::size_t rows, std::size_t row_size) {
  return (rows + rows_per_chunk(row_size) - 1) / rows_per_chunk(row_size);
}

template <class F>
std::size_t parallel_chunks(std::size_t rows, std::size_t row_size, F body) {
  const std::size_t per_chunk = rows_per_chunk(row_size);
  const std::size_t chunks = chunk_count(rows, row_size);
  const auto run = [&](std::size_t k) {
    body(k, k * per_chunk, std::min(rows, (k + 1) * per_chunk));
  };
  if (chunks <= 1) {
    if (rows > 0) run(0);
    return chunks;
  }
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, chunks, 1),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t k = r.begin(); k < r.end(); ++k) run(k);
                    });
  return chunks;
}

// Calls body(begin, end) over rows that are independent of each other (softmax, layer norm).
template <class F>
void parallel_rows(std::size_t rows, std::size_t row_size, F body) {
  parallel_chunks(rows, row_size, [&](std::size_t, std::size_t b, std::size_t e) { body(b, e); });
}

// acc += g element by element, for arrays of one shape, in parallel chunks.
template <class T>
void parallel_add_into(Array<T>& acc, const Array<T>& g) {
  T* av = acc.data();
  const T* gv = g.data();
  parallel_range(acc.size(), [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) av[i] += gv[i];
  });
}

// y[i] = f(x[i])
template <class T, class F>
Array<T> map_elements(const Array<T>& x, F f) {
  Array<T> y = Array<T>::from_shape(x.shape());
  const T* xv = x.data();
  T* yv = y.data();
  parallel_range(x.size(), [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) yv[i] = f(xv[i]);
  });
  return y;
}

// A copy of x, made in parallel chunks (copying an array is otherwise one thread's memcpy).
template <class T>
Array<T> parallel_copy(const Array<T>& x) {
  return map_elements(x, [](T v) { return v; });
}

// y[i] = f(a[i], b[i]) for arrays of one shape
template <class T, class F>
Array<T> zip_elements(const Array<T>& a, const Array<T>& b, F f) {
  Array<T> y = Array<T>::from_shape(a.shape());
  const T* av = a.data();
  const T* bv = b.data();
  T* yv = y.data();
  parallel_range(a.size(), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) yv[i] = f(av[i], bv[i]);
  });
  return y;
}

// y[i] = f(a[i], b[i], c[i]) for arrays of one shape
template <class T, class F>
Array<T> zip_elements(const Array<T>& a, const Array<T>& b, const Array<T>& c, F f) {
  Array<T> y = Array<T>::from_shape(a.shape());
  const T* av = a.data();
  const T* bv = b.data();
  const T* cv = c.data();
  T* yv = y.data();
  parallel_range(a.size(), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) yv[i] = f(av[i], bv[i], cv[i]);
  });
  return y;
}

// The float32 sums of the two rows below, compiled for AVX-512, AVX2 and plain x86-64
// (ops_attention.cpp).  Each runs in 16 lanes, element j in lane j mod 16, the lanes added up at
// the end in their order: appending zeros to a row changes no bit of its sum, so a sentence's
// attention weights are the same in a padded call (its padding masked) and a packed one.
// exp_in_place_sum: y[j] = exp(y[j]) (exp_poly, fast_math.hpp; 0 where y[j] is -inf), returns
// their sum.  dot_in_lanes: the sum of a[j] b[j].
float exp_in_place_sum(float* y, std::size_t S);
float dot_in_lanes(const float* a, const float* b, std::size_t S);

// One row of a masked softmax, S entries:  y_j = e^(x_j - mx) / sum_{l allowed} e^(x_l - mx)
// where allowed(j), 0 elsewhere, mx the largest allowed x; all zeros when no entry is allowed.
// y may be x (in place).
template <class T, class Allowed>
void masked_softmax_row(const T* x, T* y, std::size_t S, Allowed allowed) {
  constexpr T none = -std::numeric_limits<T>::infinity();
  T mx = none;
  for (std::size_t j = 0; j < S; ++j)
    if (allowed(j)) mx = std::max(mx, x[j]);
  T z = 0;
  if constexpr (std::is_same_v<T, float>) {
    for (std::size_t j = 0; j < S; ++j) y[j] = allowed(j) ? x[j] - mx : none;
    z = exp_in_place_sum(y, S);
  } else {
    for (std::size_t j = 0; j < S; ++j) {
      y[j] = allowed(j) ? std::exp(x[j] - mx) : T(0);
      z += y[j];
    }
  }
  const T inv = z > 0 ? T(1) / z : T(0);  // a fully masked row stays all zeros
  for (std::size_t j = 0; j < S; ++j) y[j] *= inv;
}

// Its backward: g_x_j = scale y_j (g_j - sum_l g_l y_l), zero wherever y is (masked entries).
// g_x may be g (in place).
template <class T>
void softmax_backward_row(const T* y, const T* g, T* g_x, std::size_t S, T scale = T(1)) {
  T dot = 0;
  if constexpr (std::is_same_v<T, float>) {
    dot = dot_in_lanes(g, y, S);
  } else {
    for (std::size_t j = 0; j < S; ++j) dot += g[j] * y[j];
  }
  for (std::size_t j = 0; j < S; ++j) g_x[j] = scale * y[j] * (g[j] - dot);
}

// Element i of dropout call `seed` is dropped when the top 32 bits of splitmix64(seed, i) fall
// below p * 2^32 (the threshold).  SplitMix64 (Steele, Lea and Flood 2014) makes each decision a
// pure function of (seed, i): chunks fill in parallel with the same bits on any thread count,
// the backward pass recomputes the mask instead of keeping a copy of it, and fused attention
// drops exactly the weights that dropout() on the composed path would.
inline std::uint64_t splitmix64(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
inline bool dropout_drops(std::uint64_t seed, std::uint64_t i, std::uint64_t threshold) {
  return (splitmix64(seed, i) >> 32) < threshold;
}

// out[e] = in[e] * keep, or 0 where element first + e drops, for e in [0, n): a stretch of the
// mask of dropout call `seed`.  The float32 one is compiled for AVX-512 (64-bit multiplies in
// vector registers), AVX2 and plain x86-64, and the CPU picks at load time; every version gives
// the same bits.  `out` may be `in`.
void apply_dropout_mask(const float* in, float* out, std::size_t n, std::uint64_t first,
                        std::uint64_t seed, std::uint64_t threshold, float keep);
void apply_dropout_mask(const double* in, double* out, std::size_t n, std::uint64_t first,
                        std::uint64_t seed, std::uint64_t threshold, double keep);

}  // namespace tg

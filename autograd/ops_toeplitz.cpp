// The Toeplitz product of kernelized attention with relative positions (Luo et al. 2021):
// every output row is a sum of input rows weighted by a coefficient of their offset,
//   y[i] = sum_j c[j - i] x[j],
// computed with FFTs (FFTW) in O(n log n) per column instead of O(n^2).
//
// Why FFT: y[i] = sum_j x[j] c~[i - j] with c~[s] = c[-s] is a convolution.  Laid out as arrays,
// the coefficients of offsets -(n-1) .. n-1 reversed (c~ shifted by n - 1) convolved with x give
// y[i] at index i + n - 1.  A circular convolution of length L >= 2n - 1 wraps only into indices
// below n - 1, which are not read, so L = 2n - 1 (rounded up to a size FFTW is fast at) will do.
//
// Backward:
//   g_x[j] = sum_i c[j - i] g_y[i]          the Toeplitz product with offsets reversed
//   g_c[r] = sum_i g_y[i] . x[i + r]         a cross-correlation: conj(FFT(g_y)) FFT(x),
//                                            summed over batch and columns before the inverse FFT.
//
// The transforms run in double precision for float32 tensors too.  An FFT's rounding error is
// relative to the largest entry of a column, and the columns of kernelized attention (products
// of exponentials) span many orders of magnitude: in float32 the small sums of early causal rows
// and of their denominators drown in that error, and can even turn negative.
#include <fftw3.h>

#include <algorithm>
#include <complex>
#include <mutex>

#include <xtensor/xoperation.hpp>

#include "ops.hpp"
#include "tape.hpp"

namespace tg {

namespace {

// FFTW's double-precision interface (the float one would differ only in names).
template <class T>
struct Fftw;

template <>
struct Fftw<double> {
  using Plan = fftw_plan;
  using Complex = fftw_complex;
  static Plan forward(int n, int howmany, double* in, Complex* out) {
    return fftw_plan_many_dft_r2c(1, &n, howmany, in, nullptr, howmany, 1, out, nullptr, howmany, 1, FFTW_ESTIMATE);
  }
  static Plan inverse(int n, int howmany, Complex* in, double* out) {
    return fftw_plan_many_dft_c2r(1, &n, howmany, in, nullptr, howmany, 1, out, nullptr, howmany, 1, FFTW_ESTIMATE);
  }
  static void run(Plan p, double* in, Complex* out) { fftw_execute_dft_r2c(p, in, out); }
  static void run(Plan p, Complex* in, double* out) { fftw_execute_dft_c2r(p, in, out); }
  static void destroy(Plan p) { fftw_destroy_plan(p); }
  static void* alloc(std::size_t bytes) { return fftw_malloc(bytes); }
  static void release(void* p) { fftw_free(p); }
};


std::mutex g_planner;  // FFTW's planner is not thread-safe (executing a plan is)

// An FFTW-aligned buffer of `n` elements, zeroed.
template <class T, class E>
struct Buffer {
  E* data;
  explicit Buffer(std::size_t n) : data(static_cast<E*>(Fftw<T>::alloc(std::max<std::size_t>(n, 1) * sizeof(E)))) {
    std::fill_n(reinterpret_cast<T*>(data), std::max<std::size_t>(n, 1) * sizeof(E) / sizeof(T), T(0));
  }
  ~Buffer() { Fftw<T>::release(data); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

// The smallest length >= n whose only prime factors are 2, 3, 5 and 7 (FFTW is fastest there).
std::size_t fft_length(std::size_t n) {
  for (std::size_t L = std::max<std::size_t>(n, 1);; ++L) {
    std::size_t m = L;
    for (std::size_t p : {2, 3, 5, 7})
      while (m % p == 0) m /= p;
    if (m == 1) return L;
  }
}

// Forward and inverse transforms of `howmany` interleaved columns of length L: a real (L, howmany)
// buffer <-> a complex (L/2 + 1, howmany) one.
template <class T>
struct Transforms {
  using F = Fftw<T>;
  using C = typename F::Complex;
  std::size_t L, howmany;
  Buffer<T, T> real;
  Buffer<T, C> spectrum;
  typename F::Plan to_spectrum, to_real;

  Transforms(std::size_t L_, std::size_t howmany_)
      : L(L_), howmany(howmany_), real(L_ * howmany_), spectrum((L_ / 2 + 1) * howmany_) {
    std::lock_guard<std::mutex> lock(g_planner);
    to_spectrum = F::forward(int(L), int(howmany), real.data, spectrum.data);
    to_real = F::inverse(int(L), int(howmany), spectrum.data, real.data);
  }
  ~Transforms() {
    std::lock_guard<std::mutex> lock(g_planner);
    F::destroy(to_spectrum);
    F::destroy(to_real);
  }
  void forward() { F::run(to_spectrum, real.data, spectrum.data); }
  void inverse() { F::run(to_real, spectrum.data, real.data); }  // unnormalised: times L
};

// The coefficients of one head as the spectrum of the reversed, padded array: the kernel the
// columns are convolved with.  c: 2n - 1 offsets, -(n-1) .. n-1; `reversed_offsets` uses c[-r]
// (the backward's Toeplitz product).
template <class T>
std::vector<std::complex<T>> kernel_spectrum(const T* c, std::size_t n, std::size_t L, bool reversed_offsets) {
  Transforms<T> t(L, 1);
  for (std::size_t s = 0; s < 2 * n - 1; ++s)  // array index s holds c~[s - (n-1)] = c[(n-1) - s]
    t.real.data[s] = reversed_offsets ? c[s] : c[2 * n - 2 - s];
  t.forward();
  const auto* z = reinterpret_cast<const std::complex<T>*>(t.spectrum.data);
  return {z, z + L / 2 + 1};
}

// y (blocks, n, F) = Toeplitz(c[block's head]) x, for `blocks` = B * H blocks of (n, F) in a
// row; c: (H, 2n - 1).
template <class T>
void toeplitz_apply(const T* c, const T* x, T* y, std::size_t B, std::size_t H, std::size_t n, std::size_t F,
                    bool reversed_offsets) {
  if (n == 0 || F == 0) return;
  const std::size_t L = fft_length(2 * n - 1), bins = L / 2 + 1;
  Transforms<T> t(L, F);
  for (std::size_t h = 0; h < H; ++h) {
    const auto kernel = kernel_spectrum(c + h * (2 * n - 1), n, L, reversed_offsets);
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t block = (b * H + h) * n * F;
      std::copy_n(x + block, n * F, t.real.data);
      std::fill(t.real.data + n * F, t.real.data + L * F, T(0));
      t.forward();
      auto* z = reinterpret_cast<std::complex<T>*>(t.spectrum.data);
      for (std::size_t k = 0; k < bins; ++k)
        for (std::size_t f = 0; f < F; ++f) z[k * F + f] *= kernel[k];
      t.inverse();
      for (std::size_t i = 0; i < n * F; ++i) y[block + i] = t.real.data[(n - 1) * F + i] / T(L);
    }
  }
}

// g_c (H, 2n - 1): g_c[h][r + n - 1] = sum over b, i, f of g_y[b, h, i, f] x[b, h, i + r, f].
template <class T>
void toeplitz_coefficient_grad(const T* g_y, const T* x, T* g_c, std::size_t B, std::size_t H, std::size_t n,
                               std::size_t F) {
  if (n == 0 || F == 0) return;
  const std::size_t L = fft_length(2 * n - 1), bins = L / 2 + 1;
  Transforms<T> tx(L, F), tg(L, F), sum(L, 1);
  for (std::size_t h = 0; h < H; ++h) {
    auto* acc = reinterpret_cast<std::complex<T>*>(sum.spectrum.data);
    std::fill(acc, acc + bins, std::complex<T>(0));
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t block = (b * H + h) * n * F;
      std::copy_n(x + block, n * F, tx.real.data);
      std::fill(tx.real.data + n * F, tx.real.data + L * F, T(0));
      std::copy_n(g_y + block, n * F, tg.real.data);
      std::fill(tg.real.data + n * F, tg.real.data + L * F, T(0));
      tx.forward();
      tg.forward();
      const auto* zx = reinterpret_cast<const std::complex<T>*>(tx.spectrum.data);
      const auto* zg = reinterpret_cast<const std::complex<T>*>(tg.spectrum.data);
      for (std::size_t k = 0; k < bins; ++k)
        for (std::size_t f = 0; f < F; ++f) acc[k] += std::conj(zg[k * F + f]) * zx[k * F + f];
    }
    sum.inverse();  // corr[r mod L] for r = -(n-1) .. n-1
    for (std::size_t s = 0; s < 2 * n - 1; ++s) {
      const std::size_t r = (s + L - (n - 1)) % L;  // offset s - (n - 1), wrapped
      g_c[h * (2 * n - 1) + s] += sum.real.data[r] / T(L);
    }
  }
}

template <class T>
Array<double> in_double(const Array<T>& a) {
  return xt::cast<double>(a);
}

}  // namespace

Tensor toeplitz_matmul(const Tensor& c, const Tensor& x, bool causal) {
  const char* op = "toeplitz_matmul";
  check_defined(op, c);
  check_defined(op, x);
  if (x.dim() != 4) fail(op, "x must be (B, H, n, F), got " + shape_str(x.shape()));
  const std::size_t B = x.shape()[0], H = x.shape()[1], n = x.shape()[2], F = x.shape()[3];
  const std::size_t width = causal ? n : 2 * n - 1;
  if (c.dim() != 2 || c.shape()[0] != H || c.shape()[1] != width)
    fail(op, std::string("c must be (H, ") + (causal ? "n" : "2n - 1") + ") = (" + std::to_string(H) + ", " +
                 std::to_string(width) + ") for x " + shape_str(x.shape()) + ", got " + shape_str(c.shape()));
  if (c.dtype() != x.dtype())
    fail(op, std::string("c is ") + dtype_name(c.dtype()) + " but x is " + dtype_name(x.dtype()));
  if (n == 0) fail(op, "x has no positions (n = 0)");
  // Causal: offsets -(n-1) .. 0 given; the future's n - 1 coefficients are zero.
  const auto full_coefficients = [=](const Array<double>& given) {
    if (!causal) return given;
    Array<double> full = xt::zeros<double>({H, 2 * n - 1});
    for (std::size_t h = 0; h < H; ++h) std::copy_n(given.data() + h * n, n, full.data() + h * (2 * n - 1));
    return full;
  };
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    const Array<double> cf = full_coefficients(in_double(c.data<T>())), xd = in_double(x.data<T>());
    Array<double> out = xt::zeros<double>(x.shape());
    toeplitz_apply(cf.data(), xd.data(), out.data(), B, H, n, F, false);
    return Tensor(Array<T>(xt::cast<T>(out)));
  });
  if (needs_grad(c, x))
    record(op, y, {c, x}, saved_bytes(c, x),
           [c, x, causal, full_coefficients, B, H, n, F, width]<class T>(const Array<T>& g_y, Grads& g) {
             const Array<double> g_yd = in_double(g_y);
             if (g.wanted(0)) {
               const Array<double> xd = in_double(x.data<T>());
               Array<double> g_full = xt::zeros<double>({H, 2 * n - 1});
               toeplitz_coefficient_grad(g_yd.data(), xd.data(), g_full.data(), B, H, n, F);
               Array<T> g_c = xt::zeros<T>({H, width});  // causal: only the given offsets, -(n-1) .. 0
               for (std::size_t h = 0; h < H; ++h)
                 std::copy_n(g_full.data() + h * (2 * n - 1), width, g_c.data() + h * width);
               g.add(0, std::move(g_c));
             }
             if (g.wanted(1)) {
               const Array<double> cf = full_coefficients(in_double(c.data<T>()));
               Array<double> g_x = xt::zeros<double>(x.shape());
               toeplitz_apply(cf.data(), g_yd.data(), g_x.data(), B, H, n, F, true);
               g.add(1, Array<T>(xt::cast<T>(g_x)));
             }
           });
  return y;
}

}  // namespace tg

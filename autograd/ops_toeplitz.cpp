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
// The product is bilinear in (c, x); its gradients are ops of their own, by FFT too:
//   g_x[j] = sum_i c[j - i] g_y[i]     toeplitz_matmul_transposed: the product, offsets reversed
//   g_c[r] = sum_i g_y[i] . x[i + r]   toeplitz_correlate: a cross-correlation, conj(FFT(g_y))
//                                      FFT(x) summed over batch and columns before the inverse
//
// The transforms run in double precision for float32 tensors too.  An FFT's rounding error is
// relative to the largest entry of a column, and the columns of kernelized attention (products
// of exponentials) span many orders of magnitude: in float32 the small sums of early causal rows
// and of their denominators drown in that error, and can even turn negative.
#include <fftw3.h>

#include <algorithm>
#include <array>
#include <complex>
#include <mutex>

#include <xtensor/xoperation.hpp>

#include "broadcast.hpp"
#include "ops.hpp"
#include "runtime/kernels.hpp"
#include "runtime/parallel.hpp"
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
    return fftw_plan_many_dft_r2c(1, &n, howmany, in, nullptr, 1, n, out, nullptr, 1, n / 2 + 1,
                                  FFTW_ESTIMATE);
  }
  static Plan inverse(int n, int howmany, Complex* in, double* out) {
    return fftw_plan_many_dft_c2r(1, &n, howmany, in, nullptr, 1, n / 2 + 1, out, nullptr, 1, n,
                                  FFTW_ESTIMATE);
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
  explicit Buffer(std::size_t n)
      : data(static_cast<E*>(Fftw<T>::alloc(std::max<std::size_t>(n, 1) * sizeof(E)))) {
    std::fill_n(reinterpret_cast<T*>(data), std::max<std::size_t>(n, 1) * sizeof(E) / sizeof(T),
                T(0));
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

// Forward and inverse transforms of `howmany` columns of length L, each contiguous: a real
// (howmany, L) buffer <-> a complex (howmany, L/2 + 1) one.  (Columns interleaved row by row
// would save a transposition, but FFTW then strides through memory, several times slower.)
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
  T* column(std::size_t c) { return real.data + c * L; }
  std::complex<T>* bins(std::size_t c) {
    return reinterpret_cast<std::complex<T>*>(spectrum.data) + c * (L / 2 + 1);
  }
  // Column c <- rows[j * stride] for j < n, zeros after.
  template <class S>
  void load(std::size_t c, const S* rows, std::size_t n, std::size_t stride) {
    T* col = column(c);
    for (std::size_t j = 0; j < n; ++j) col[j] = rows[j * stride];
    std::fill(col + n, col + L, T(0));
  }
  // Every column's spectrum times `kernel`: the circular convolution with it.
  void multiply(const std::vector<std::complex<T>>& kernel) {
    for (std::size_t c = 0; c < howmany; ++c) {
      std::complex<T>* z = bins(c);
      for (std::size_t k = 0; k < kernel.size(); ++k) z[k] *= kernel[k];
    }
  }
};

// The coefficients of one head as the spectrum of the reversed, padded array: the kernel the
// columns are convolved with.  c: 2n - 1 offsets, -(n-1) .. n-1; `reversed_offsets` uses c[-r]
// (the backward's Toeplitz product).
template <class T>
std::vector<std::complex<T>> kernel_spectrum(const T* c, std::size_t n, std::size_t L,
                                             bool reversed_offsets) {
  Transforms<T> t(L, 1);
  for (std::size_t s = 0; s < 2 * n - 1; ++s)  // array index s holds c~[s - (n-1)] = c[(n-1) - s]
    t.real.data[s] = reversed_offsets ? c[s] : c[2 * n - 2 - s];
  t.forward();
  const auto* z = reinterpret_cast<const std::complex<T>*>(t.spectrum.data);
  return {z, z + L / 2 + 1};
}

using Spectra = std::vector<std::vector<std::complex<double>>>;

// The kernel of every head, for x of n positions.  c: (H, 2n - 1), offsets -(n-1) .. n-1; or
// causal, (H, n), offsets -(n-1) .. 0, the future's coefficients zero.
template <class T>
Spectra head_spectra(const Array<T>& c, std::size_t n, bool reversed_offsets) {
  const std::size_t H = c.shape()[0], width = c.shape()[1], L = fft_length(2 * n - 1);
  Spectra out;
  std::vector<double> full(2 * n - 1, 0.0);
  for (std::size_t h = 0; h < H; ++h) {
    std::copy_n(c.data() + h * width, width, full.begin());
    out.push_back(kernel_spectrum(full.data(), n, L, reversed_offsets));
  }
  return out;
}

// Calls body(begin, end) over [0, blocks) cut into one range per thread, so that each range
// sets up its FFT buffers and plans once (plans are made under a lock, and fresh buffers of a
// few MB cost page faults).
template <class F>
void for_each_range(std::size_t blocks, F body) {
  const std::size_t parts = std::max<std::size_t>(1, std::min(blocks, num_threads()));
  tbb::parallel_for(std::size_t(0), parts,
                    [&](std::size_t p) { body(p * blocks / parts, (p + 1) * blocks / parts); });
}

// y (blocks, n, F) = Toeplitz(c[block's head]) x, for `blocks` = B * H blocks of (n, F) in a
// row, the kernels from head_spectra.  Blocks are independent: they run in parallel, each chunk
// of them with its own buffers, and give the same result on any number of threads.  Elements
// are read and written as T (float or double), transformed in double.
template <class T>
void toeplitz_apply(const Spectra& kernels, const T* x, T* y, std::size_t B, std::size_t n,
                    std::size_t F) {
  if (n == 0 || F == 0) return;
  const std::size_t H = kernels.size(), L = fft_length(2 * n - 1);
  for_each_range(B * H, [&](std::size_t begin, std::size_t end) {
    Transforms<double> t(L, F);
    for (std::size_t bh = begin; bh < end; ++bh) {
      const auto& kernel = kernels[bh % H];
      const std::size_t block = bh * n * F;
      for (std::size_t f = 0; f < F; ++f) t.load(f, x + block + f, n, F);
      t.forward();
      t.multiply(kernel);
      t.inverse();
      for (std::size_t f = 0; f < F; ++f) {
        const double* col = t.column(f) + (n - 1);  // y[i] sits at index n - 1 + i
        for (std::size_t i = 0; i < n; ++i) y[block + i * F + f] = T(col[i] / double(L));
      }
    }
  });
}

// g_c (H, 2n - 1): g_c[h][r + n - 1] = sum over b, i, f of g_y[b, h, i, f] x[b, h, i + r, f].
template <class T>
void toeplitz_coefficient_grad(const T* g_y, const T* x, double* g_c, std::size_t B, std::size_t H,
                               std::size_t n, std::size_t F) {
  if (n == 0 || F == 0) return;
  const std::size_t L = fft_length(2 * n - 1), bins = L / 2 + 1;
  Transforms<double> tx(L, F), tg(L, F), sum(L, 1);
  for (std::size_t h = 0; h < H; ++h) {
    auto* acc = reinterpret_cast<std::complex<double>*>(sum.spectrum.data);
    std::fill(acc, acc + bins, std::complex<double>(0));
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t block = (b * H + h) * n * F;
      for (std::size_t f = 0; f < F; ++f)
        tx.load(f, x + block + f, n, F), tg.load(f, g_y + block + f, n, F);
      tx.forward();
      tg.forward();
      for (std::size_t f = 0; f < F; ++f) {
        const std::complex<double>*zx = tx.bins(f), *zg = tg.bins(f);
        for (std::size_t k = 0; k < bins; ++k) acc[k] += std::conj(zg[k]) * zx[k];
      }
    }
    sum.inverse();  // corr[r mod L] for r = -(n-1) .. n-1
    for (std::size_t s = 0; s < 2 * n - 1; ++s) {
      const std::size_t r = (s + L - (n - 1)) % L;  // offset s - (n - 1), wrapped
      g_c[h * (2 * n - 1) + s] += sum.real.data[r] / double(L);
    }
  }
}

// x: (B, H, n, F) with n > 0 and c: (H, 2n - 1), or (H, n) when causal, of x's dtype; `x_name`
// says what the op calls x.
void check_toeplitz(const char* op, const Tensor& c, const Tensor& x, const char* x_name,
                    bool causal) {
  check_defined(op, c);
  check_defined(op, x);
  if (x.dim() != 4)
    fail(op, std::string(x_name) + " must be (B, H, n, F), got " + shape_str(x.shape()));
  const std::size_t H = x.shape()[1], n = x.shape()[2];
  const std::size_t width = causal ? n : 2 * n - 1;
  if (c.dim() != 2 || c.shape()[0] != H || c.shape()[1] != width)
    fail(op, std::string("c must be (H, ") + (causal ? "n" : "2n - 1") + ") = (" +
                 std::to_string(H) + ", " + std::to_string(width) + ") for " + x_name + " " +
                 shape_str(x.shape()) + ", got " + shape_str(c.shape()));
  if (c.dtype() != x.dtype())
    fail(op, std::string("c is ") + dtype_name(c.dtype()) + " but " + x_name + " is " +
                 dtype_name(x.dtype()));
  if (n == 0) fail(op, std::string(x_name) + " has no positions (n = 0)");
}

}  // namespace

// toeplitz_matmul is bilinear, and so are its two adjoints below: with
//   tau(g, c, x) = sum_(i, j) g[i] c[j - i] x[j]   (per batch, head and column),
// toeplitz_matmul(c, x) = d tau / dg,  toeplitz_matmul_transposed(c, g) = d tau / dx,
// toeplitz_correlate(g, x) = d tau / dc.  Each one's gradients are the other two, and each
// one's tangent is itself applied to one tangent at a time.

namespace {

// Which argument of tau a tensor fills.
enum class Slot { g, c, x };

struct SlotValue {
  const Tensor& value;
  Slot slot;
};

// tau's partial derivative in slot `which`, given the values of the other two slots.
Tensor partial(Slot which, SlotValue a, SlotValue b, bool causal) {
  const Tensor* in[3] = {nullptr, nullptr, nullptr};  // by slot: g, c, x; `which` stays empty
  in[static_cast<int>(a.slot)] = &a.value;
  in[static_cast<int>(b.slot)] = &b.value;
  const auto g = [&]() -> const Tensor& { return *in[0]; };
  const auto c = [&]() -> const Tensor& { return *in[1]; };
  const auto x = [&]() -> const Tensor& { return *in[2]; };
  switch (which) {
    case Slot::g: return toeplitz_matmul(c(), x(), causal);
    case Slot::x: return toeplitz_matmul_transposed(c(), g(), causal);
    case Slot::c: break;
  }
  return toeplitz_correlate(g(), x(), causal);
}

// The rules of all three: out = partial(which, a, b) is linear in a and in b, and
// <g_out, out> = tau with g_out in slot `which`, so the gradient of a is tau's partial in a's
// slot with g_out in `which` (and of b likewise); the tangent is out's partial applied to one
// tangent at a time.
void record_partial(const char* op, Tensor& out, Slot which, SlotValue a, SlotValue b,
                    bool causal) {
  record(
      op, out, {a.value, b.value}, saved_bytes(a.value, b.value),
      [which, a_slot = a.slot, b_slot = b.slot, av = a.value, bv = b.value, causal](
          const Tensor& g_out, Grads& g) {
        if (g.wanted(0)) g.add(0, partial(a_slot, {g_out, which}, {bv, b_slot}, causal));
        if (g.wanted(1)) g.add(1, partial(b_slot, {g_out, which}, {av, a_slot}, causal));
      },
      [which, a_slot = a.slot, b_slot = b.slot, av = a.value, bv = b.value,
       causal](const Tangents& t) {
        const auto along_a = [&] { return partial(which, {t[0], a_slot}, {bv, b_slot}, causal); };
        const auto along_b = [&] { return partial(which, {av, a_slot}, {t[1], b_slot}, causal); };
        if (!t.has(1)) return along_a();
        if (!t.has(0)) return along_b();
        return along_a() + along_b();
      });
}

// Toeplitz(c) x, or with `transposed` its transpose Toeplitz(c)^T x (the offsets reversed):
// toeplitz_matmul (tau's partial in g) or toeplitz_matmul_transposed (in x).
Tensor toeplitz_product(const Tensor& c, const Tensor& x, bool causal, bool transposed) {
  const char* op = transposed ? "toeplitz_matmul_transposed" : "toeplitz_matmul";
  check_toeplitz(op, c, x, transposed ? "g" : "x", causal);
  const std::size_t B = x.shape()[0], n = x.shape()[2], F = x.shape()[3];
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> r = Array<T>::from_shape(x.shape());
    toeplitz_apply(head_spectra(c.data<T>(), n, transposed), x.data<T>().data(), r.data(), B, n, F);
    return Tensor(std::move(r));
  });
  if (needs_grad(c, x))
    record_partial(op, y, transposed ? Slot::x : Slot::g, {c, Slot::c},
                   {x, transposed ? Slot::g : Slot::x}, causal);
  return y;
}

}  // namespace

// y[i] = sum_j c[j - i] x[j];  g_c = toeplitz_correlate(g_y, x),
// g_x = toeplitz_matmul_transposed(c, g_y);  dy = toeplitz_matmul(dc, x) + toeplitz_matmul(c, dx)
Tensor toeplitz_matmul(const Tensor& c, const Tensor& x, bool causal) {
  return toeplitz_product(c, x, causal, /*transposed=*/false);
}

// z[j] = sum_i c[j - i] g[i];  g_c = toeplitz_correlate(g, g_z), g_g = toeplitz_matmul(c, g_z);
// dz = toeplitz_matmul_transposed(dc, g) + toeplitz_matmul_transposed(c, dg)
Tensor toeplitz_matmul_transposed(const Tensor& c, const Tensor& g, bool causal) {
  return toeplitz_product(c, g, causal, /*transposed=*/true);
}

// z[r] = sum_i g[i] x[i + r];  g_g = toeplitz_matmul(g_z, x), g_x = toeplitz_matmul_transposed(g_z,
// g); dz = toeplitz_correlate(dg, x) + toeplitz_correlate(g, dx)
Tensor toeplitz_correlate(const Tensor& g, const Tensor& x, bool causal) {
  const char* op = "toeplitz_correlate";
  check_defined(op, g);
  check_defined(op, x);
  check_same_dtype(op, g, x);
  if (x.dim() != 4 || g.shape() != x.shape())
    fail(op, "g and x must be (B, H, n, F) of one shape, got " + shape_str(g.shape()) + " and " +
                 shape_str(x.shape()));
  const std::size_t B = x.shape()[0], H = x.shape()[1], n = x.shape()[2], F = x.shape()[3];
  if (n == 0) fail(op, "x has no positions (n = 0)");
  const std::size_t width = causal ? n : 2 * n - 1;
  Tensor z = dispatch(x.dtype(), [&]<class T>() {
    Array<double> full = xt::zeros<double>({H, 2 * n - 1});
    toeplitz_coefficient_grad(g.data<T>().data(), x.data<T>().data(), full.data(), B, H, n, F);
    Array<T> out = xt::zeros<T>({H, width});  // causal: only the offsets -(n-1) .. 0
    for (std::size_t h = 0; h < H; ++h)
      std::copy_n(full.data() + h * (2 * n - 1), width, out.data() + h * width);
    return Tensor(std::move(out));
  });
  if (needs_grad(g, x))
    record_partial("toeplitz_correlate", z, Slot::c, {g, Slot::g}, {x, Slot::x}, causal);
  return z;
}

// ---- kernelized attention's sums in one op -------------------------------------------------
//
// u[i] = sum_j c[j - i] (phi_q[i] . phi_k[j]) [v[j], 1] is the Toeplitz product of the m (D + 1)
// columns X[j, f, d] = phi_k[j, f] v1[j, d] (v1 = [v, 1]), read back with phi_q:
//   Y = Toeplitz(c) X,   u[i, d] = sum_f phi_q[i, f] Y[i, f, d].
// Composed from ops, X and Y are (B, H, n, m (D + 1)) tensors, written, read and kept for
// backward.  Here each (batch, head) block builds X in its FFT buffer, and backward builds it
// again: only the block's buffers exist at a time.  Backward, per block:
//   g_phi_q[i, f] = sum_d g_u[i, d] Y[i, f, d]
//   g_Y[i, f, d]  = phi_q[i, f] g_u[i, d]
//   g_X = Toeplitz(c, offsets reversed) g_Y
//   g_phi_k[j, f] = sum_d g_X[j, f, d] v1[j, d],   g_v[j, d] = sum_f g_X[j, f, d] phi_k[j, f]
//   g_c[r] = sum over blocks of the head, i, f, d of g_Y[i, f, d] X[i + r, f, d]

namespace {

struct KernelShape {
  std::size_t B, H, n, m, D, L, bins;
  std::size_t panel;  // features transformed at a time: their D + 1 columns fill a few MB
};

// The buffers of one block, for a panel of features f0 .. f1 at a time: X (or g_Y) as
// (f1 - f0) (D + 1) columns, column (f - f0) (D + 1) + d holding phi_k[j, f] v1[j, d] over the
// rows j, and X's spectrum kept for g_c.  Panels keep the buffers small whatever m and n are.
struct KernelBlock {
  Transforms<double> t;
  std::vector<std::complex<double>> x_spectrum;
  explicit KernelBlock(const KernelShape& s) : t(s.L, s.panel * (s.D + 1)) {}

  // t <- X of block bh for features f0 .. f1: rows j < n, zeros after.
  template <class T>
  void fill_x(const KernelShape& s, const T* phi_k, const T* v, std::size_t bh, std::size_t f0,
              std::size_t f1) {
    const T *k = phi_k + bh * s.n * s.m, *vb = v + bh * s.n * s.D;
    for (std::size_t f = f0; f < f1; ++f) {
      for (std::size_t d = 0; d < s.D; ++d) {
        double* col = t.column((f - f0) * (s.D + 1) + d);
        for (std::size_t j = 0; j < s.n; ++j)
          col[j] = double(k[j * s.m + f]) * double(vb[j * s.D + d]);
        std::fill(col + s.n, col + s.L, 0.0);
      }
      t.load((f - f0) * (s.D + 1) + s.D, k + f, s.n, s.m);  // v1's column of ones
    }
  }
  // The Toeplitz product of what t holds, by `kernel`, keeping the input's spectrum when asked.
  void convolve(const std::vector<std::complex<double>>& kernel, bool keep_spectrum) {
    t.forward();
    if (keep_spectrum) x_spectrum.assign(t.bins(0), t.bins(0) + t.howmany * (t.L / 2 + 1));
    t.multiply(kernel);
    t.inverse();
  }
  // Column c of the product, rows 0 .. n-1 (times L).
  const double* result(const KernelShape& s, std::size_t c) { return t.column(c) + (s.n - 1); }
};

// phi_q, phi_k: (B, H, n, m), v: (B, H, n, D), c: (H, 2n - 1) or causal (H, n), one dtype,
// checked for `op`; their sizes and those of the transforms.
KernelShape kernel_shape(const char* op, const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                         const Tensor& c, bool causal) {
  for (const Tensor* t : {&phi_q, &phi_k, &v, &c}) check_defined(op, *t);
  if (phi_q.dim() != 4 || phi_k.shape() != phi_q.shape() || v.dim() != 4 ||
      v.shape()[0] != phi_q.shape()[0] || v.shape()[1] != phi_q.shape()[1] ||
      v.shape()[2] != phi_q.shape()[2])
    fail(op, "needs phi_q and phi_k (B, H, n, m) and v (B, H, n, D), got phi_q " +
                 shape_str(phi_q.shape()) + ", phi_k " + shape_str(phi_k.shape()) + ", v " +
                 shape_str(v.shape()));
  const std::size_t B = phi_q.shape()[0], H = phi_q.shape()[1], n = phi_q.shape()[2];
  const std::size_t width = causal ? n : 2 * n - 1;
  if (c.dim() != 2 || c.shape()[0] != H || c.shape()[1] != width)
    fail(op, std::string("c must be (H, ") + (causal ? "n" : "2n - 1") + ") = (" +
                 std::to_string(H) + ", " + std::to_string(width) + "), got " +
                 shape_str(c.shape()));
  for (const Tensor* t : {&phi_k, &v, &c})
    if (t->dtype() != phi_q.dtype())
      fail(op, std::string("all inputs must have one dtype; phi_q is ") +
                   dtype_name(phi_q.dtype()) + ", another " + dtype_name(t->dtype()));
  if (n == 0) fail(op, "no positions (n = 0)");
  KernelShape s{B, H, n, phi_q.shape()[3], v.shape()[3], 0, 0, 0};
  s.L = fft_length(2 * n - 1);
  s.bins = s.L / 2 + 1;
  s.panel =
      std::clamp<std::size_t>((std::size_t{4} << 20) / ((s.D + 1) * s.L * sizeof(double)), 1, s.m);
  return s;
}

// ---- the rules ---------------------------------------------------------------------------
//
// Phi(g_u, phi_q, phi_k, v, c) = sum(g_u * kernel_toeplitz(phi_q, phi_k, v, c)) is linear in
// each of g_u, phi_q, phi_k and c, and affine in v (which enters as [v, 1]).  Its gradient is
// kernel_toeplitz (for g_u) and kernel_toeplitz_backward (for the other four).  So a second
// derivative is a first one with an argument replaced by a direction d: the derivative of
// Phi's gradient for argument a along d in argument s != a is that gradient at the arguments
// with s replaced by d (along a itself it is 0).  A direction of v enters as [d, 0], not
// [d, 1]: for kernel_toeplitz the last column (the denominators) is then zeroed, and for
// kernel_toeplitz_backward g_u's last column (which weighs the ones).  The rules of both ops
// are therefore calls to both ops, and differentiate again.

// Phi's arguments in the order of kernel_toeplitz_backward's inputs.
using PhiArgs = std::array<Tensor, 5>;  // g_u, phi_q, phi_k, v, c
constexpr std::size_t kV = 3;

// x: (..., D + 1) with its last column zeroed.
Tensor without_last_column(const Tensor& x) {
  Mask last = xt::zeros<bool>({x.shape().back()});
  last(x.shape().back() - 1) = true;
  return masked_fill(x, last, 0.0);
}

// The derivative of u = kernel_toeplitz(phi_q, phi_k, v, c) along d in argument s (1 to 4).
Tensor u_along(PhiArgs a, std::size_t s, const Tensor& d, bool causal) {
  a[s] = d;
  const Tensor u = kernel_toeplitz(a[1], a[2], a[3], a[4], causal);
  return s == kV ? without_last_column(u) : u;
}

// The derivatives of kernel_toeplitz_backward's gradients (for phi_q, phi_k, v, c) along d in
// argument s (0 to 4).  (The entry for argument s itself is no derivative, which would be 0:
// it is never read.)
std::array<Tensor, 4> grads_along(PhiArgs a, std::size_t s, const Tensor& d, bool causal) {
  if (s == kV) a[0] = without_last_column(a[0]);
  a[s] = d;
  return kernel_toeplitz_backward(a[0], a[1], a[2], a[3], a[4], causal);
}

}  // namespace

// u = sum_j c[j - i] (phi_q[i] . phi_k[j]) [v[j], 1];
// g_(phi_q, phi_k, v, c) = kernel_toeplitz_backward(g_u, phi_q, phi_k, v, c);
// du = the sum over inputs with a tangent of u_along(that input, its tangent)
Tensor kernel_toeplitz(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, const Tensor& c,
                       bool causal) {
  const KernelShape s = kernel_shape("kernel_toeplitz", phi_q, phi_k, v, c, causal);
  const std::size_t B = s.B, H = s.H, n = s.n;
  const std::size_t D1 = s.D + 1;
  Tensor u = dispatch(phi_q.dtype(), [&]<class T>() {
    const Spectra kernels = head_spectra(c.data<T>(), n, false);
    const T *pq = phi_q.data<T>().data(), *pk = phi_k.data<T>().data(), *vv = v.data<T>().data();
    Array<T> out = Array<T>::from_shape({B, H, n, D1});
    for_each_range(B * H, [&](std::size_t begin, std::size_t end) {
      KernelBlock block(s);
      std::vector<double> acc(n * D1);
      for (std::size_t bh = begin; bh < end; ++bh) {
        std::fill(acc.begin(), acc.end(), 0.0);
        const T* q = pq + bh * n * s.m;
        for (std::size_t f0 = 0; f0 < s.m; f0 += s.panel) {
          const std::size_t f1 = std::min(f0 + s.panel, s.m);
          block.fill_x(s, pk, vv, bh, f0, f1);
          block.convolve(kernels[bh % H], false);
          for (std::size_t f = f0; f < f1; ++f)
            for (std::size_t d = 0; d < D1; ++d) {
              const double* y = block.result(s, (f - f0) * D1 + d);
              for (std::size_t i = 0; i < n; ++i) acc[i * D1 + d] += double(q[i * s.m + f]) * y[i];
            }
        }
        for (std::size_t e = 0; e < n * D1; ++e)
          out.data()[bh * n * D1 + e] = static_cast<T>(acc[e] / double(s.L));
      }
    });
    return Tensor(std::move(out));
  });
  if (needs_grad(phi_q, phi_k, v, c))
    record(
        "kernel_toeplitz", u, {phi_q, phi_k, v, c}, saved_bytes(phi_q, phi_k, v, c),
        [phi_q, phi_k, v, c, causal](const Tensor& g_u, Grads& g) {
          const auto grads = kernel_toeplitz_backward(g_u, phi_q, phi_k, v, c, causal);
          for (std::size_t i = 0; i < 4; ++i)
            if (g.wanted(i)) g.add(i, grads[i]);
        },
        [args = PhiArgs{Tensor(), phi_q, phi_k, v, c}, causal](const Tangents& t) {
          Tensor du;
          for (std::size_t i = 0; i < 4; ++i)
            if (t.has(i)) {
              const Tensor along = u_along(args, i + 1, t[i], causal);
              du = du.defined() ? du + along : along;
            }
          return du;
        });
  return u;
}

// The gradients of sum(g_u * u), by the per-block loop above (X and Y rebuilt per block).
// Each output G_s (s = 1 to 4: phi_q, phi_k, v, c) is an op of Phi's five arguments:
//   g_(g_u) = u_along(s, g),  g_a = grads_along(s, g)[a] for a = 1 to 4 but s (0 for a = s);
//   dG_s = the sum over arguments a != s with a tangent da of grads_along(a, da)[s]
std::array<Tensor, 4> kernel_toeplitz_backward(const Tensor& g_u, const Tensor& phi_q,
                                               const Tensor& phi_k, const Tensor& v,
                                               const Tensor& c, bool causal) {
  const char* op = "kernel_toeplitz_backward";
  const KernelShape s = kernel_shape(op, phi_q, phi_k, v, c, causal);
  check_defined(op, g_u);
  check_same_dtype(op, g_u, phi_q);
  if (g_u.shape() != Shape{s.B, s.H, s.n, s.D + 1})
    fail(op, "g_u must be (B, H, n, D + 1) = " + shape_str({s.B, s.H, s.n, s.D + 1}) + ", got " +
                 shape_str(g_u.shape()));
  const std::size_t width = c.shape()[1];
  std::array<Tensor, 4> grads = dispatch(phi_q.dtype(), [&]<class T>() {
    const std::size_t B = s.B, H = s.H, n = s.n, m = s.m, D = s.D, D1 = D + 1;
    const Spectra kernels = head_spectra(c.data<T>(), s.n, false);
    const Spectra reversed = head_spectra(c.data<T>(), s.n, true);
    const T *pq = phi_q.data<T>().data(), *pk = phi_k.data<T>().data(), *vv = v.data<T>().data(),
            *pg = g_u.data<T>().data();
    Array<T> g_q = Array<T>::from_shape(phi_q.shape()), g_k = Array<T>::from_shape(phi_k.shape()),
             g_v = Array<T>::from_shape(v.shape());
    // Each block's part of g_c, as a spectrum: summed per head afterwards, in block order.
    std::vector<std::complex<double>> c_parts(B * H * s.bins);
    const double scale = 1.0 / double(s.L);
    for_each_range(B * H, [&](std::size_t begin, std::size_t end) {
      KernelBlock block(s);
      std::vector<double> gq(n * m), gk(n * m), gv(n * D);
      std::vector<std::complex<double>> part(s.bins);
      for (std::size_t bh = begin; bh < end; ++bh) {
        const T *gu = pg + bh * n * D1, *q = pq + bh * n * m, *k = pk + bh * n * m,
                *vb = vv + bh * n * D;
        std::fill(gq.begin(), gq.end(), 0.0);
        std::fill(gk.begin(), gk.end(), 0.0);
        std::fill(gv.begin(), gv.end(), 0.0);
        std::fill(part.begin(), part.end(), std::complex<double>(0));
        for (std::size_t f0 = 0; f0 < m; f0 += s.panel) {
          const std::size_t f1 = std::min(f0 + s.panel, m), columns = (f1 - f0) * D1;
          block.fill_x(s, pk, vv, bh, f0, f1);
          block.convolve(kernels[bh % H], true);  // Y, and X's spectrum kept
          for (std::size_t f = f0; f < f1; ++f)
            for (std::size_t d = 0; d < D1; ++d) {
              const double* y = block.result(s, (f - f0) * D1 + d);
              for (std::size_t i = 0; i < n; ++i) gq[i * m + f] += double(gu[i * D1 + d]) * y[i];
            }
          for (std::size_t f = f0; f < f1; ++f)  // g_Y, rows i < n, zeros after
            for (std::size_t d = 0; d < D1; ++d) {
              double* col = block.t.column((f - f0) * D1 + d);
              for (std::size_t i = 0; i < n; ++i)
                col[i] = double(q[i * m + f]) * double(gu[i * D1 + d]);
              std::fill(col + n, col + s.L, 0.0);
            }
          block.t.forward();
          for (std::size_t col = 0; col < columns; ++col) {
            const std::complex<double>*zg = block.t.bins(col),
                  *zx = block.x_spectrum.data() + col * s.bins;
            for (std::size_t b = 0; b < s.bins; ++b) part[b] += std::conj(zg[b]) * zx[b];
          }
          block.t.multiply(reversed[bh % H]);
          block.t.inverse();  // g_X
          for (std::size_t f = f0; f < f1; ++f) {
            for (std::size_t d = 0; d < D; ++d) {
              const double* gx = block.result(s, (f - f0) * D1 + d);
              for (std::size_t j = 0; j < n; ++j) {
                gk[j * m + f] += gx[j] * double(vb[j * D + d]);
                gv[j * D + d] += gx[j] * double(k[j * m + f]);
              }
            }
            const double* ones = block.result(s, (f - f0) * D1 + D);
            for (std::size_t j = 0; j < n; ++j) gk[j * m + f] += ones[j];
          }
        }
        for (std::size_t e = 0; e < n * m; ++e)
          g_q.data()[bh * n * m + e] = static_cast<T>(gq[e] * scale);
        std::copy(part.begin(), part.end(), c_parts.begin() + bh * s.bins);
        for (std::size_t e = 0; e < n * m; ++e)
          g_k.data()[bh * n * m + e] = static_cast<T>(gk[e] * scale);
        for (std::size_t e = 0; e < n * D; ++e)
          g_v.data()[bh * n * D + e] = static_cast<T>(gv[e] * scale);
      }
    });
    Array<T> g_c = xt::zeros<T>({H, width});  // causal: only the given offsets, -(n-1) .. 0
    Transforms<double> sum(s.L, 1);
    for (std::size_t h = 0; h < H; ++h) {
      auto* acc = reinterpret_cast<std::complex<double>*>(sum.spectrum.data);
      std::fill(acc, acc + s.bins, std::complex<double>(0));
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t k = 0; k < s.bins; ++k) acc[k] += c_parts[(b * H + h) * s.bins + k];
      sum.inverse();  // corr[r mod L] for r = -(n-1) .. n-1, times L
      for (std::size_t col = 0; col < width; ++col) {
        const std::size_t r = (col + s.L - (n - 1)) % s.L;
        g_c(h, col) = static_cast<T>(sum.real.data[r] * scale);
      }
    }
    return std::array<Tensor, 4>{Tensor(std::move(g_q)), Tensor(std::move(g_k)),
                                 Tensor(std::move(g_v)), Tensor(std::move(g_c))};
  });
  if (needs_grad(g_u, phi_q, phi_k, v, c)) {
    const PhiArgs args{g_u, phi_q, phi_k, v, c};
    for (std::size_t o = 0; o < 4; ++o)
      record(
          "kernel_toeplitz_backward", grads[o], {g_u, phi_q, phi_k, v, c},
          o == 0 ? saved_bytes(g_u, phi_q, phi_k, v, c) : 0,  // the four share what they keep
          [args, s = o + 1, causal](const Tensor& g_G, Grads& g) {
            if (g.wanted(0)) g.add(0, u_along(args, s, g_G, causal));
            bool others = false;
            for (std::size_t a = 1; a < 5; ++a) others = others || (a != s && g.wanted(a));
            if (!others) return;
            const auto along = grads_along(args, s, g_G, causal);
            for (std::size_t a = 1; a < 5; ++a)
              if (a != s && g.wanted(a)) g.add(a, along[a - 1]);
          },
          [args, s = o + 1, causal](const Tangents& t) {
            Tensor dG;
            for (std::size_t a = 0; a < 5; ++a)
              if (a != s && t.has(a)) {
                const Tensor along = grads_along(args, a, t[a], causal)[s - 1];
                dG = dG.defined() ? dG + along : along;
              }
            return dG.defined() ? dG : zeros_like(args[s]);
          });
  }
  return grads;
}

}  // namespace tg

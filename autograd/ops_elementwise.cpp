// Elementwise ops, each with its derivative rules over tensors.  A rule is written with
// tapegrad's own ops, so it can be differentiated again:
//   vjp: given g_y, the gradients g_a, g_b of the inputs (summed back to their shapes where the
//        inputs were broadcast: sum_to);
//   jvp: given the inputs' tangents da, db, the output's tangent dy.
// A unary op's Jacobian is diagonal, so one rule serves both: g_x = y'(x) g_y, dy = y'(x) dx.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <type_traits>

#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "broadcast.hpp"
#include "ops.hpp"
#include "reference.hpp"
#include "runtime/fast_math.hpp"
#include "runtime/kernels.hpp"
#include "tape.hpp"

namespace tg {
namespace {

template <class E>
using elem_t = typename std::decay_t<E>::value_type;  // float or double

// y = f(x) for either element type; f maps an Array<T> to an xtensor expression.
template <class F>
Tensor map(const char* op, const Tensor& x, F f) {
  check_defined(op, x);
  return dispatch(x.dtype(), [&]<class T>() { return Tensor(Array<T>(f(x.data<T>()))); });
}

// y = f(a, b) element by element with broadcasting, after checking dtypes and shapes;
// f takes and returns scalars.
template <class F>
Tensor zip(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_same_dtype(op, a, b);
  const Shape shape = broadcast_shapes(op, a.shape(), b.shape());
  return dispatch(a.dtype(), [&]<class T>() {
    return Tensor(
        broadcast_elements(a.data<T>(), b.data<T>(), shape, [&](T u, T v) { return T(f(u, v)); }));
  });
}

// What a unary op's derivative reads, and so what its rules keep alive: x or y.
enum class Keeps { input, output };

// y = f(x), recorded with the one rule d(v, kept) = y'(x) v (v = g_y backward, dx forward),
// kept = x or y as `keeps` says.  f maps an Array<T> to an xtensor expression.
template <class F, class D>
Tensor unary(const char* op, const Tensor& x, F f, Keeps keeps, D d) {
  Tensor y = map(op, x, f);
  if (needs_grad(x)) {
    const Tensor kept = keeps == Keeps::input ? x : y;
    record(
        op, y, {x}, saved_bytes(kept),
        [kept, d](const Tensor& g_y, Grads& g) { g.add(0, d(g_y, kept)); },
        [kept, d](const Tangents& t) { return d(t[0], kept); });
  }
  return y;
}

// The same for y = Fun(x) with Fun one of xtensor's elementwise functors (xt::math::exp_fun,
// ...): f builds the expression that xt::exp(v) and its kin build.
template <class Fun, class D>
Tensor unary(const char* op, const Tensor& x, Keeps keeps, D d) {
  const auto f = [](const auto& v) { return xt::detail::make_xfunction<Fun>(v); };
  return unary(op, x, f, keeps, d);
}

// The tangent of a binary op, da * (dy/da) + db * (dy/db), skipping the input without a tangent
// and broadcast to the output's shape.
template <class A, class B>
Tensor binary_tangent(const Tangents& t, const Shape& out, A along_a, B along_b) {
  if (!t.has(1)) return expand(along_a(t[0]), out);
  if (!t.has(0)) return expand(along_b(t[1]), out);
  return expand(along_a(t[0]) + along_b(t[1]), out);
}

}  // namespace

// ---- binary ------------------------------------------------------------------------------

// y = a + b;  g_a = g_y, g_b = g_y;  dy = da + db
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = zip("add", a, b, [](auto u, auto v) { return u + v; });
  if (needs_grad(a, b))
    record(
        "add", y, {a, b}, 0,
        [sa = a.shape(), sb = b.shape()](const Tensor& g_y, Grads& g) {
          if (g.wanted(0)) g.add(0, sum_to(g_y, sa));
          if (g.wanted(1)) g.add(1, sum_to(g_y, sb));
        },
        [out = y.shape()](const Tangents& t) {
          const auto same = [](const Tensor& d) { return d; };
          return binary_tangent(t, out, same, same);
        });
  return y;
}

// y = a - b;  g_a = g_y, g_b = -g_y;  dy = da - db
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = zip("sub", a, b, [](auto u, auto v) { return u - v; });
  if (needs_grad(a, b))
    record(
        "sub", y, {a, b}, 0,
        [sa = a.shape(), sb = b.shape()](const Tensor& g_y, Grads& g) {
          if (g.wanted(0)) g.add(0, sum_to(g_y, sa));
          if (g.wanted(1)) g.add(1, sum_to(neg(g_y), sb));
        },
        [out = y.shape()](const Tangents& t) {
          if (t.has(0) && t.has(1)) return expand(t[0] - t[1], out);
          return t.has(0) ? expand(t[0], out) : expand(neg(t[1]), out);
        });
  return y;
}

// y = a b;  g_a = g_y b, g_b = g_y a;  dy = da b + a db  (both inputs are saved)
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = zip("mul", a, b, [](auto u, auto v) { return u * v; });
  if (needs_grad(a, b))
    record(
        "mul", y, {a, b}, saved_bytes(a, b),
        [a, b](const Tensor& g_y, Grads& g) {
          if (g.wanted(0)) g.add(0, sum_to(g_y * b, a.shape()));
          if (g.wanted(1)) g.add(1, sum_to(g_y * a, b.shape()));
        },
        [a, b, out = y.shape()](const Tangents& t) {
          return binary_tangent(
              t, out, [&](const Tensor& da) { return da * b; },
              [&](const Tensor& db) { return a * db; });
        });
  return y;
}

// y = a / b;  g_a = g_y / b, g_b = -g_y a / b^2 = -g_y y / b;  dy = da / b - y db / b
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = zip("div", a, b, [](auto u, auto v) { return u / v; });
  if (needs_grad(a, b))
    record(
        "div", y, {a, b}, saved_bytes(b, y),
        [b, y, sa = a.shape()](const Tensor& g_y, Grads& g) {
          if (g.wanted(0)) g.add(0, sum_to(g_y / b, sa));
          if (g.wanted(1)) g.add(1, sum_to(-g_y * y / b, b.shape()));
        },
        [b, y](const Tangents& t) {
          return binary_tangent(
              t, y.shape(), [&](const Tensor& da) { return da / b; },
              [&](const Tensor& db) { return -y * db / b; });
        });
  return y;
}

// y = a^b;  g_a = g_y b a^(b-1), g_b = g_y y ln a;  dy = b a^(b-1) da + y ln a db
Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor y = zip("pow", a, b, [](auto u, auto v) { return std::pow(u, v); });
  if (needs_grad(a, b))
    record(
        "pow", y, {a, b}, saved_bytes(a, b, y),
        [a, b, y](const Tensor& g_y, Grads& g) {
          if (g.wanted(0)) g.add(0, sum_to(g_y * b * pow(a, b - 1.0), a.shape()));
          if (g.wanted(1)) g.add(1, sum_to(g_y * y * log(a), b.shape()));
        },
        [a, b, y](const Tangents& t) {
          return binary_tangent(
              t, y.shape(), [&](const Tensor& da) { return b * pow(a, b - 1.0) * da; },
              [&](const Tensor& db) { return y * log(a) * db; });
        });
  return y;
}

// ---- with a scalar -----------------------------------------------------------------------

// y = x + s;  g_x = g_y;  dy = dx
Tensor add(const Tensor& x, double s) {
  Tensor y = map("add", x, [s](const auto& v) { return v + elem_t<decltype(v)>(s); });
  if (needs_grad(x))
    record(
        "add_scalar", y, {x}, 0, [](const Tensor& g_y, Grads& g) { g.add(0, g_y); },
        [](const Tangents& t) { return t[0]; });
  return y;
}

// y = s x;  g_x = s g_y;  dy = s dx
Tensor mul(const Tensor& x, double s) {
  Tensor y = map("mul", x, [s](const auto& v) { return v * elem_t<decltype(v)>(s); });
  if (needs_grad(x))
    record(
        "mul_scalar", y, {x}, 0, [s](const Tensor& g_y, Grads& g) { g.add(0, g_y * s); },
        [s](const Tangents& t) { return t[0] * s; });
  return y;
}

// y = x^p;  dy/dx = p x^(p-1)
Tensor pow(const Tensor& x, double p) {
  Tensor y = map("pow", x, [p](const auto& v) { return xt::pow(v, elem_t<decltype(v)>(p)); });
  if (needs_grad(x)) {
    const auto d = [x, p](const Tensor& v) { return v * p * pow(x, p - 1); };
    record(
        "pow_scalar", y, {x}, saved_bytes(x),
        [d](const Tensor& g_y, Grads& g) { g.add(0, d(g_y)); },
        [d](const Tangents& t) { return d(t[0]); });
  }
  return y;
}

// ---- unary: each gives d(v, kept) = y'(x) v ---------------------------------------------

// y = -x;  dy/dx = -1
Tensor neg(const Tensor& x) {
  Tensor y = map("neg", x, [](const auto& v) { return -v; });
  if (needs_grad(x))
    record(
        "neg", y, {x}, 0, [](const Tensor& g_y, Grads& g) { g.add(0, neg(g_y)); },
        [](const Tangents& t) { return neg(t[0]); });
  return y;
}

// y = e^x;  dy/dx = e^x = y
Tensor exp(const Tensor& x) {
  return unary<xt::math::exp_fun>("exp", x, Keeps::output,
                                  [](const Tensor& v, const Tensor& y) { return v * y; });
}

// y = ln x;  dy/dx = 1 / x
Tensor log(const Tensor& x) {
  return unary<xt::math::log_fun>("log", x, Keeps::input,
                                  [](const Tensor& v, const Tensor& x) { return v / x; });
}

// y = sqrt(x);  dy/dx = 1 / (2 y)
Tensor sqrt(const Tensor& x) {
  return unary<xt::math::sqrt_fun>("sqrt", x, Keeps::output,
                                   [](const Tensor& v, const Tensor& y) { return v / (y * 2.0); });
}

// y = |x|;  dy/dx = sign(x), a constant (its own derivative is 0, at 0 too)
Tensor abs(const Tensor& x) {
  return unary<xt::math::abs_fun>("abs", x, Keeps::input,
                                  [](const Tensor& v, const Tensor& x) { return v * sign(x); });
}

// y = tanh x;  dy/dx = 1 - y^2
Tensor tanh(const Tensor& x) {
  return unary<xt::math::tanh_fun>(
      "tanh", x, Keeps::output, [](const Tensor& v, const Tensor& y) { return v * (1.0 - y * y); });
}

// y = sin x;  dy/dx = cos x
Tensor sin(const Tensor& x) {
  return unary<xt::math::sin_fun>("sin", x, Keeps::input,
                                  [](const Tensor& v, const Tensor& x) { return v * cos(x); });
}

// y = cos x;  dy/dx = -sin x
Tensor cos(const Tensor& x) {
  return unary<xt::math::cos_fun>("cos", x, Keeps::input,
                                  [](const Tensor& v, const Tensor& x) { return -v * sin(x); });
}

// y = 1 / (1 + e^-x);  dy/dx = y (1 - y)
Tensor sigmoid(const Tensor& x) {
  const auto f = [](const auto& v) {
    using T = elem_t<decltype(v)>;
    return T(1) / (T(1) + xt::exp(-v));  // exp(-v) = inf gives 0, never NaN
  };
  return unary("sigmoid", x, f, Keeps::output,
               [](const Tensor& v, const Tensor& y) { return v * y * (1.0 - y); });
}

// y = max(x, 0);  dy/dx = 1 where x > 0 (equivalently y > 0), else 0
Tensor relu(const Tensor& x) {
  const auto f = [](const auto& v) { return xt::maximum(v, elem_t<decltype(v)>(0)); };
  return unary("relu", x, f, Keeps::output,
               [](const Tensor& v, const Tensor& y) { return masked_fill(v, !positive(y), 0.0); });
}

// sign(x) in {-1, 0, 1} and x > 0, as constants: piecewise constant, so nothing to record.
Tensor sign(const Tensor& x) {
  check_defined("sign", x);
  return dispatch(x.dtype(), [&]<class T>() { return Tensor(Array<T>(xt::sign(x.data<T>()))); });
}

Mask positive(const Tensor& x) {
  check_defined("positive", x);
  return dispatch(x.dtype(), [&]<class T>() { return Mask(x.data<T>() > T(0)); });
}

// ---- GELU: the formula once, then the plain loop (reference.hpp), the float32 kernels and the op
// --

// exact:  y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, Phi the standard normal CDF;
//         dy/dx = Phi(x) + x phi(x), phi(x) = e^(-x^2 / 2) / sqrt(2 pi)
// tanh:   y = x (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3);
//         dy/dx = (1 + tanh u) / 2 + x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2
constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kCubic = 0.044715;
constexpr double kInvSqrt2Pi =
    0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2;  // 1 / sqrt(2 pi)

namespace {

// Where the exact form gets e^(-x^2 / 2) and erf(x / sqrt 2) from: the C library (float64, the
// reference, and float32 where no kernel below serves), or ...
struct LibmErf {
  template <class T>
  static T gauss(T v) {
    return std::exp(T(-0.5) * v * v);
  }
  template <class T>
  static T erf(T v, T /*gauss*/) {
    return std::erf(v * T(std::numbers::sqrt2 / 2));
  }
  template <class T>
  static T erf(T v) {
    return erf(v, T(0));
  }
};

// ... as plain float32 arithmetic (fast_math.hpp), so that the loops below vectorise: erff and
// expf one element at a time took a quarter of a tagger training step.  erf_scaled reuses the
// gauss that the derivative needs anyway.
struct PolyErf {
  static float gauss(float v) { return exp_poly(-0.5f * v * v); }
  static float erf(float v, float gauss) { return erf_scaled(v, gauss); }
  static float erf(float v) { return erf(v, gauss(v)); }
};

// y for one element: the one place the formula is written.
template <class Erf, class T>
T gelu_of(T v, GeluForm form) {
  if (form == GeluForm::exact) return T(0.5) * v * (T(1) + Erf::erf(v));
  return T(0.5) * v * (T(1) + std::tanh(T(kSqrt2OverPi) * (v + T(kCubic) * v * v * v)));
}

// dy/dx for one element.
template <class Erf, class T>
T gelu_slope(T v, GeluForm form) {
  if (form == GeluForm::exact) {
    const T gauss = Erf::gauss(v);  // one exp serves both terms
    return T(0.5) * (T(1) + Erf::erf(v, gauss)) + v * T(kInvSqrt2Pi) * gauss;
  }
  const T t = std::tanh(T(kSqrt2OverPi) * (v + T(kCubic) * v * v * v));
  return T(0.5) * (T(1) + t) +
         T(0.5) * v * (T(1) - t * t) * T(kSqrt2OverPi) * (T(1) + T(3 * kCubic) * v * v);
}

}  // namespace

namespace reference {

Array<double> gelu(const Array<double>& x, GeluForm form) {
  Array<double> y = Array<double>::from_shape(x.shape());
  for (std::size_t i = 0; i < x.size(); ++i) y.data()[i] = gelu_of<LibmErf>(x.data()[i], form);
  return y;
}

Array<double> gelu_backward(const Array<double>& x, const Array<double>& g_y, GeluForm form) {
  Array<double> g_x = Array<double>::from_shape(x.shape());
  for (std::size_t i = 0; i < x.size(); ++i)
    g_x.data()[i] = g_y.data()[i] * gelu_slope<LibmErf>(x.data()[i], form);
  return g_x;
}

}  // namespace reference

namespace {

// f(in, out) on blocks of kBlock elements, the last one padded: every element goes through the
// same vector instructions wherever it sits.  A loop over n elements would leave the last
// n mod 16 to a scalar epilogue, which the compiler may contract into fused multiply-adds
// differently, so an element's bits would depend on its place: on where a thread's chunk ends,
// and on whether its row is packed with the real tokens or sits among padding (nn/packing.hpp).
constexpr std::size_t kBlock = 16;

template <std::size_t Inputs, class F>
inline void in_blocks(const std::array<const float*, Inputs>& in, float* out, std::size_t n, F f) {
  float padded[Inputs][kBlock] = {}, result[kBlock];
  for (std::size_t i = 0; i < n; i += kBlock) {
    const bool whole = i + kBlock <= n;  // else the last block, read from zero-padded copies
    std::array<const float*, Inputs> at;
    for (std::size_t k = 0; k < Inputs; ++k) {
      if (!whole) std::copy(in[k] + i, in[k] + n, padded[k]);
      at[k] = whole ? in[k] + i : padded[k];
    }
    f(at, whole ? out + i : result);  // one call site: one instruction sequence for every block
    if (!whole) std::copy_n(result, n - i, out + i);
  }
}

}  // namespace

// The exact form in float32, compiled for AVX-512, AVX2 and plain x86-64; the CPU picks at load
// time.
TAPEGRAD_CPU_CLONES("avx512f", "avx2", "default")
void gelu_forward_f32(const float* x, float* y, std::size_t n) {
  in_blocks<1>({x}, y, n, [](const std::array<const float*, 1>& in, float* out) {
    for (std::size_t i = 0; i < kBlock; ++i) out[i] = gelu_of<PolyErf>(in[0][i], GeluForm::exact);
  });
}

TAPEGRAD_CPU_CLONES("avx512f", "avx2", "default")
void gelu_backward_f32(const float* g_y, const float* x, float* g_x, std::size_t n) {
  in_blocks<2>({g_y, x}, g_x, n, [](const std::array<const float*, 2>& in, float* out) {
    for (std::size_t i = 0; i < kBlock; ++i)
      out[i] = in[0][i] * gelu_slope<PolyErf>(in[1][i], GeluForm::exact);
  });
}

// The second derivative, with tapegrad's ops (so it differentiates again):
//   exact:  d2y/dx2 = phi(x) (2 - x^2)
//   tanh:   d2y/dx2 = (1 - t^2) (u' + x (u'' - 2 t u'^2) / 2),  t = tanh u,
//           u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2),  u'' = 6 sqrt(2/pi) 0.044715 x
namespace {
Tensor gelu_curvature(const Tensor& x, GeluForm form) {
  if (form == GeluForm::exact) return exp(x * x * -0.5) * kInvSqrt2Pi * (2.0 - x * x);
  const Tensor t = tanh((x + x * x * x * kCubic) * kSqrt2OverPi);
  const Tensor u1 = (x * x * (3 * kCubic) + 1.0) * kSqrt2OverPi;
  const Tensor u2 = x * (6 * kCubic * kSqrt2OverPi);
  return (1.0 - t * t) * (u1 + x * (u2 - t * u1 * u1 * 2.0) * 0.5);
}

// A float32 tensor of `shape` whose ranges [b, e) kernel(out, b, e) fills on the threads.
template <class Kernel>
Tensor fill_in_parallel(const Shape& shape, Kernel kernel) {
  Array<float> out = Array<float>::from_shape(shape);
  parallel_range(out.size(), [&](std::size_t b, std::size_t e) { kernel(out.data(), b, e); });
  return Tensor(std::move(out));
}
}  // namespace

Tensor gelu(const Tensor& x, GeluForm form) {
  check_defined("gelu", x);
  const bool exact = form == GeluForm::exact;
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, float>) {
      if (exact) {
        const float* xv = x.data<float>().data();
        return fill_in_parallel(x.shape(), [xv](float* out, std::size_t b, std::size_t e) {
          gelu_forward_f32(xv + b, out + b, e - b);
        });
      }
    }
    return Tensor(map_elements(x.data<T>(), [form](T v) { return gelu_of<LibmErf>(v, form); }));
  });
  if (needs_grad(x))
    record(
        exact ? "gelu" : "gelu_tanh", y, {x}, saved_bytes(x),
        [x, form](const Tensor& g_y, Grads& g) { g.add(0, gelu_backward(g_y, x, form)); },
        [x, form](const Tangents& t) { return gelu_backward(t[0], x, form); });
  return y;
}

// v y'(x), the slope's kernel;  as an op of (v, x) it is linear in v:
//   g_v = g y'(x) (itself),  g_x = g v y''(x);  d(out) = dv y'(x) + v y''(x) dx
Tensor gelu_backward(const Tensor& v, const Tensor& x, GeluForm form) {
  check_same_dtype("gelu_backward", v, x);
  if (v.shape() != x.shape())
    fail("gelu_backward",
         "v and x must have one shape: " + shape_str(v.shape()) + " and " + shape_str(x.shape()));
  const bool exact = form == GeluForm::exact;
  Tensor out = dispatch(x.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, float>) {
      if (exact) {
        const float *vv = v.data<float>().data(), *xv = x.data<float>().data();
        return fill_in_parallel(x.shape(), [vv, xv](float* g_x, std::size_t b, std::size_t e) {
          gelu_backward_f32(vv + b, xv + b, g_x + b, e - b);
        });
      }
    }
    return Tensor(zip_elements(v.data<T>(), x.data<T>(),
                               [form](T gy, T u) { return gy * gelu_slope<LibmErf>(u, form); }));
  });
  if (needs_grad(v, x))
    record(
        exact ? "gelu_backward" : "gelu_tanh_backward", out, {v, x}, saved_bytes(v, x),
        [v, x, form](const Tensor& g_out, Grads& g) {
          if (g.wanted(0)) g.add(0, gelu_backward(g_out, x, form));
          if (g.wanted(1)) g.add(1, g_out * v * gelu_curvature(x, form));
        },
        [v, x, form](const Tangents& t) {
          if (!t.has(1)) return gelu_backward(t[0], x, form);
          const Tensor along_x = v * gelu_curvature(x, form) * t[1];
          return t.has(0) ? gelu_backward(t[0], x, form) + along_x : along_x;
        });
  return out;
}

// ---- selection ---------------------------------------------------------------------------

// y = mask ? a : b;  g_a = mask ? g_y : 0, g_b = mask ? 0 : g_y;  dy = mask ? da : db
Tensor where(const Mask& mask, const Tensor& a, const Tensor& b) {
  check_same_dtype("where", a, b);
  const Shape ab = broadcast_shapes("where", a.shape(), b.shape());
  const Shape out = broadcast_shapes("where", mask.shape(), ab);
  Tensor y = dispatch(a.dtype(), [&]<class T>() {
    Array<T> r = xt::where(mask, a.data<T>(), b.data<T>());
    if (r.shape() != out) r = xt::broadcast(r, out);
    return Tensor(std::move(r));
  });
  if (needs_grad(a, b)) {
    auto m = std::make_shared<const Mask>(mask);
    auto not_m = std::make_shared<const Mask>(!mask);
    record(
        "where", y, {a, b}, m->size(),
        [m, not_m, sa = a.shape(), sb = b.shape()](const Tensor& g_y, Grads& g) {
          if (g.wanted(0)) g.add(0, sum_to(masked_fill(g_y, *not_m, 0.0), sa));
          if (g.wanted(1)) g.add(1, sum_to(masked_fill(g_y, *m, 0.0), sb));
        },
        [m, out](const Tangents& t) { return expand(where(*m, t[0], t[1]), out); });
  }
  return y;
}

// y = mask ? value : x;  g_x = mask ? 0 : g_y;  dy = mask ? 0 : dx
Tensor masked_fill(const Tensor& x, const Mask& mask, double value) {
  check_defined("masked_fill", x);
  if (broadcast_shapes("masked_fill", x.shape(), mask.shape()) != x.shape())
    fail("masked_fill", "the mask must broadcast to the input's shape: x is " +
                            shape_str(x.shape()) + ", mask is " + shape_str(mask.shape()));
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    return Tensor(Array<T>(xt::where(mask, static_cast<T>(value), x.data<T>())));
  });
  if (needs_grad(x)) {
    auto m = std::make_shared<const Mask>(mask);
    record(
        "masked_fill", y, {x}, m->size(),
        [m](const Tensor& g_y, Grads& g) { g.add(0, masked_fill(g_y, *m, 0.0)); },
        [m](const Tangents& t) { return masked_fill(t[0], *m, 0.0); });
  }
  return y;
}

// ---- operators ---------------------------------------------------------------------------

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& x, double s) { return add(x, s); }
Tensor operator+(double s, const Tensor& x) { return add(x, s); }
Tensor operator-(const Tensor& x, double s) { return add(x, -s); }
Tensor operator-(double s, const Tensor& x) { return add(neg(x), s); }
Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
Tensor operator*(double s, const Tensor& x) { return mul(x, s); }
Tensor operator/(const Tensor& x, double s) { return mul(x, 1.0 / s); }
Tensor operator/(double s, const Tensor& x) { return mul(pow(x, -1.0), s); }

}  // namespace tg

// Elementwise ops.  Each op: forward, then the backward it records, with the derivative in
// the comment above; a unary op is its forward and its derivative, given to `unary`.  Binary
// ops broadcast; their backward sums the gradient back to each input's shape (sum_to_shape).
#include <algorithm>
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

// What a unary op's derivative reads, and so what its backward keeps alive: x or y.
enum class Keeps { input, output };

// y = f(x), recorded with g_x = d(g_y, kept), kept = x or y as `keeps` says.  f maps an Array<T>
// to an xtensor expression, d two arrays of one shape (g_y and the kept values) to one.
template <class F, class D>
Tensor unary(const char* op, const Tensor& x, F f, Keeps keeps, D d) {
  Tensor y = map(op, x, f);
  if (needs_grad(x)) {
    const Tensor kept = keeps == Keeps::input ? x : y;
    record(op, y, {x}, saved_bytes(kept), [kept, d]<class T>(const Array<T>& g_y, Grads& g) {
      g.add(0, Array<T>(d(g_y, kept.data<T>())));
    });
  }
  return y;
}

}  // namespace

// ---- binary ------------------------------------------------------------------------------

// y = a + b;  dy/da = 1, dy/db = 1
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = zip("add", a, b, [](auto u, auto v) { return u + v; });
  if (needs_grad(a, b))
    record("add", y, {a, b}, 0,
           [sa = a.shape(), sb = b.shape()]<class T>(const Array<T>& g_y, Grads& g) {
             if (g.wanted(0)) g.add(0, sum_to_shape(g_y, sa));  // copies g_y only when shapes match
             if (g.wanted(1)) g.add(1, sum_to_shape(g_y, sb));
           });
  return y;
}

// y = a - b;  dy/da = 1, dy/db = -1
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = zip("sub", a, b, [](auto u, auto v) { return u - v; });
  if (needs_grad(a, b))
    record("sub", y, {a, b}, 0,
           [sa = a.shape(), sb = b.shape()]<class T>(const Array<T>& g_y, Grads& g) {
             if (g.wanted(0)) g.add(0, sum_to_shape(g_y, sa));
             if (g.wanted(1)) g.add(1, sum_to_shape(Array<T>(-g_y), sb));
           });
  return y;
}

// y = a * b;  dy/da = b, dy/db = a  (both inputs are saved)
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = zip("mul", a, b, [](auto u, auto v) { return u * v; });
  if (needs_grad(a, b))
    record("mul", y, {a, b}, saved_bytes(a, b), [a, b]<class T>(const Array<T>& g_y, Grads& g) {
      if (g.wanted(0)) g.add(0, sum_to_shape(Array<T>(g_y * b.data<T>()), a.shape()));
      if (g.wanted(1)) g.add(1, sum_to_shape(Array<T>(g_y * a.data<T>()), b.shape()));
    });
  return y;
}

// y = a / b;  dy/da = 1 / b, dy/db = -a / b^2 = -y / b
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = zip("div", a, b, [](auto u, auto v) { return u / v; });
  if (needs_grad(a, b))
    record("div", y, {a, b}, saved_bytes(b, y),
           [b, y, sa = a.shape()]<class T>(const Array<T>& g_y, Grads& g) {
             const Array<T>& bv = b.data<T>();
             if (g.wanted(0)) g.add(0, sum_to_shape(Array<T>(g_y / bv), sa));
             if (g.wanted(1)) g.add(1, sum_to_shape(Array<T>(-g_y * y.data<T>() / bv), b.shape()));
           });
  return y;
}

// y = a^b;  dy/da = b a^(b-1), dy/db = a^b ln a
Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor y = zip("pow", a, b, [](auto u, auto v) { return std::pow(u, v); });
  if (needs_grad(a, b))
    record("pow", y, {a, b}, saved_bytes(a, b, y),
           [a, b, y]<class T>(const Array<T>& g_y, Grads& g) {
             const Array<T>& av = a.data<T>();
             const Array<T>& bv = b.data<T>();
             if (g.wanted(0))
               g.add(0, sum_to_shape(Array<T>(g_y * bv * xt::pow(av, bv - T(1))), a.shape()));
             if (g.wanted(1))
               g.add(1, sum_to_shape(Array<T>(g_y * y.data<T>() * xt::log(av)), b.shape()));
           });
  return y;
}

// ---- with a scalar -----------------------------------------------------------------------

// y = x + s;  dy/dx = 1
Tensor add(const Tensor& x, double s) {
  Tensor y = map("add", x, [s](const auto& v) { return v + elem_t<decltype(v)>(s); });
  if (needs_grad(x))
    record("add_scalar", y, {x}, 0,
           []<class T>(const Array<T>& g_y, Grads& g) { g.add(0, Array<T>(g_y)); });
  return y;
}

// y = s x;  dy/dx = s
Tensor mul(const Tensor& x, double s) {
  Tensor y = map("mul", x, [s](const auto& v) { return v * elem_t<decltype(v)>(s); });
  if (needs_grad(x))
    record("mul_scalar", y, {x}, 0, [s]<class T>(const Array<T>& g_y, Grads& g) {
      g.add(0, Array<T>(g_y * static_cast<T>(s)));
    });
  return y;
}

// y = x^p;  dy/dx = p x^(p-1)
Tensor pow(const Tensor& x, double p) {
  Tensor y = map("pow", x, [p](const auto& v) { return xt::pow(v, elem_t<decltype(v)>(p)); });
  if (needs_grad(x))
    record("pow_scalar", y, {x}, saved_bytes(x), [x, p]<class T>(const Array<T>& g_y, Grads& g) {
      g.add(0, Array<T>(g_y * static_cast<T>(p) * xt::pow(x.data<T>(), static_cast<T>(p - 1))));
    });
  return y;
}

// ---- unary -------------------------------------------------------------------------------

// y = -x;  dy/dx = -1
Tensor neg(const Tensor& x) {
  Tensor y = map("neg", x, [](const auto& v) { return -v; });
  if (needs_grad(x))
    record("neg", y, {x}, 0,
           []<class T>(const Array<T>& g_y, Grads& g) { g.add(0, Array<T>(-g_y)); });
  return y;
}

// y = e^x;  dy/dx = e^x = y
Tensor exp(const Tensor& x) {
  return unary(
      "exp", x, [](const auto& v) { return xt::exp(v); }, Keeps::output,
      []<class T>(const Array<T>& g_y, const Array<T>& yv) { return g_y * yv; });
}

// y = ln x;  dy/dx = 1 / x
Tensor log(const Tensor& x) {
  return unary(
      "log", x, [](const auto& v) { return xt::log(v); }, Keeps::input,
      []<class T>(const Array<T>& g_y, const Array<T>& xv) { return g_y / xv; });
}

// y = sqrt(x);  dy/dx = 1 / (2 y)
Tensor sqrt(const Tensor& x) {
  return unary(
      "sqrt", x, [](const auto& v) { return xt::sqrt(v); }, Keeps::output,
      []<class T>(const Array<T>& g_y, const Array<T>& yv) { return g_y / (T(2) * yv); });
}

// y = |x|;  dy/dx = sign(x)
Tensor abs(const Tensor& x) {
  return unary(
      "abs", x, [](const auto& v) { return xt::abs(v); }, Keeps::input,
      []<class T>(const Array<T>& g_y, const Array<T>& xv) { return g_y * xt::sign(xv); });
}

// y = tanh x;  dy/dx = 1 - y^2
Tensor tanh(const Tensor& x) {
  return unary(
      "tanh", x, [](const auto& v) { return xt::tanh(v); }, Keeps::output,
      []<class T>(const Array<T>& g_y, const Array<T>& yv) { return g_y * (T(1) - yv * yv); });
}

// y = sin x;  dy/dx = cos x
Tensor sin(const Tensor& x) {
  return unary(
      "sin", x, [](const auto& v) { return xt::sin(v); }, Keeps::input,
      []<class T>(const Array<T>& g_y, const Array<T>& xv) { return g_y * xt::cos(xv); });
}

// y = cos x;  dy/dx = -sin x
Tensor cos(const Tensor& x) {
  return unary(
      "cos", x, [](const auto& v) { return xt::cos(v); }, Keeps::input,
      []<class T>(const Array<T>& g_y, const Array<T>& xv) { return -g_y * xt::sin(xv); });
}

// y = 1 / (1 + e^-x);  dy/dx = y (1 - y)
Tensor sigmoid(const Tensor& x) {
  const auto f = [](const auto& v) {
    using T = elem_t<decltype(v)>;
    return T(1) / (T(1) + xt::exp(-v));  // exp(-v) = inf gives 0, never NaN
  };
  return unary(
      "sigmoid", x, f, Keeps::output,
      []<class T>(const Array<T>& g_y, const Array<T>& yv) { return g_y * yv * (T(1) - yv); });
}

// y = max(x, 0);  dy/dx = 1 where x > 0 (equivalently y > 0), else 0
Tensor relu(const Tensor& x) {
  const auto f = [](const auto& v) { return xt::maximum(v, elem_t<decltype(v)>(0)); };
  return unary("relu", x, f, Keeps::output, []<class T>(const Array<T>& g_y, const Array<T>& yv) {
    return xt::where(yv > T(0), g_y, T(0));
  });
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

// The exact form in float32, compiled for AVX-512, AVX2 and plain x86-64; the CPU picks at load
// time.
TAPEGRAD_CPU_CLONES("avx512f", "avx2", "default")
void gelu_forward_f32(const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = gelu_of<PolyErf>(x[i], GeluForm::exact);
}

TAPEGRAD_CPU_CLONES("avx512f", "avx2", "default")
void gelu_backward_f32(const float* g_y, const float* x, float* g_x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) g_x[i] = g_y[i] * gelu_slope<PolyErf>(x[i], GeluForm::exact);
}

Tensor gelu(const Tensor& x, GeluForm form) {
  check_defined("gelu", x);
  const bool exact = form == GeluForm::exact;
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, float>) {
      if (exact) {
        Array<float> out = Array<float>::from_shape(x.shape());
        const float* xv = x.data<float>().data();
        parallel_range(out.size(), [&](std::size_t b, std::size_t e) {
          gelu_forward_f32(xv + b, out.data() + b, e - b);
        });
        return Tensor(std::move(out));
      }
    }
    return Tensor(map_elements(x.data<T>(), [form](T v) { return gelu_of<LibmErf>(v, form); }));
  });
  if (needs_grad(x))
    record(exact ? "gelu" : "gelu_tanh", y, {x}, saved_bytes(x),
           [x, form, exact]<class T>(const Array<T>& g_y, Grads& g) {
             if constexpr (std::is_same_v<T, float>) {
               if (exact) {
                 Array<float> g_x = Array<float>::from_shape(g_y.shape());
                 const float* xv = x.data<float>().data();
                 parallel_range(g_x.size(), [&](std::size_t b, std::size_t e) {
                   gelu_backward_f32(g_y.data() + b, xv + b, g_x.data() + b, e - b);
                 });
                 g.add(0, std::move(g_x));
                 return;
               }
             }
             g.add(0, zip_elements(g_y, x.data<T>(), [form](T gy, T v) {
                     return gy * gelu_slope<LibmErf>(v, form);
                   }));
           });
  return y;
}

// ---- selection ---------------------------------------------------------------------------

// y = mask ? a : b;  dy/da = mask, dy/db = !mask  (the mask is saved)
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
    record("where", y, {a, b}, m->size(),
           [m, sa = a.shape(), sb = b.shape()]<class T>(const Array<T>& g_y, Grads& g) {
             if (g.wanted(0)) g.add(0, sum_to_shape(Array<T>(xt::where(*m, g_y, T(0))), sa));
             if (g.wanted(1)) g.add(1, sum_to_shape(Array<T>(xt::where(*m, T(0), g_y)), sb));
           });
  }
  return y;
}

// y = mask ? value : x;  dy/dx = !mask
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
    record("masked_fill", y, {x}, m->size(),
           [m, shape = x.shape()]<class T>(const Array<T>& g_y, Grads& g) {
             Array<T> g_x = xt::where(*m, T(0), g_y);
             if (g_x.shape() != shape) g_x = xt::broadcast(g_x, shape);
             g.add(0, std::move(g_x));
           });
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

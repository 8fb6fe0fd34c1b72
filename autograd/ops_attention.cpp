// Ops for attention: the masked softmax, and the skew / unskew pair that turns relative-
// position logits computed per distance into logits per (query, key) pair.
#include <algorithm>
#include <cmath>
#include <limits>

#include "broadcast.hpp"
#include "ops.hpp"
#include "reference.hpp"
#include "runtime/fast_math.hpp"
#include "runtime/kernels.hpp"
#include "tape.hpp"

namespace tg {

// ---- masked softmax: the plain loop first (reference.hpp), then the fused op --------------------

namespace reference {

Array<double> masked_softmax(const Array<double>& x,
                             const std::vector<std::vector<bool>>& allowed) {
  const std::size_t N = x.shape()[0], S = x.shape()[1];
  Array<double> y = xt::zeros<double>({N, S});
  for (std::size_t r = 0; r < N; ++r) {
    double mx = -INFINITY, sum = 0;
    for (std::size_t j = 0; j < S; ++j)
      if (allowed[r][j]) mx = std::max(mx, x(r, j));
    for (std::size_t j = 0; j < S; ++j)
      if (allowed[r][j]) sum += std::exp(x(r, j) - mx);
    for (std::size_t j = 0; j < S; ++j)
      if (allowed[r][j])
        y(r, j) = std::exp(x(r, j) - mx) / sum;  // a row with nothing allowed stays 0
  }
  return y;
}

// dL/dx_j = sum_l g_l dy_l/dx_j = sum_l g_l y_l ([l = j] - y_j) = y_j (g_j - sum_l g_l y_l)
Array<double> masked_softmax_backward(const Array<double>& y, const Array<double>& g_y) {
  const std::size_t N = y.shape()[0], S = y.shape()[1];
  Array<double> g_x = Array<double>::from_shape({N, S});
  for (std::size_t r = 0; r < N; ++r) {
    double dot = 0;
    for (std::size_t l = 0; l < S; ++l) dot += g_y(r, l) * y(r, l);
    for (std::size_t j = 0; j < S; ++j) g_x(r, j) = y(r, j) * (g_y(r, j) - dot);
  }
  return g_x;
}

}  // namespace reference

// The float32 row sums (runtime/kernels.hpp): 16 lanes, element j in lane j mod 16, the lanes
// added up in their order.
//
// exp runs through one loop, always on a multiple of 16 elements (a row's last ones copied into a
// block padded with masked entries), so that every element goes through the loop's vector body:
// a scalar remainder would round exp differently, and an element's bits would depend on the
// row's length.  Its own copies per instruction set keep the compiler from specialising the
// call on 16 elements into scalar code.
namespace {
TAPEGRAD_CPU_CLONES("avx512f", "avx2", "default")
void exp_or_zero(float* y, std::size_t n) {  // n a multiple of 16
  constexpr float none = -std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j < n; ++j) y[j] = y[j] == none ? 0.0f : exp_poly(y[j]);
}
}  // namespace

float exp_in_place_sum(float* y, std::size_t S) {
  constexpr std::size_t L = 16;
  const std::size_t whole = S - S % L;
  exp_or_zero(y, whole);
  if (whole < S) {
    float block[L];
    std::fill_n(block, L, -std::numeric_limits<float>::infinity());
    std::copy(y + whole, y + S, block);
    exp_or_zero(block, L);
    std::copy_n(block, S - whole, y + whole);
  }
  float lanes[L] = {};
  for (std::size_t c = 0; c < S; c += L)
    for (std::size_t l = 0; l < L && c + l < S; ++l) lanes[l] += y[c + l];
  float z = 0;
  for (float lane : lanes) z += lane;
  return z;
}

TAPEGRAD_CPU_CLONES("avx512f", "avx2", "default")
float dot_in_lanes(const float* a, const float* b, std::size_t S) {
  constexpr std::size_t L = 16;
  float lanes[L] = {};
  for (std::size_t c = 0; c < S; c += L) {
    const std::size_t n = std::min(L, S - c);
    for (std::size_t l = 0; l < L; ++l) lanes[l] += l < n ? a[c + l] * b[c + l] : 0.0f;
  }
  float dot = 0;
  for (float lane : lanes) dot += lane;
  return dot;
}

namespace {

// <a, b> over the last axis, kept: (..., S) -> (..., 1).  (sum_to sums over the axes that
// broadcast, here the last one.)
Tensor row_dot(const Tensor& a, const Tensor& b) {
  Shape rows = a.shape();
  rows.back() = 1;
  return sum_to(a * b, rows);
}

}  // namespace

// For each row x (S values) with mask m:  y_j = m_j e^(x_j - mx) / sum_{l: m_l} e^(x_l - mx),
// mx = max over allowed entries; y = 0 when no entry is allowed.  The Jacobian is the
// softmax's, dy_j/dx_l = y_j ([j = l] - y_l): symmetric, and 0 wherever y is 0 (masked entries
// and fully masked rows get zero gradient).  Saves y.
//   g_x = masked_softmax_backward(g_y, y);  dy = masked_softmax_backward(dx, y)
Tensor masked_softmax(const Tensor& x, const Mask& mask) {
  check_defined("masked_softmax", x);
  if (x.dim() == 0) fail("masked_softmax", "x must have at least 1 dim");
  if (broadcast_shapes("masked_softmax", x.shape(), mask.shape()) != x.shape())
    fail("masked_softmax", "the mask must broadcast to x's shape: x is " + shape_str(x.shape()) +
                               ", mask is " + shape_str(mask.shape()));
  const std::size_t S = x.shape().back(), rows = S == 0 ? 0 : x.numel() / S;
  // The mask is read through broadcast strides (0 along its size-1 axes), never expanded.
  const std::size_t n = x.dim(), lead = n - mask.dimension();
  std::vector<std::size_t> mask_stride(n, 0);
  for (std::size_t d = n, stride = 1; d-- > lead;) {
    if (mask.shape()[d - lead] != 1) mask_stride[d] = stride;
    stride *= mask.shape()[d - lead];
  }
  const auto mask_row = [&](std::size_t r) {  // offset of row r's first mask entry
    std::size_t offset = 0;
    for (std::size_t d = n - 1; d-- > 0;) {
      offset += (r % x.shape()[d]) * mask_stride[d];
      r /= x.shape()[d];
    }
    return offset;
  };
  const std::size_t mask_step = mask_stride[n - 1];  // 0 when one mask value covers the row
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> out = Array<T>::from_shape(x.shape());
    const T* xv = x.data<T>().data();
    parallel_rows(rows, S, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        const bool* mr = mask.data() + mask_row(r);
        masked_softmax_row(xv + r * S, out.data() + r * S, S,
                           [&](std::size_t j) { return mr[j * mask_step]; });
      }
    });
    return Tensor(std::move(out));
  });
  if (needs_grad(x))
    record(
        "masked_softmax", y, {x}, saved_bytes(y),
        [y](const Tensor& g_y, Grads& g) { g.add(0, masked_softmax_backward(g_y, y)); },
        [y](const Tangents& t) { return masked_softmax_backward(t[0], y); });
  return y;
}

// out_j = y_j (v_j - <v, y>) per row, the softmax's Jacobian times v, by the row kernel that
// training runs.  As an op of (v, y) it is linear in v, and the Jacobian is symmetric:
//   g_v = masked_softmax_backward(g, y),  g_y = g (v - <v, y>) - v <g, y>;
//   d(out) = masked_softmax_backward(dv, y) + dy (v - <v, y>) - y <v, dy>
Tensor masked_softmax_backward(const Tensor& v, const Tensor& y) {
  check_same_dtype("masked_softmax_backward", v, y);
  if (v.shape() != y.shape() || y.dim() == 0)
    fail("masked_softmax_backward", "v and y must have one shape of at least 1 dim, got " +
                                        shape_str(v.shape()) + " and " + shape_str(y.shape()));
  const std::size_t S = y.shape().back(), rows = S == 0 ? 0 : y.numel() / S;
  Tensor out = dispatch(y.dtype(), [&]<class T>() {
    Array<T> g_x = Array<T>::from_shape(y.shape());
    const T *yv = y.data<T>().data(), *vv = v.data<T>().data();
    parallel_rows(rows, S, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r)
        softmax_backward_row(yv + r * S, vv + r * S, g_x.data() + r * S, S);
    });
    return Tensor(std::move(g_x));
  });
  if (needs_grad(v, y))
    record(
        "masked_softmax_backward", out, {v, y}, saved_bytes(v, y),
        [v, y](const Tensor& g_out, Grads& g) {
          if (g.wanted(0)) g.add(0, masked_softmax_backward(g_out, y));
          if (g.wanted(1)) g.add(1, g_out * (v - row_dot(v, y)) - v * row_dot(g_out, y));
        },
        [v, y](const Tangents& t) {
          const auto along_y = [&] { return t[1] * (v - row_dot(v, y)) - y * row_dot(v, t[1]); };
          if (!t.has(1)) return masked_softmax_backward(t[0], y);
          return t.has(0) ? masked_softmax_backward(t[0], y) + along_y() : along_y();
        });
  return out;
}

namespace {

// `batch` matrices of T queries, each with S keys (per pair) or W distances (per distance).
struct SkewShape {
  std::size_t batch, T, S, W;
};

// The one index map behind skew and unskew: in each matrix, query i and key j meet at column
// c = j - i + T - 1 of the per-distance matrix; c >= W only in the causal case, for keys after
// the query.
//   skew:   dst (T, S)[i, j] (+)= src (T, W)[i, c]
//   unskew: dst (T, W)[i, c] (+)= src (T, S)[i, j]
template <class T>
void skew_map(const T* src, T* dst, const SkewShape& s, bool to_pairs) {
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t i = 0; i < s.T; ++i) {
      const std::size_t pair_row = (b * s.T + i) * s.S, dist_row = (b * s.T + i) * s.W;
      for (std::size_t j = 0; j < s.S; ++j) {
        const std::size_t c = j + s.T - 1 - i;
        if (c >= s.W) continue;
        if (to_pairs) dst[pair_row + j] += src[dist_row + c];
        else dst[dist_row + c] += src[pair_row + j];
      }
    }
}

// x: (..., T, in) -> the sizes of both sides, checking the op's rules.
SkewShape skew_shape(const char* op, const Tensor& x, bool causal, bool from_distances) {
  check_defined(op, x);
  if (x.dim() < 2) fail(op, "x must have at least 2 dims, got " + shape_str(x.shape()));
  const std::size_t T = x.shape()[x.dim() - 2], in = x.shape().back();
  std::size_t S, W;
  if (from_distances) {  // in = W
    if (!causal && in % 2 == 0)
      fail(op, "bidirectional distances need an odd width 2S - 1, got " + std::to_string(in));
    W = in;
    S = causal ? in : (in + 1) / 2;
  } else {  // in = S
    S = in;
    W = causal ? S : 2 * S - 1;
  }
  if (T > S)
    fail(op, "more queries (" + std::to_string(T) + ") than keys (" + std::to_string(S) + ")");
  const std::size_t batch = T == 0 || in == 0 ? 0 : x.numel() / (T * in);
  return {batch, T, S, W};
}

// The index map and its rules: rel_skew when to_pairs, (T, W) -> (T, S), else rel_unskew,
// (T, S) -> (T, W).  Both are linear index maps (each output element is one input element, or
// 0), adjoint to each other: each one's gradient is the other one applied to g, and its tangent
// is itself applied to the input's tangent.
Tensor skew_or_unskew(const Tensor& x, bool causal, bool to_pairs) {
  const char* op = to_pairs ? "rel_skew" : "rel_unskew";
  const SkewShape s = skew_shape(op, x, causal, to_pairs);
  Shape out = x.shape();
  out.back() = to_pairs ? s.S : s.W;
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> r = xt::zeros<T>(out);
    skew_map(x.data<T>().data(), r.data(), s, to_pairs);
    return Tensor(std::move(r));
  });
  if (needs_grad(x))
    record_linear(
        op, y, x, 0,
        [causal, to_pairs](const Tensor& g_y) { return skew_or_unskew(g_y, causal, !to_pairs); },
        [causal, to_pairs](const Tensor& dx) { return skew_or_unskew(dx, causal, to_pairs); });
  return y;
}

}  // namespace

// x: (..., T, W) -> y: (..., T, S);  g_x = rel_unskew(g_y);  dy = rel_skew(dx)
Tensor rel_skew(const Tensor& x, bool causal) { return skew_or_unskew(x, causal, true); }

// a: (..., T, S) -> z: (..., T, W);  g_a = rel_skew(g_z);  dz = rel_unskew(da)
Tensor rel_unskew(const Tensor& a, bool causal) { return skew_or_unskew(a, causal, false); }

}  // namespace tg

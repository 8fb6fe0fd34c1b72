// Broadcasting for ops (library-internal, but ops you add may use them too): the shape rule, the
// elementwise kernel that broadcasts, and sum_to_shape, which undoes broadcasting in a gradient.
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

#include "reduce.hpp"
#include "runtime/kernels.hpp"
#include "tensor.hpp"

namespace tg {

// NumPy broadcasting: align shapes on the right; each pair of dims must be equal or one of
// them 1.  Throws naming `op` and both shapes otherwise.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// Does `from` broadcast to exactly `to`?  (Right-aligned, each dim equal or 1.)
inline bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (std::size_t i = 0; i < from.size(); ++i) {
    const std::size_t f = from[from.size() - 1 - i], t = to[to.size() - 1 - i];
    if (f != t && f != 1) return false;
  }
  return true;
}

// Both inputs defined and of one dtype; throws naming `op`, both dtypes and the tensors' names.
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);

// y = f(a, b) with NumPy broadcasting to `shape` (already checked), for any shapes.
template <class T, class F>
Array<T> broadcast_elements(const Array<T>& a, const Array<T>& b, const Shape& shape, F f) {
  if (a.shape() == shape && b.shape() == shape) return zip_elements(a, b, f);
  Array<T> y = Array<T>::from_shape(shape);
  const std::size_t rank = shape.size(), n = y.size();
  if (n == 0) return y;
  // Strides of a and b along each output dim (0 where broadcast).
  std::vector<std::size_t> sa(rank, 0), sb(rank, 0);
  const auto strides = [&](const Shape& s, std::vector<std::size_t>& out) {
    std::size_t stride = 1;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const std::size_t d = s.size() - 1 - i, o = rank - 1 - i;
      out[o] = s[d] == 1 ? 0 : stride;
      stride *= s[d];
    }
  };
  strides(a.shape(), sa);
  strides(b.shape(), sb);
  const std::size_t inner = rank > 0 ? shape[rank - 1] : 1;
  const std::size_t ia = rank > 0 ? sa[rank - 1] : 0, ib = rank > 0 ? sb[rank - 1] : 0;
  const std::size_t rows = n / inner;
  parallel_rows(rows, inner, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      // The offsets of row r in a and b, from its index over the outer dims.
      std::size_t oa = 0, ob = 0, rest = r;
      for (std::size_t d = rank > 0 ? rank - 1 : 0; d-- > 0;) {
        const std::size_t i = rest % shape[d];
        rest /= shape[d];
        oa += i * sa[d];
        ob += i * sb[d];
      }
      const T* ap = a.data() + oa;
      const T* bp = b.data() + ob;
      T* yp = y.data() + r * inner;
      for (std::size_t j = 0; j < inner; ++j) yp[j] = f(ap[j * ia], bp[j * ib]);
    }
  });
  return y;
}

// Undoes broadcasting for a gradient: g has the broadcast output's shape, the input had
// `shape`; the input's gradient is g summed over every dim it was stretched along.
template <class T>
Array<T> sum_to_shape(const Array<T>& g, const Shape& shape) {
  if (g.shape() == shape) return parallel_copy(g);  // a copy (the caller keeps g)
  Shape kept(g.dimension() - shape.size(), 1);      // leading dims the input did not have
  kept.insert(kept.end(), shape.begin(), shape.end());
  Array<T> reduced = reduce_sum(g, kept);
  reduced.reshape(shape);
  return reduced;
}

template <class T>
Array<T> sum_to_shape(Array<T>&& g, const Shape& shape) {
  if (g.shape() == shape) return std::move(g);
  return sum_to_shape(static_cast<const Array<T>&>(g), shape);
}

}  // namespace tg

// Helpers for ops that broadcast (library-internal, but ops you add may use them too).
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

#include "kernels.hpp"
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

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);

// Undoes broadcasting for a gradient: g has the broadcast output's shape, the input had
// `shape`; the input's gradient is g summed over every dim it was stretched along.
template <class T>
Array<T> reduce_sum(const Array<T>& x, const Shape& kept);

template <class T>
Array<T> sum_to_shape(const Array<T>& g, const Shape& shape) {
  if (g.shape() == shape) return g;  // a copy (the caller keeps g)
  Shape kept(g.dimension() - shape.size(), 1);  // leading dims the input did not have
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

// x: (d0, ..., dn) -> kept, where kept is x's shape with each reduced dim set to 1: every
// output element combines the elements of x that map to it.  (Our own loop: xtensor 0.24's
// immediate reducers crash when reducing every axis of an xarray.)
template <class T, class Combine>
Array<T> reduce_to(const Array<T>& x, const Shape& kept, T init, Combine combine) {
  Array<T> out = Array<T>::from_shape(kept);
  out.fill(init);
  const std::size_t rank = x.dimension();
  if (x.size() == 0) return out;
  // Only leading dims reduced (a bias gradient, (B, T, C) -> (1, 1, C)): x is `rows` rows of
  // `width`, combined in parallel chunks of rows, then the chunks' results in chunk order (the
  // same bits on any number of threads).
  std::size_t lead = 0;
  while (lead < rank && kept[lead] == 1) ++lead;
  if (lead > 0 && std::equal(kept.begin() + lead, kept.end(), x.shape().begin() + lead)) {
    const std::size_t width = out.size(), rows = x.size() / width;
    std::vector<Array<T>> partial(chunk_count(rows, width), out);
    parallel_chunks(rows, width, [&](std::size_t k, std::size_t begin, std::size_t end) {
      T* acc = partial[k].data();
      for (std::size_t r = begin; r < end; ++r) {
        const T* row = x.data() + r * width;
        for (std::size_t j = 0; j < width; ++j) acc[j] = combine(acc[j], row[j]);
      }
    });
    for (const auto& p : partial)
      for (std::size_t j = 0; j < width; ++j) out.data()[j] = combine(out.data()[j], p.data()[j]);
    return out;
  }
  // Stride of `out` along each dim of x, 0 along reduced dims.
  std::vector<std::size_t> stride(rank);
  for (std::size_t d = rank, s = 1; d-- > 0;) {
    stride[d] = kept[d] == 1 ? 0 : s;
    s *= kept[d];
  }
  const std::size_t inner = rank > 0 ? x.shape()[rank - 1] : 1;  // contiguous run in x
  const bool inner_reduced = rank == 0 || stride[rank - 1] == 0;
  std::vector<std::size_t> index(rank, 0);
  std::size_t offset = 0;
  const T* src = x.data();
  for (std::size_t i = 0; i < x.size(); i += inner) {
    T* o = out.data() + offset;
    if (inner_reduced) {
      T acc = *o;
      for (std::size_t j = 0; j < inner; ++j) acc = combine(acc, src[i + j]);
      *o = acc;
    } else {
      for (std::size_t j = 0; j < inner; ++j) o[j] = combine(o[j], src[i + j]);
    }
    for (std::size_t d = rank > 0 ? rank - 1 : 0; d-- > 0;) {  // advance over the outer dims
      offset += stride[d];
      if (++index[d] < x.shape()[d]) break;
      offset -= stride[d] * index[d];
      index[d] = 0;
    }
  }
  return out;
}

template <class T>
Array<T> reduce_sum(const Array<T>& x, const Shape& kept) {
  return reduce_to(x, kept, T(0), [](T a, T b) { return a + b; });
}

template <class T>
Array<T> reduce_max(const Array<T>& x, const Shape& kept) {
  return reduce_to(x, kept, -std::numeric_limits<T>::infinity(),
                   [](T a, T b) { return std::max(a, b); });
}

}  // namespace tg

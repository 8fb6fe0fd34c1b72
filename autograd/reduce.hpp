// Reductions over dims, for reduce ops and for undoing broadcasting in gradients (sum_to_shape
// in broadcast.hpp).  Library-internal, but ops you add may use them too.
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

#include "runtime/kernels.hpp"
#include "tensor.hpp"

namespace tg {

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

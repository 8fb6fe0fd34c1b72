// Shape ops.  Each returns a new tensor (tapegrad never aliases memory).  Every op here is
// linear, so its jvp is the op itself applied to the tangent, and its vjp is its adjoint: the
// inverse rearrangement for a pure rearrangement, and for an op that drops or repeats entries
// (slice, take_rows, pick) an op of its own that puts them back (pad, scatter_add_rows, unpick),
// whose vjp is in turn the first op.
#include <memory>
#include <numeric>

#include <xtensor/xmanipulation.hpp>

#include "broadcast.hpp"
#include "ops.hpp"
#include "runtime/kernels.hpp"
#include "tape.hpp"

namespace tg {
namespace {

// Around one axis, a row-major tensor is `outer` blocks, each of n rows of `inner` contiguous
// elements: slicing and concatenating along the axis copy whole rows.
std::size_t outer_size(const Shape& s, std::size_t axis) {
  std::size_t n = 1;
  for (std::size_t d = 0; d < axis; ++d) n *= s[d];
  return n;
}

std::size_t inner_size(const Shape& s, std::size_t axis) {
  std::size_t n = 1;
  for (std::size_t d = axis + 1; d < s.size(); ++d) n *= s[d];
  return n;
}

// Copies rows [from, from + count) of src (outer, n_src, inner) to rows [to, to + count) of
// dst (outer, n_dst, inner).
template <class T>
void copy_rows(const T* src, std::size_t n_src, std::size_t from, T* dst, std::size_t n_dst,
               std::size_t to, std::size_t count, std::size_t outer, std::size_t inner) {
  parallel_rows(outer, count * inner, [&](std::size_t o0, std::size_t o1) {
    for (std::size_t o = o0; o < o1; ++o)
      std::copy_n(src + (o * n_src + from) * inner, count * inner, dst + (o * n_dst + to) * inner);
  });
}

// y = x with its axes reordered: y's axis d is x's axis perm[d].  Rows of y's last axis are
// filled in parallel; when the last axis stays last, each row is one contiguous copy.
template <class T>
Array<T> permute_array(const Array<T>& x, const std::vector<std::size_t>& perm) {
  const std::size_t rank = perm.size();
  Shape out(rank);
  std::vector<std::size_t> in_stride(rank), stride(rank);
  for (std::size_t d = rank, s = 1; d-- > 0;) {
    in_stride[d] = s;
    s *= x.shape()[d];
  }
  for (std::size_t d = 0; d < rank; ++d) {
    out[d] = x.shape()[perm[d]];
    stride[d] = in_stride[perm[d]];  // step in x for a step along y's axis d
  }
  Array<T> y = Array<T>::from_shape(out);
  if (y.size() == 0 || rank == 0) {
    if (rank == 0) y() = x();
    return y;
  }
  const std::size_t inner = out[rank - 1], step = stride[rank - 1], rows = y.size() / inner;
  parallel_rows(rows, inner, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      std::size_t offset = 0, rest = r;
      for (std::size_t d = rank - 1; d-- > 0;) {
        offset += (rest % out[d]) * stride[d];
        rest /= out[d];
      }
      const T* src = x.data() + offset;
      T* dst = y.data() + r * inner;
      if (step == 1) std::copy_n(src, inner, dst);
      else
        for (std::size_t j = 0; j < inner; ++j) dst[j] = src[j * step];
    }
  });
  return y;
}

}  // namespace

// x: (...) -> shape;  the gradient is g reshaped back to x's shape
Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape) {
  check_defined("reshape", x);
  Shape target(shape.size());
  std::size_t known = 1;
  int inferred = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0) fail("reshape", "only one dimension can be -1");
      inferred = static_cast<int>(i);
    } else if (shape[i] < 0) {
      fail("reshape", "dimension " + std::to_string(i) + " is " + std::to_string(shape[i]) +
                          "; sizes must be >= 0 (or -1 to infer one)");
    } else {
      target[i] = static_cast<std::size_t>(shape[i]);
      known *= target[i];
    }
  }
  if (inferred >= 0) {
    if (known == 0 || x.numel() % known != 0)
      fail("reshape", "cannot infer the -1 dimension: " + std::to_string(x.numel()) +
                          " elements of " + shape_str(x.shape()) + " do not divide by " +
                          std::to_string(known));
    target[inferred] = x.numel() / known;
  }
  if (shape_numel(target) != x.numel())
    fail("reshape", "cannot reshape " + shape_str(x.shape()) + " (" + std::to_string(x.numel()) +
                        " elements) to " + shape_str(target) + " (" +
                        std::to_string(shape_numel(target)) + " elements)");
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> v = parallel_copy(x.data<T>());
    v.reshape(target);
    return Tensor(std::move(v));
  });
  if (needs_grad(x))
    record_linear(
        "reshape", y, x, 0,
        [from = x.shape()](const Tensor& g_y) {
          return reshape(g_y, std::vector<std::int64_t>(from.begin(), from.end()));
        },
        [target](const Tensor& dx) {
          return reshape(dx, std::vector<std::int64_t>(target.begin(), target.end()));
        });
  return y;
}

// x: (d0, ..., dn) -> (d[perm[0]], ..., d[perm[n]]):  y's axis d is x's axis perm[d];
// g_x = g_y permuted back (by the inverse permutation);  dy = dx permuted by perm
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& perm) {
  check_defined("permute", x);
  const std::size_t rank = x.dim();
  std::string given;
  for (auto p : perm) given += (given.empty() ? "" : ", ") + std::to_string(p);
  if (perm.size() != rank)
    fail("permute", "the permutation (" + given + ") has " + std::to_string(perm.size()) +
                        " axes, the input " + shape_str(x.shape()) + " has " +
                        std::to_string(rank));
  std::vector<std::size_t> p(rank), inverse(rank, rank);
  for (std::size_t i = 0; i < rank; ++i) {
    p[i] = normalize_axis("permute", perm[i], rank);
    if (inverse[p[i]] != rank) fail("permute", "(" + given + ") repeats an axis");
    inverse[p[i]] = i;
  }
  Tensor y = dispatch(x.dtype(), [&]<class T>() { return Tensor(permute_array(x.data<T>(), p)); });
  if (needs_grad(x))
    record_linear(
        "permute", y, x, 0,
        [back = std::vector<std::int64_t>(inverse.begin(), inverse.end())](const Tensor& g_y) {
          return permute(g_y, back);
        },
        [p = std::vector<std::int64_t>(p.begin(), p.end())](const Tensor& dx) {
          return permute(dx, p);
        });
  return y;
}

Tensor transpose(const Tensor& x, std::int64_t axis0, std::int64_t axis1) {
  check_defined("transpose", x);
  std::vector<std::int64_t> perm(x.dim());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[normalize_axis("transpose", axis0, x.dim())],
            perm[normalize_axis("transpose", axis1, x.dim())]);
  return permute(x, perm);
}

// x: (..., n, ...) -> (..., stop - start, ...): y = x[start:stop] along `axis`;
// g_x = pad(g_y) with zeros back to n along `axis`;  dy = slice(dx)
Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t stop) {
  check_defined("slice", x);
  const std::size_t ax = normalize_axis("slice", axis, x.dim());
  const auto n = static_cast<std::int64_t>(x.shape()[ax]);
  const std::int64_t b = start < 0 ? start + n : start;
  const std::int64_t e = stop < 0 ? stop + n : stop;
  if (b < 0 || e > n || b > e)
    fail("slice", "range [" + std::to_string(start) + ", " + std::to_string(stop) +
                      ") is not inside axis " + std::to_string(axis) + " of size " +
                      std::to_string(n) + " (input " + shape_str(x.shape()) + ")");
  const auto from = static_cast<std::size_t>(b), count = static_cast<std::size_t>(e - b);
  const std::size_t outer = outer_size(x.shape(), ax), inner = inner_size(x.shape(), ax);
  Shape out = x.shape();
  out[ax] = count;
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> r = Array<T>::from_shape(out);
    copy_rows(x.data<T>().data(), x.shape()[ax], from, r.data(), count, 0, count, outer, inner);
    return Tensor(std::move(r));
  });
  if (needs_grad(x))
    record_linear(
        "slice", y, x, 0,
        [axis, from, after = static_cast<std::size_t>(n - e)](const Tensor& g_y) {
          return pad(g_y, axis, from, after);
        },
        [axis, b, e](const Tensor& dx) { return slice(dx, axis, b, e); });
  return y;
}

// x: (..., n, ...) -> (..., before + n + after, ...): x between zeros along `axis`, the adjoint
// of slice;  g_x = slice(g_y, axis, before, before + n);  dy = pad(dx)
Tensor pad(const Tensor& x, std::int64_t axis, std::size_t before, std::size_t after) {
  check_defined("pad", x);
  const std::size_t ax = normalize_axis("pad", axis, x.dim());
  const std::size_t n = x.shape()[ax];
  const std::size_t outer = outer_size(x.shape(), ax), inner = inner_size(x.shape(), ax);
  Shape out = x.shape();
  out[ax] = before + n + after;
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> r = xt::zeros<T>(out);
    copy_rows(x.data<T>().data(), n, 0, r.data(), out[ax], before, n, outer, inner);
    return Tensor(std::move(r));
  });
  if (needs_grad(x))
    record_linear(
        "pad", y, x, 0,
        [axis, before, n](const Tensor& g_y) {
          const auto b = static_cast<std::int64_t>(before);
          return slice(g_y, axis, b, b + static_cast<std::int64_t>(n));
        },
        [axis, before, after](const Tensor& dx) { return pad(dx, axis, before, after); });
  return y;
}

// xs: k tensors equal but along `axis` -> sizes summed;  each input's gradient is its slice of g
Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis) {
  if (xs.empty()) fail("concat", "needs at least one tensor");
  for (const Tensor& t : xs) check_defined("concat", t);
  const Shape& first = xs[0].shape();
  const std::size_t ax = normalize_axis("concat", axis, first.size());
  Shape out = first;
  out[ax] = 0;
  std::vector<std::size_t> offsets;  // where each input starts along `axis`
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    bool same = s.size() == first.size() && xs[i].dtype() == xs[0].dtype();
    for (std::size_t d = 0; same && d < s.size(); ++d) same = d == ax || s[d] == first[d];
    if (!same)
      fail("concat", "tensor " + std::to_string(i) + " is " + shape_str(s) + " " +
                         dtype_name(xs[i].dtype()) + ", tensor 0 is " + shape_str(first) + " " +
                         dtype_name(xs[0].dtype()) + "; all must match except along axis " +
                         std::to_string(ax));
    offsets.push_back(out[ax]);
    out[ax] += s[ax];
  }
  const std::size_t outer = outer_size(out, ax), inner = inner_size(out, ax), total = out[ax];
  Tensor y = dispatch(xs[0].dtype(), [&]<class T>() {
    Array<T> r = Array<T>::from_shape(out);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const std::size_t n = xs[i].shape()[ax];
      copy_rows(xs[i].data<T>().data(), n, 0, r.data(), total, offsets[i], n, outer, inner);
    }
    return Tensor(std::move(r));
  });
  if (needs_grad(xs)) {
    std::vector<Shape> shapes;
    for (const Tensor& t : xs) shapes.push_back(t.shape());
    record(
        "concat", y, xs, 0,
        [ax, offsets, shapes](const Tensor& g_y, Grads& g) {
          for (std::size_t i = 0; i < shapes.size(); ++i) {
            const auto from = static_cast<std::int64_t>(offsets[i]);
            if (g.wanted(i))
              g.add(i, slice(g_y, static_cast<std::int64_t>(ax), from,
                             from + static_cast<std::int64_t>(shapes[i][ax])));
          }
        },
        [ax, n = xs.size()](const Tangents& t) {
          std::vector<Tensor> parts;
          for (std::size_t i = 0; i < n; ++i) parts.push_back(t[i]);
          return concat(parts, static_cast<std::int64_t>(ax));
        });
  }
  return y;
}

// xs: k tensors of shape (...) -> (..., k, ...) with the new axis at `axis`.
// Built from reshape and concat, so it needs no backward of its own.
Tensor stack(const std::vector<Tensor>& xs, std::int64_t axis) {
  if (xs.empty()) fail("stack", "needs at least one tensor");
  for (const Tensor& t : xs) check_defined("stack", t);
  const Shape& first = xs[0].shape();
  for (std::size_t i = 1; i < xs.size(); ++i)
    if (xs[i].shape() != first)
      fail("stack", "tensor " + std::to_string(i) + " is " + shape_str(xs[i].shape()) +
                        ", tensor 0 is " + shape_str(first) + "; all must have one shape");
  const std::size_t ax = normalize_axis("stack", axis, first.size() + 1);
  std::vector<std::int64_t> with_axis(first.begin(), first.end());
  with_axis.insert(with_axis.begin() + static_cast<std::ptrdiff_t>(ax), 1);
  std::vector<Tensor> parts;
  for (const Tensor& t : xs) parts.push_back(reshape(t, with_axis));
  return concat(parts, static_cast<std::int64_t>(ax));
}

// x: (N, ...) -> (R, ...):  y[r] = x[rows[r]];
// g_x = scatter_add_rows(g_y, rows, N) (a row taken twice gets both gradients);
// dy = take_rows(dx, rows)
Tensor take_rows(const Tensor& x, const std::vector<std::size_t>& rows) {
  check_defined("take_rows", x);
  const Shape& shape = x.shape();
  if (shape.empty()) fail("take_rows", "needs at least one axis, x is a scalar");
  const std::size_t n = shape[0], row = n ? x.numel() / n : 0;
  for (std::size_t r : rows)
    if (r >= n)
      fail("take_rows", "row " + std::to_string(r) + " is out of range for x " + shape_str(shape));
  Shape out = shape;
  out[0] = rows.size();
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> r = Array<T>::from_shape(out);
    const T* src = x.data<T>().data();
    for (std::size_t i = 0; i < rows.size(); ++i)
      std::copy_n(src + rows[i] * row, row, r.data() + i * row);
    return Tensor(std::move(r));
  });
  if (needs_grad(x)) {
    auto kept = std::make_shared<const std::vector<std::size_t>>(rows);  // one copy for both rules
    record_linear(
        "take_rows", y, x, 0,
        [kept, n](const Tensor& g_y) { return scatter_add_rows(g_y, *kept, n); },
        [kept](const Tensor& dx) { return take_rows(dx, *kept); });
  }
  return y;
}

// x: (R, ...) -> (n, ...):  y[rows[r]] += x[r], zeros in rows never named (the adjoint of
// take_rows);  g_x = take_rows(g_y, rows);  dy = scatter_add_rows(dx, rows, n)
Tensor scatter_add_rows(const Tensor& x, const std::vector<std::size_t>& rows, std::size_t n) {
  check_defined("scatter_add_rows", x);
  const Shape& shape = x.shape();
  if (shape.empty() || shape[0] != rows.size())
    fail("scatter_add_rows", "needs x (R, ...) with one row per index: x is " + shape_str(shape) +
                                 ", there are " + std::to_string(rows.size()) + " indices");
  for (std::size_t r : rows)
    if (r >= n)
      fail("scatter_add_rows", "row " + std::to_string(r) + " is out of range for an output of " +
                                   std::to_string(n) + " rows");
  const std::size_t row = inner_size(shape, 0);
  Shape out = shape;
  out[0] = n;
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> r = xt::zeros<T>(out);
    const T* src = x.data<T>().data();
    for (std::size_t i = 0; i < rows.size(); ++i)
      for (std::size_t k = 0; k < row; ++k) r.data()[rows[i] * row + k] += src[i * row + k];
    return Tensor(std::move(r));
  });
  if (needs_grad(x)) {
    auto kept = std::make_shared<const std::vector<std::size_t>>(rows);
    record_linear(
        "scatter_add_rows", y, x, 0, [kept](const Tensor& g_y) { return take_rows(g_y, *kept); },
        [kept, n](const Tensor& dx) { return scatter_add_rows(dx, *kept, n); });
  }
  return y;
}

namespace {

// rows strictly increasing and below n, else throws naming `op`.
void check_increasing_rows(const char* op, const std::vector<std::size_t>& rows, std::size_t n) {
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (rows[r] >= n)
      fail(op, "row " + std::to_string(rows[r]) + " is out of range for " + std::to_string(n) +
                   " rows");
    if (r > 0 && rows[r] <= rows[r - 1])
      fail(op, "rows must be strictly increasing, got " + std::to_string(rows[r - 1]) + " then " +
                   std::to_string(rows[r]));
  }
}

}  // namespace

// x read as (n, C) -> (R, C): out[r] = x[rows[r]];  g_x = scatter_rows(g_y, rows, x's shape);
// dy = gather_rows(dx, rows).  Row copies, in parallel.
Tensor gather_rows(const Tensor& x, const std::shared_ptr<const std::vector<std::size_t>>& rows) {
  check_defined("gather_rows", x);
  if (!rows) fail("gather_rows", "no rows given (a null list)");
  if (x.dim() < 2)
    fail("gather_rows", "needs x (..., C) with at least 2 axes, got " + shape_str(x.shape()));
  const std::size_t C = x.shape().back(),
                    n = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1)),
                    R = rows->size();
  check_increasing_rows("gather_rows", *rows, n);
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> out = Array<T>::from_shape({R, C});
    const T* src = x.data<T>().data();
    parallel_rows(R, C, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r)
        std::copy_n(src + (*rows)[r] * C, C, out.data() + r * C);
    });
    return Tensor(std::move(out));
  });
  if (needs_grad(x)) {
    const Shape shape = x.shape();
    record_linear(
        "gather_rows", y, x, 0,
        [rows, shape](const Tensor& g_y) { return scatter_rows(g_y, rows, shape); },
        [rows](const Tensor& dx) { return gather_rows(dx, rows); });
  }
  return y;
}

// x (R, C) -> shape (..., C), zeros where rows name none;  g_x = gather_rows(g_y, rows);
// dy = scatter_rows(dx, rows, shape).
Tensor scatter_rows(const Tensor& x, const std::shared_ptr<const std::vector<std::size_t>>& rows,
                    const Shape& shape) {
  check_defined("scatter_rows", x);
  if (!rows) fail("scatter_rows", "no rows given (a null list)");
  const std::size_t R = rows->size();
  if (x.dim() != 2 || x.shape()[0] != R || shape.size() < 2 || shape.back() != x.shape()[1])
    fail("scatter_rows", "needs x (R, C) with R = " + std::to_string(R) +
                             " rows and a shape (..., C): x is " + shape_str(x.shape()) +
                             ", the shape " + shape_str(shape));
  const std::size_t C = shape.back(), n = shape_numel(Shape(shape.begin(), shape.end() - 1));
  check_increasing_rows("scatter_rows", *rows, n);
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> out = Array<T>::from_shape(shape);
    const T* src = x.data<T>().data();
    // Row i of out is row r of x when rows[r] == i, else zeros: each task fills its own rows.
    parallel_rows(n, C, [&](std::size_t begin, std::size_t end) {
      std::size_t r = std::lower_bound(rows->begin(), rows->end(), begin) - rows->begin();
      for (std::size_t i = begin; i < end; ++i) {
        T* row = out.data() + i * C;
        if (r < R && (*rows)[r] == i) std::copy_n(src + r++ * C, C, row);
        else std::fill_n(row, C, T(0));
      }
    });
    return Tensor(std::move(out));
  });
  if (needs_grad(x))
    record_linear(
        "scatter_rows", y, x, 0, [rows](const Tensor& g_y) { return gather_rows(g_y, rows); },
        [rows, shape](const Tensor& dx) { return scatter_rows(dx, rows, shape); });
  return y;
}

namespace {
// Every id in [0, C); else throws naming `op`, the id, its place and `x_is` (what x is).
void check_ids(const char* op, const Ids& ids, std::size_t C, const std::string& x_is) {
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids.data()[i] < 0 || static_cast<std::size_t>(ids.data()[i]) >= C)
      fail(op, "id " + std::to_string(ids.data()[i]) + " at " + std::to_string(i) +
                   " is outside [0, " + std::to_string(C) + ")" + x_is);
}
}  // namespace

// x: (..., C), ids: (...) -> (...):  y[i] = x[i, ids[i]];
// g_x = unpick(g_y, ids, C) (g_y in the picked entries, zeros elsewhere);  dy = pick(dx, ids)
Tensor pick(const Tensor& x, const Ids& ids) {
  check_defined("pick", x);
  const Shape& shape = x.shape();
  const Shape id_shape(ids.shape().begin(), ids.shape().end());
  if (shape.empty() || Shape(shape.begin(), shape.end() - 1) != id_shape)
    fail("pick", "needs x (..., C) and ids (...) with the same leading axes, got x " +
                     shape_str(shape) + " and ids " + shape_str(id_shape));
  const std::size_t C = shape.back(), rows = ids.size();
  check_ids("pick", ids, C, " for x " + shape_str(shape));
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> r = Array<T>::from_shape(id_shape);
    const T* src = x.data<T>().data();
    for (std::size_t i = 0; i < rows; ++i)
      r.data()[i] = src[i * C + static_cast<std::size_t>(ids.data()[i])];
    return Tensor(std::move(r));
  });
  if (needs_grad(x)) {
    auto kept = std::make_shared<const Ids>(ids);  // one copy for both rules
    record_linear(
        "pick", y, x, 0, [kept, C](const Tensor& g_y) { return unpick(g_y, *kept, C); },
        [kept](const Tensor& dx) { return pick(dx, *kept); });
  }
  return y;
}

// v: (...), ids: (...) -> (..., C):  y[i, ids[i]] = v[i], zeros elsewhere (the adjoint of
// pick);  g_v = pick(g_y, ids);  dy = unpick(dv, ids, C)
Tensor unpick(const Tensor& v, const Ids& ids, std::size_t C) {
  check_defined("unpick", v);
  const Shape id_shape(ids.shape().begin(), ids.shape().end());
  if (v.shape() != id_shape)
    fail("unpick", "needs v and ids of one shape, got v " + shape_str(v.shape()) + " and ids " +
                       shape_str(id_shape));
  check_ids("unpick", ids, C, "");
  Shape out = id_shape;
  out.push_back(C);
  Tensor y = dispatch(v.dtype(), [&]<class T>() {
    Array<T> r = xt::zeros<T>(out);
    const T* src = v.data<T>().data();
    for (std::size_t i = 0; i < ids.size(); ++i)
      r.data()[i * C + static_cast<std::size_t>(ids.data()[i])] = src[i];
    return Tensor(std::move(r));
  });
  if (needs_grad(v)) {
    auto kept = std::make_shared<const Ids>(ids);
    record_linear(
        "unpick", y, v, 0, [kept](const Tensor& g_y) { return pick(g_y, *kept); },
        [kept, C](const Tensor& dv) { return unpick(dv, *kept, C); });
  }
  return y;
}

// ---- copies and broadcasting -----------------------------------------------------------

// y = x;  g_x = g_y,  dy = dx
Tensor clone(const Tensor& x) {
  check_defined("clone", x);
  Tensor y = std::visit([](const auto& v) { return Tensor(parallel_copy(v)); }, x.impl()->value);
  if (needs_grad(x))
    record_linear(
        "clone", y, x, 0, [](const Tensor& g_y) { return g_y; },
        [](const Tensor& dx) { return dx; });
  return y;
}

// y = x repeated to `shape`;  g_x = sum_to(g_y, x's shape),  dy = expand(dx)
Tensor expand(const Tensor& x, const Shape& shape) {
  check_defined("expand", x);
  if (!broadcasts_to(x.shape(), shape))
    fail("expand", shape_str(x.shape()) + " does not broadcast to " + shape_str(shape) +
                       " (right-aligned, each dim equal or 1)");
  if (x.shape() == shape) return x;
  // The broadcasting kernel, rows in parallel, reading x as both of its operands (xtensor's own
  // broadcast assignment runs one element at a time on one thread: 1.4 ms for the sentiment
  // step's pooling gradient, (64, 1, 256) -> (64, 64, 256)).
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    return Tensor(broadcast_elements(x.data<T>(), x.data<T>(), shape, [](T a, T) { return a; }));
  });
  if (needs_grad(x))
    record_linear(
        "expand", y, x, 0, [from = x.shape()](const Tensor& g_y) { return sum_to(g_y, from); },
        [shape](const Tensor& dx) { return expand(dx, shape); });
  return y;
}

// y = x summed down to `shape`;  g_x = expand(g_y, x's shape),  dy = sum_to(dx)
Tensor sum_to(const Tensor& x, const Shape& shape) {
  check_defined("sum_to", x);
  if (!broadcasts_to(shape, x.shape()))
    fail("sum_to", shape_str(shape) + " does not broadcast to the input's " + shape_str(x.shape()) +
                       ", so the input cannot be summed down to it");
  if (x.shape() == shape) return x;
  Tensor y =
      dispatch(x.dtype(), [&]<class T>() { return Tensor(sum_to_shape(x.data<T>(), shape)); });
  if (needs_grad(x))
    record_linear(
        "sum_to", y, x, 0, [from = x.shape()](const Tensor& g_y) { return expand(g_y, from); },
        [shape](const Tensor& dx) { return sum_to(dx, shape); });
  return y;
}

}  // namespace tg

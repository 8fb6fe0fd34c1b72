// Reductions over axes.  The backward of a reduction broadcasts the gradient back over the
// reduced axes (reshaped with those axes as size 1 first).
#include <algorithm>

#include <xtensor/xbroadcast.hpp>

#include "broadcast.hpp"
#include "ops.hpp"
#include "reduce.hpp"
#include "tape.hpp"

namespace tg {
namespace {

struct Reduction {
  std::vector<std::size_t> axes;  // sorted, unique, non-negative
  Shape kept;                     // the output shape with reduced axes kept as 1
  Shape out;                      // the output shape as returned
  std::size_t count = 1;          // elements reduced into each output
};

Reduction plan(const char* op, const Tensor& x, const std::vector<std::int64_t>& axes,
               bool keepdim) {
  if (!x.defined()) fail(op, "the input is an undefined tensor");
  Reduction r;
  for (auto a : axes) r.axes.push_back(normalize_axis(op, a, x.dim()));
  std::sort(r.axes.begin(), r.axes.end());
  if (std::adjacent_find(r.axes.begin(), r.axes.end()) != r.axes.end())
    fail(op, "an axis is given twice");
  r.kept = x.shape();
  for (auto a : r.axes) {
    r.count *= r.kept[a];
    r.kept[a] = 1;
  }
  for (std::size_t d = 0; d < x.dim(); ++d)
    if (keepdim || !std::binary_search(r.axes.begin(), r.axes.end(), d)) r.out.push_back(r.kept[d]);
  return r;
}

// The same, for the reductions that nothing has no value of (mean, max; a sum of nothing is 0).
Reduction plan_nonempty(const char* op, const Tensor& x, const std::vector<std::int64_t>& axes,
                        bool keepdim) {
  Reduction r = plan(op, x, axes, keepdim);
  if (r.count == 0) fail(op, "the reduced axes of " + shape_str(x.shape()) + " hold no elements");
  return r;
}

std::vector<std::int64_t> all_axes(const Tensor& x) {
  std::vector<std::int64_t> axes(x.dim());
  for (std::size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<std::int64_t>(i);
  return axes;
}

// g: the output's shape -> x's shape, the same value copied along the reduced axes
template <class T>
Array<T> spread(const Array<T>& g_y, const Shape& kept, const Shape& shape) {
  Array<T> g = g_y;
  g.reshape(kept);
  return xt::broadcast(g, shape);
}

// y = sum of x over the planned axes, divided by `divisor` unless it is 1;  dy/dx = 1 / divisor
// for every element reduced.  A division, not a product with 1 / divisor: the two round
// differently.
Tensor sum_divided(const char* op, const Tensor& x, const Reduction& r, std::size_t divisor) {
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> s = reduce_sum(x.data<T>(), r.kept);
    if (divisor != 1) s /= static_cast<T>(divisor);
    s.reshape(r.out);
    return Tensor(std::move(s));
  });
  if (needs_grad(x))
    record(op, y, {x}, 0,
           [kept = r.kept, shape = x.shape(), divisor]<class T>(const Array<T>& g_y, Grads& g) {
             Array<T> g_x = spread(g_y, kept, shape);
             if (divisor != 1) g_x /= static_cast<T>(divisor);
             g.add(0, std::move(g_x));
           });
  return y;
}

}  // namespace

// y = sum of x over axes;  dy/dx = 1 for every element reduced
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  return sum_divided("sum", x, plan("sum", x, axes, keepdim), 1);
}

// y = mean of x over axes = their sum / count;  dy/dx = 1 / count
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  const Reduction r = plan_nonempty("mean", x, axes, keepdim);
  return sum_divided("mean", x, r, r.count);
}

Tensor sum(const Tensor& x) { return sum(x, all_axes(x)); }
Tensor mean(const Tensor& x) { return mean(x, all_axes(x)); }

// y = max of x over axes;  dy/dx = 1 / (number of maximal elements) at the maximal elements,
// 0 elsewhere (a subgradient that is symmetric between ties)
Tensor max(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  const Reduction r = plan_nonempty("max", x, axes, keepdim);
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> m = reduce_max(x.data<T>(), r.kept);
    m.reshape(r.out);
    return Tensor(std::move(m));
  });
  if (needs_grad(x))
    record("max", y, {x}, saved_bytes(x, y), [x, y, r]<class T>(const Array<T>& g_y, Grads& g) {
      const Array<T>& v = x.data<T>();
      Array<T> is_max = xt::cast<T>(xt::equal(v, spread(y.data<T>(), r.kept, v.shape())));
      Array<T> ties = reduce_sum(is_max, r.kept);
      Array<T> g_kept = g_y;
      g_kept.reshape(r.kept);
      g.add(0, Array<T>(is_max * (g_kept / ties)));
    });
  return y;
}

}  // namespace tg

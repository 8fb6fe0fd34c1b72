// Reductions over axes.  The backward of a reduction spreads the gradient back over the
// reduced axes (reshaped with those axes as size 1 first, then expanded); the tangent of a sum
// is the sum of the tangent.
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

// g: the output's shape -> x's shape, the same value repeated along the reduced axes
Tensor spread(const Tensor& g, const Reduction& r, const Shape& shape) {
  return expand(reshape(g, std::vector<std::int64_t>(r.kept.begin(), r.kept.end())), shape);
}

// sum:   y = sum of x over the planned axes;  g_x = spread(g_y);          dy = sum(dx)
// mean:  y = that sum / count;                g_x = spread(g_y / count);  dy = mean(dx)
// A division, not a product with 1 / count: the two round differently.  Dividing g_y before
// spreading it gives the same bits as dividing every copy, in count times fewer divisions.
Tensor sum_or_mean(const Tensor& x, const Reduction& r, bool mean) {
  const std::size_t divisor = mean ? r.count : 1;
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> s = reduce_sum(x.data<T>(), r.kept);
    if (divisor != 1) s /= static_cast<T>(divisor);
    s.reshape(r.out);
    return Tensor(std::move(s));
  });
  if (needs_grad(x))
    record(
        mean ? "mean" : "sum", y, {x}, 0,
        [r, shape = x.shape(), divisor](const Tensor& g_y, Grads& g) {
          if (divisor == 1) g.add(0, spread(g_y, r, shape));
          else g.add(0, spread(g_y / scalar(static_cast<double>(divisor), g_y.dtype()), r, shape));
        },
        [r, mean](const Tangents& t) { return sum_or_mean(t[0], r, mean); });
  return y;
}

}  // namespace

// y = sum of x over axes, and mean = that sum / count (their rules: sum_or_mean above)
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  return sum_or_mean(x, plan("sum", x, axes, keepdim), false);
}

Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  return sum_or_mean(x, plan_nonempty("mean", x, axes, keepdim), true);
}

Tensor sum(const Tensor& x) { return sum(x, all_axes(x)); }
Tensor mean(const Tensor& x) { return mean(x, all_axes(x)); }

namespace {
// Where x reaches its maximum y in each reduction: is_max (x's shape) is 1 there and 0
// elsewhere, ties (the kept shape) counts those places.  Constants, for max's rules: they are
// piecewise constant in x, so they have no derivative of their own.
struct Maximal {
  Tensor is_max, ties;
};
Maximal maximal(const Tensor& x, const Tensor& y, const Reduction& r) {
  return dispatch(x.dtype(), [&]<class T>() {
    const Array<T>& v = x.data<T>();
    Array<T> m = y.data<T>();
    m.reshape(r.kept);
    Array<T> is_max = xt::cast<T>(xt::equal(v, Array<T>(xt::broadcast(m, v.shape()))));
    Array<T> ties = reduce_sum(is_max, r.kept);
    return Maximal{Tensor(std::move(is_max)), Tensor(std::move(ties))};
  });
}
}  // namespace

// y = max of x over axes.  The gradient goes to the maximal elements, split evenly between
// ties (a subgradient symmetric between them), the tangent is the mean of theirs:
//   g_x = is_max * (g_y / ties) (g_y spread back);  dy = sum(is_max * dx) / ties
Tensor max(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  const Reduction r = plan_nonempty("max", x, axes, keepdim);
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> m = reduce_max(x.data<T>(), r.kept);
    m.reshape(r.out);
    return Tensor(std::move(m));
  });
  if (needs_grad(x)) {
    const auto kept = std::vector<std::int64_t>(r.kept.begin(), r.kept.end());
    // The rules read x's and y's values only (maximal): the weighting is a constant.
    record(
        "max", y, {x}, saved_bytes(x, y),
        [x, y, r, kept](const Tensor& g_y, Grads& g) {
          const Maximal w = maximal(x, y, r);
          g.add(0, w.is_max * (reshape(g_y, kept) / w.ties));
        },
        [x, y, r](const Tangents& t) {
          const Maximal w = maximal(x, y, r);
          const std::vector<std::int64_t> axes(r.axes.begin(), r.axes.end());
          const std::vector<std::int64_t> out(r.out.begin(), r.out.end());
          return reshape(sum(w.is_max * t[0], axes, true) / w.ties, out);
        });
  }
  return y;
}

}  // namespace tg

// Neural-network ops: softmax, log-softmax, embedding, dropout, and the fused cross-entropy
// and layer norm.  Fused ops carry the derivation of their backward in a comment.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

#include <xtensor/xmanipulation.hpp>
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

Shape without(const Shape& s, std::size_t axis) {
  Shape kept = s;
  kept[axis] = 1;
  return kept;
}

// v reduced along one axis, kept as size 1 so that it broadcasts against v.
template <class T>
Array<T> max_along(const Array<T>& v, std::size_t axis) {
  return reduce_max(v, without(v.shape(), axis));
}

template <class T>
Array<T> sum_along(const Array<T>& v, std::size_t axis) {
  return reduce_sum(v, without(v.shape(), axis));
}

// The same with ops, for the rules (sum_to sums over the axes where the target shape has 1).
Tensor sum_along(const Tensor& v, std::size_t axis) { return sum_to(v, without(v.shape(), axis)); }

// The checks of softmax_backward and log_softmax_backward (v and y of one shape and dtype) and
// the axis they run along.
std::size_t backward_axis(const char* op, const Tensor& v, const Tensor& y, std::int64_t axis) {
  check_same_dtype(op, v, y);
  if (v.shape() != y.shape())
    fail(op,
         "v and y must have one shape: " + shape_str(v.shape()) + " and " + shape_str(y.shape()));
  return normalize_axis(op, axis, y.dim());
}

}  // namespace

// ---- softmax and log-softmax: each backward an op, with rules of its own ------------------

// y_i = e^(x_i - m) / sum_j e^(x_j - m), m = max_j x_j (subtracting m changes nothing but
// keeps e^ from overflowing).  The Jacobian diag(y) - y y^T is symmetric, so one op serves both:
//   g_x = softmax_backward(g_y, y) = y (g_y - sum(g_y y));  dy = softmax_backward(dx, y)
Tensor softmax(const Tensor& x, std::int64_t axis) {
  check_defined("softmax", x);
  const std::size_t ax = normalize_axis("softmax", axis, x.dim());
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    const Array<T>& v = x.data<T>();
    Array<T> e = xt::exp(v - max_along(v, ax));
    e /= sum_along(e, ax);
    return Tensor(std::move(e));
  });
  if (needs_grad(x))
    record(
        "softmax", y, {x}, saved_bytes(y),
        [y, axis](const Tensor& g_y, Grads& g) { g.add(0, softmax_backward(g_y, y, axis)); },
        [y, axis](const Tangents& t) { return softmax_backward(t[0], y, axis); });
  return y;
}

// out = y (v - s), s = sum(v y): linear in v, with the symmetric Jacobian above, so
//   g_v = softmax_backward(g, y),  g_y = g (v - s) - v sum(g y);
//   d(out) = softmax_backward(dv, y) + dy (v - s) - y sum(v dy)
Tensor softmax_backward(const Tensor& v, const Tensor& y, std::int64_t axis) {
  const std::size_t ax = backward_axis("softmax_backward", v, y, axis);
  Tensor out = dispatch(y.dtype(), [&]<class T>() {
    const Array<T>& yv = y.data<T>();
    Array<T> vy = v.data<T>() * yv;
    return Tensor(Array<T>(vy - yv * sum_along(vy, ax)));
  });
  if (needs_grad(v, y))
    record(
        "softmax_backward", out, {v, y}, saved_bytes(v, y),
        [v, y, axis, ax](const Tensor& g_out, Grads& g) {
          if (g.wanted(0)) g.add(0, softmax_backward(g_out, y, axis));
          if (g.wanted(1))
            g.add(1, g_out * (v - sum_along(v * y, ax)) - v * sum_along(g_out * y, ax));
        },
        [v, y, axis, ax](const Tangents& t) {
          if (!t.has(1)) return softmax_backward(t[0], y, axis);
          const Tensor along_y = t[1] * (v - sum_along(v * y, ax)) - y * sum_along(v * t[1], ax);
          return t.has(0) ? softmax_backward(t[0], y, axis) + along_y : along_y;
        });
  return out;
}

// y_i = x_i - m - log sum_j e^(x_j - m).  With p = e^y (the softmax), the Jacobian is
// I - 1 p^T:  g_x = log_softmax_backward(g_y, y) = g_y - p sum(g_y);  dy = dx - sum(p dx)
Tensor log_softmax(const Tensor& x, std::int64_t axis) {
  check_defined("log_softmax", x);
  const std::size_t ax = normalize_axis("log_softmax", axis, x.dim());
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    const Array<T>& v = x.data<T>();
    Array<T> shifted = v - max_along(v, ax);
    Array<T> lse = xt::log(sum_along(Array<T>(xt::exp(shifted)), ax));
    return Tensor(Array<T>(shifted - lse));
  });
  if (needs_grad(x))
    record(
        "log_softmax", y, {x}, saved_bytes(y),
        [y, axis](const Tensor& g_y, Grads& g) { g.add(0, log_softmax_backward(g_y, y, axis)); },
        [y, ax](const Tangents& t) { return t[0] - sum_along(exp(y) * t[0], ax); });
  return y;
}

// out = v - p s, p = e^y, s = sum(v): linear in v, with the adjoint I - p 1^T, so
//   g_v = g - sum(g p),  g_y = -g p s;  d(out) = log_softmax_backward(dv, y) - p dy s
Tensor log_softmax_backward(const Tensor& v, const Tensor& y, std::int64_t axis) {
  const std::size_t ax = backward_axis("log_softmax_backward", v, y, axis);
  Tensor out = dispatch(y.dtype(), [&]<class T>() {
    const Array<T>& vv = v.data<T>();
    return Tensor(Array<T>(vv - xt::exp(y.data<T>()) * sum_along(vv, ax)));
  });
  if (needs_grad(v, y))
    record(
        "log_softmax_backward", out, {v, y}, saved_bytes(v, y),
        [v, y, ax](const Tensor& g_out, Grads& g) {
          const Tensor p = exp(y);
          if (g.wanted(0)) g.add(0, g_out - sum_along(g_out * p, ax));
          if (g.wanted(1)) g.add(1, -g_out * p * sum_along(v, ax));
        },
        [v, y, axis, ax](const Tangents& t) {
          if (!t.has(1)) return log_softmax_backward(t[0], y, axis);
          const Tensor along_y = -exp(y) * t[1] * sum_along(v, ax);
          return t.has(0) ? log_softmax_backward(t[0], y, axis) + along_y : along_y;
        });
  return out;
}

// ---- embeddings: a gather, whose adjoint is a scatter-add (each an op of the other's rules) ---

namespace {

// Every id must pick a row of a table of V rows; the error names the op, the id and where it is.
void check_ids(const char* op, const Ids& ids, std::size_t V) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int64_t id = ids.data()[i];
    if (id < 0 || static_cast<std::size_t>(id) >= V)
      fail(op, "token id " + std::to_string(id) + " at flat position " + std::to_string(i) +
                   " of ids " + shape_str(ids.shape()) + " is out of range for a table of " +
                   std::to_string(V) + " rows (valid 0 to " + std::to_string(V) + " - 1)");
  }
}

// g must be (..., C) for the leading shape (...) of the ids.
void check_rows(const char* op, const Tensor& g, const Shape& leading, const Ids& ids) {
  check_defined(op, g);
  const Shape& s = g.shape();
  if (s.size() != leading.size() + 1 || !std::equal(leading.begin(), leading.end(), s.begin()))
    fail(op, "g must be " + shape_str(leading) + " followed by C, for ids " +
                 shape_str(Shape(ids.shape().begin(), ids.shape().end())) + "; got g " +
                 shape_str(s));
}

// w[ids] with the rows at padding positions zero: the adjoint of embedding_backward, and the
// tangent of embedding (its padding row is a constant).
Tensor gather_unpadded(const Tensor& w, const Ids& ids, std::int64_t padding_id) {
  Tensor rows = embedding(w, ids, padding_id);
  if (std::find(ids.begin(), ids.end(), padding_id) == ids.end()) return rows;
  const Mask at_padding = xt::expand_dims(xt::equal(ids, padding_id), ids.dimension());  // (..., 1)
  return masked_fill(rows, at_padding, 0.0);
}

}  // namespace

// weight: (V, C), ids: (...) -> (..., C): row ids[i] of the table for each i.  The padding row
// is a constant (no gradient, no tangent); with P = (ids != padding_id):
//   g_weight = embedding_backward(g_y, ids);  dy = P ? d_weight[ids] : 0
Tensor embedding(const Tensor& weight, const Ids& ids, std::int64_t padding_id) {
  check_defined("embedding", weight);
  if (weight.dim() != 2)
    fail("embedding", "the table must be (V, C), got " + shape_str(weight.shape()));
  const std::size_t V = weight.shape()[0], C = weight.shape()[1];
  check_ids("embedding", ids, V);
  Shape out(ids.shape().begin(), ids.shape().end());
  out.push_back(C);
  Tensor y = dispatch(weight.dtype(), [&]<class T>() {
    Array<T> r = Array<T>::from_shape(out);
    const T* w = weight.data<T>().data();
    for (std::size_t i = 0; i < ids.size(); ++i)
      std::copy_n(w + ids.data()[i] * C, C, r.data() + i * C);
    return Tensor(std::move(r));
  });
  if (needs_grad(weight)) {
    auto saved_ids = std::make_shared<const Ids>(ids);
    record(
        "embedding", y, {weight}, ids.size() * sizeof(std::int64_t),
        [saved_ids, padding_id, V](const Tensor& g_y, Grads& g) {
          g.add(0, embedding_backward(g_y, *saved_ids, V, padding_id));
        },
        [saved_ids, padding_id](const Tangents& t) {
          return gather_unpadded(t[0], *saved_ids, padding_id);
        });
  }
  return y;
}

// out[v] = sum of g[i] over ids[i] = v != padding_id, a scatter-add; linear in g, with the
// gather as its adjoint:  g_g = P ? g_out[ids] : 0;  d(out) = embedding_backward(dg, ids)
Tensor embedding_backward(const Tensor& g, const Ids& ids, std::size_t V, std::int64_t padding_id) {
  check_rows("embedding_backward", g, Shape(ids.shape().begin(), ids.shape().end()), ids);
  check_ids("embedding_backward", ids, V);
  const std::size_t C = g.shape().back();
  Tensor out = dispatch(g.dtype(), [&]<class T>() {
    const T* gv = g.data<T>().data();
    Array<T> g_w = xt::zeros<T>({V, C});
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::int64_t id = ids.data()[i];
      if (id == padding_id) continue;
      T* row = g_w.data() + id * C;
      const T* gi = gv + i * C;
      for (std::size_t c = 0; c < C; ++c) row[c] += gi[c];
    }
    return Tensor(std::move(g_w));
  });
  if (needs_grad(g)) {
    auto saved_ids = std::make_shared<const Ids>(ids);
    record(
        "embedding_backward", out, {g}, ids.size() * sizeof(std::int64_t),
        [saved_ids, padding_id](const Tensor& g_out, Grads& grads) {
          grads.add(0, gather_unpadded(g_out, *saved_ids, padding_id));
        },
        [saved_ids, padding_id, V](const Tangents& t) {
          return embedding_backward(t[0], *saved_ids, V, padding_id);
        });
  }
  return out;
}

namespace {

// How embedding_bags reads its ids, shared by the op and its backward: the K slots of each bag
// cut into groups, and scale[bag * G + group] = 1 / (the number of ids in the group), 0 for an
// empty group.
struct Bags {
  Ids ids;
  std::vector<std::size_t> groups;
  std::size_t V = 0, K = 0, count = 0;  // table rows, slots per bag, bags
  std::vector<double> scale;
  std::size_t saved_bytes() const {
    return ids.size() * sizeof(std::int64_t) + scale.size() * sizeof(double);
  }
};

std::shared_ptr<const Bags> plan_bags(const char* op, const Ids& ids,
                                      const std::vector<std::size_t>& groups, std::size_t V) {
  if (ids.dimension() < 1) fail(op, "ids must be (..., K), got a scalar");
  auto bags = std::make_shared<Bags>();
  bags->V = V;
  bags->K = ids.shape()[ids.dimension() - 1];
  std::size_t slots = 0;
  for (std::size_t g : groups) {
    if (g == 0) fail(op, "a group of 0 slots");
    slots += g;
  }
  if (slots != bags->K)
    fail(op, "ids have " + std::to_string(bags->K) + " slots per bag, the groups " +
                 std::to_string(slots));
  check_ids(op, ids, V);
  bags->ids = ids;
  bags->groups = groups;
  bags->count = bags->K ? ids.size() / bags->K : 0;
  bags->scale.assign(bags->count * groups.size(), 0.0);
  for (std::size_t b = 0; b < bags->count; ++b)
    for (std::size_t gi = 0, k = 0; gi < groups.size(); ++gi) {
      std::size_t n = 0;
      for (std::size_t end = k + groups[gi]; k < end; ++k) n += ids.data()[b * bags->K + k] != 0;
      bags->scale[b * groups.size() + gi] = n ? 1.0 / n : 0.0;
    }
  return bags;
}

// For each slot of bag b that holds an id (not 0), in order: visit(id, the slot's scale as T).
template <class T, class F>
void for_each_slot(const Bags& bags, std::size_t b, F visit) {
  for (std::size_t gi = 0, k = 0; gi < bags.groups.size(); ++gi) {
    const T s = static_cast<T>(bags.scale[b * bags.groups.size() + gi]);
    for (std::size_t end = k + bags.groups[gi]; k < end; ++k) {
      const std::int64_t id = bags.ids.data()[b * bags.K + k];
      if (id != 0) visit(id, s);
    }
  }
}

// dst += s src over a row of C: a slot's share, gathered into its bag's row or scattered back
// into its id's.
template <class T>
void add_scaled(T* dst, const T* src, T s, std::size_t C) {
  for (std::size_t c = 0; c < C; ++c) dst[c] += s * src[c];
}

// w: (V, C) -> (..., C):  y[b] = sum over slots of scale w[id], a gather.
template <class T>
Array<T> gathered(const Array<T>& weight, const Bags& bags) {
  const std::size_t C = weight.shape()[1];
  Shape out(bags.ids.shape().begin(), bags.ids.shape().end() - 1);
  out.push_back(C);
  Array<T> r = xt::zeros<T>(out);
  const T* w = weight.data();
  parallel_range(bags.count, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t b = lo; b < hi; ++b) {
      T* row = r.data() + b * C;
      for_each_slot<T>(bags, b, [&](std::int64_t id, T s) { add_scaled(row, w + id * C, s, C); });
    }
  });
  return r;
}

// g: (..., C) -> (V, C):  the adjoint scatter-add, out[id] += scale g[b].
template <class T>
Array<T> scattered(const Array<T>& g, const Bags& bags) {
  const std::size_t C = g.shape().back();
  Array<T> g_w = xt::zeros<T>({bags.V, C});
  for (std::size_t b = 0; b < bags.count; ++b) {
    const T* gb = g.data() + b * C;
    for_each_slot<T>(bags, b,
                     [&](std::int64_t id, T s) { add_scaled(g_w.data() + id * C, gb, s, C); });
  }
  return g_w;
}

// The gather (embedding_bags) or the scatter (embedding_bags_backward), with their rules: both
// are linear and adjoint to each other, so each one's gradient is the other applied to g, and
// its tangent is itself applied to the input's tangent.
Tensor bags_map(const Tensor& x, const std::shared_ptr<const Bags>& bags, bool gather) {
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    return Tensor(gather ? gathered(x.data<T>(), *bags) : scattered(x.data<T>(), *bags));
  });
  if (needs_grad(x))
    record_linear(
        gather ? "embedding_bags" : "embedding_bags_backward", y, x, bags->saved_bytes(),
        [bags, gather](const Tensor& g_y) { return bags_map(g_y, bags, !gather); },
        [bags, gather](const Tensor& dx) { return bags_map(dx, bags, gather); });
  return y;
}

}  // namespace

// weight: (V, C), ids: (..., K) -> (..., C); linear in weight (rules at bags_map).
Tensor embedding_bags(const Tensor& weight, const Ids& ids,
                      const std::vector<std::size_t>& groups) {
  check_defined("embedding_bags", weight);
  if (weight.dim() != 2)
    fail("embedding_bags", "the table must be (V, C), got " + shape_str(weight.shape()));
  return bags_map(weight, plan_bags("embedding_bags", ids, groups, weight.shape()[0]),
                  /*gather=*/true);
}

// g: (..., C), ids: (..., K) -> (V, C) (rules at bags_map).
Tensor embedding_bags_backward(const Tensor& g, const Ids& ids,
                               const std::vector<std::size_t>& groups, std::size_t V) {
  auto bags = plan_bags("embedding_bags_backward", ids, groups, V);
  check_rows("embedding_bags_backward", g, Shape(ids.shape().begin(), ids.shape().end() - 1), ids);
  return bags_map(g, bags, /*gather=*/false);
}

// ---- dropout ------------------------------------------------------------------------------

namespace {

template <class T>
void dropout_mask_loop(const T* in, T* out, std::size_t n, std::uint64_t first, std::uint64_t seed,
                       std::uint64_t threshold, T keep) {
  for (std::size_t e = 0; e < n; ++e)
    out[e] = dropout_drops(seed, first + e, threshold) ? T(0) : in[e] * keep;
}

}  // namespace

TAPEGRAD_CPU_CLONES("arch=x86-64-v4", "avx2", "default")
void apply_dropout_mask(const float* in, float* out, std::size_t n, std::uint64_t first,
                        std::uint64_t seed, std::uint64_t threshold, float keep) {
  dropout_mask_loop(in, out, n, first, seed, threshold, keep);
}

void apply_dropout_mask(const double* in, double* out, std::size_t n, std::uint64_t first,
                        std::uint64_t seed, std::uint64_t threshold, double keep) {
  dropout_mask_loop(in, out, n, first, seed, threshold, keep);
}

namespace {

// A dropout mask: mask_i = keep or 0, a function of one draw and the element index i, never
// stored (the rules regenerate it).
struct DropMask {
  std::uint64_t seed = 0, threshold = 0;
  double keep = 0;
  // Where x's rows stand in the tensor whose elements the mask indexes (null: x itself).
  std::shared_ptr<const std::vector<std::size_t>> at;
};

template <class T>
Array<T> apply_dropout(const Array<T>& in, const DropMask& m) {
  Array<T> out = Array<T>::from_shape(in.shape());
  const auto keep = static_cast<T>(m.keep);
  if (!m.at) {
    parallel_range(in.size(), [&](std::size_t b, std::size_t e) {
      apply_dropout_mask(in.data() + b, out.data() + b, e - b, b, m.seed, m.threshold, keep);
    });
    return out;
  }
  const std::size_t R = m.at->size(), C = R ? in.size() / R : 0;
  parallel_rows(R, C, [&](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r)
      apply_dropout_mask(in.data() + r * C, out.data() + r * C, C, (*m.at)[r] * C, m.seed,
                         m.threshold, keep);
  });
  return out;
}

// y = x mask;  the mask is diagonal, so the op is its own rule:  g_x = g_y mask,  dy = dx mask
Tensor masked_by(const Tensor& x, const DropMask& m) {
  Tensor y = dispatch(x.dtype(), [&]<class T>() { return Tensor(apply_dropout(x.data<T>(), m)); });
  if (needs_grad(x))
    record(
        "dropout", y, {x}, 0, [m](const Tensor& g_y, Grads& g) { g.add(0, masked_by(g_y, m)); },
        [m](const Tangents& t) { return masked_by(t[0], m); });
  return y;
}

}  // namespace

// y = x * mask, mask_i = 1 / (1 - p) with probability 1 - p, else 0 (rules at masked_by).
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
  return dropout(x, p, gen, training, nullptr);
}

Tensor dropout(const Tensor& x, double p, Generator& gen, bool training,
               const std::shared_ptr<const std::vector<std::size_t>>& at) {
  check_defined("dropout", x);
  if (!(p >= 0.0 && p <= 1.0))
    fail("dropout", "the drop probability must be in [0, 1], got " + std::to_string(p));
  if (at && (x.dim() != 2 || x.shape()[0] != at->size()))
    fail("dropout", "x must be (R, C) with R = " + std::to_string(at->size()) +
                        ", the rows it stands at; got x " + shape_str(x.shape()));
  if (!training || p == 0.0) return x;
  const std::uint64_t seed = gen.next_u64();  // one draw per call: the generator's state moves on
  const auto threshold =
      static_cast<std::uint64_t>(p * 4294967296.0);  // p = 1: every element drops
  return masked_by(
      x, {.seed = seed, .threshold = threshold, .keep = p < 1.0 ? 1.0 / (1.0 - p) : 0.0, .at = at});
}

namespace {

// p[c] = exp(x[c] - m) for one row; returns (sum of p, sum of x).  float32 uses exp_poly in a
// loop compiled for AVX-512, AVX2 and x86-64 (expf one element at a time was most of the
// cross-entropy of a translation step); float64 keeps std::exp.
// The sums run in 16 independent lanes (added up at the end, always in the same order), which
// the compiler can keep in vector registers without reordering any one sum.
TAPEGRAD_CPU_CLONES("avx512f", "avx2", "default")
std::pair<double, double> exp_shifted_row_f32(const float* x, float* p, std::size_t C, float m) {
  for (std::size_t c = 0; c < C; ++c) p[c] = exp_poly(x[c] - m);
  constexpr std::size_t L = 16;
  float z[L] = {}, sx[L] = {};
  std::size_t c = 0;
  for (; c + L <= C; c += L)
    for (std::size_t l = 0; l < L; ++l) {
      z[l] += p[c + l];
      sx[l] += x[c + l];
    }
  double z_total = 0, sum_x = 0;
  for (; c < C; ++c) z_total += p[c], sum_x += x[c];
  for (std::size_t l = 0; l < L; ++l) z_total += z[l], sum_x += sx[l];
  return {z_total, sum_x};
}

std::pair<double, double> exp_shifted_row(const float* x, float* p, std::size_t C, float m) {
  return exp_shifted_row_f32(x, p, C, m);
}

std::pair<double, double> exp_shifted_row(const double* x, double* p, std::size_t C, double m) {
  double z = 0, sum_x = 0;
  for (std::size_t c = 0; c < C; ++c) {
    p[c] = std::exp(x[c] - m);
    z += p[c];
    sum_x += x[c];
  }
  return {z, sum_x};
}

}  // namespace

// ---- cross-entropy: the plain loop first (reference.hpp), then the fused op ---------------------

namespace reference {

namespace {

// log softmax of row r of z
std::vector<double> log_softmax_row(const Array<double>& z, std::size_t r) {
  const std::size_t C = z.shape()[1];
  double mx = z(r, 0), sum = 0;
  for (std::size_t c = 1; c < C; ++c) mx = std::max(mx, z(r, c));
  for (std::size_t c = 0; c < C; ++c) sum += std::exp(z(r, c) - mx);
  std::vector<double> lp(C);
  for (std::size_t c = 0; c < C; ++c) lp[c] = z(r, c) - mx - std::log(sum);
  return lp;
}

// q = (1 - e) one-hot(t) + e / C
double target_share(std::size_t c, std::int64_t t, std::size_t C, double e) {
  return (static_cast<std::int64_t>(c) == t ? 1 - e : 0) + e / C;
}

std::size_t counted_rows(const std::vector<std::int64_t>& targets, std::int64_t ignore) {
  return std::count_if(targets.begin(), targets.end(), [&](std::int64_t t) { return t != ignore; });
}

}  // namespace

double cross_entropy(const Array<double>& z, const std::vector<std::int64_t>& targets,
                     const CrossEntropyOptions& o) {
  const std::size_t C = z.shape()[1], rows = counted_rows(targets, o.ignore_index);
  double total = 0;
  for (std::size_t r = 0; r < targets.size(); ++r) {
    if (targets[r] == o.ignore_index) continue;
    const auto lp = log_softmax_row(z, r);
    for (std::size_t c = 0; c < C; ++c)
      total -= target_share(c, targets[r], C, o.label_smoothing) * lp[c];
  }
  return rows ? total / rows : 0.0;
}

Array<double> cross_entropy_backward(const Array<double>& z,
                                     const std::vector<std::int64_t>& targets,
                                     const CrossEntropyOptions& o) {
  const std::size_t C = z.shape()[1], rows = counted_rows(targets, o.ignore_index);
  Array<double> g = xt::zeros<double>(z.shape());
  for (std::size_t r = 0; r < targets.size(); ++r) {
    if (targets[r] == o.ignore_index) continue;
    const auto lp = log_softmax_row(z, r);
    for (std::size_t c = 0; c < C; ++c)
      g(r, c) = (std::exp(lp[c]) - target_share(c, targets[r], C, o.label_smoothing)) / rows;
  }
  return g;
}

}  // namespace reference

// For each row r with target t (not ignored), with p = softmax(logits_r) and smoothing e:
//   q = (1 - e) onehot(t) + e / C,   loss_r = -sum_c q_c log p_c
//   loss = sum_r loss_r / n, n = the number of rows not ignored.
// Since sum_c q_c = 1, d loss_r / d logits_rc = p_c - q_c, so dL/dlogits = g (p - q) / n.
// The forward keeps p for the backward, which is an op of its own, cross_entropy_backward, whose
// rules differentiate again.
namespace {

// Checks logits (..., C), targets (...) and the options for `op`; returns n, the number of
// rows not ignored.
std::size_t counted_rows(const char* op, const Tensor& logits, const Ids& targets,
                         const CrossEntropyOptions& opt) {
  check_defined(op, logits);
  const Shape& s = logits.shape();
  if (s.empty() ||
      !std::equal(targets.shape().begin(), targets.shape().end(), s.begin(), s.end() - 1) ||
      targets.dimension() != s.size() - 1)
    fail(op, "logits (..., C) and targets (...) must agree: logits are " + shape_str(s) +
                 ", targets are " +
                 shape_str(Shape(targets.shape().begin(), targets.shape().end())));
  if (!(opt.label_smoothing >= 0.0 && opt.label_smoothing <= 1.0))
    fail(op, "label_smoothing must be in [0, 1], got " + std::to_string(opt.label_smoothing));
  const std::size_t C = s.back(), N = targets.size();
  if (C == 0) fail(op, "logits have 0 classes: " + shape_str(s));
  std::size_t n_valid = 0;
  for (std::size_t r = 0; r < N; ++r) {
    const std::int64_t t = targets.data()[r];
    if (t == opt.ignore_index) continue;
    if (t < 0 || static_cast<std::size_t>(t) >= C)
      fail(op, "target " + std::to_string(t) + " at flat position " + std::to_string(r) +
                   " is out of range for " + std::to_string(C) + " classes (and is not " +
                   "ignore_index " + std::to_string(opt.ignore_index) + ")");
    ++n_valid;
  }
  return n_valid;
}

// p = the softmax of each row of x (N, C); returns the loss summed over the rows not ignored.
template <class T>
double softmax_rows(const T* x, T* p, std::size_t N, std::size_t C, const Ids& targets,
                    const CrossEntropyOptions& opt) {
  const double e = opt.label_smoothing;
  // Rows in parallel chunks; each chunk's share of the loss is summed in chunk order.
  std::vector<double> partial(chunk_count(N, C), 0.0);
  parallel_chunks(N, C, [&](std::size_t k, std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r) {
      const T* xr = x + r * C;
      T* pr = p + r * C;
      T m = xr[0];
      for (std::size_t c = 1; c < C; ++c) m = std::max(m, xr[c]);
      const auto [z, sum_x] = exp_shifted_row(xr, pr, C, m);  // pr = exp(x - m)
      const double lse = m + std::log(z);
      const T inv_z = static_cast<T>(1.0 / z);
      for (std::size_t c = 0; c < C; ++c) pr[c] *= inv_z;
      const std::int64_t t = targets.data()[r];
      if (t == opt.ignore_index) continue;
      partial[k] -= (1 - e) * (xr[t] - lse) + e / C * (sum_x - C * lse);
    }
  });
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

// The gradient's kernel: out = scale (p - q) row by row, scale = g / n; 0 on ignored rows.
// out may be p's own memory (the gradient then takes p's place).
template <class T>
void cross_entropy_gradient_rows(const T* p, T* out, std::size_t N, std::size_t C, T scale,
                                 const Ids& targets, const CrossEntropyOptions& opt) {
  const T smooth = static_cast<T>(opt.label_smoothing / C);
  parallel_rows(N, C, [&](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r) {
      T* gr = out + r * C;
      const std::int64_t t = targets.data()[r];
      if (t == opt.ignore_index) {
        std::fill_n(gr, C, T(0));
        continue;
      }
      const T* pr = p + r * C;
      for (std::size_t c = 0; c < C; ++c) gr[c] = (pr[c] - smooth) * scale;
      gr[t] -= static_cast<T>(1 - opt.label_smoothing) * scale;
    }
  });
}

// The gradient as tensors: p = softmax(logits), the op, so that it differentiates again (the
// fused kernel computes the same values), and the constants q, the target
// distributions (..., C), and w = 1 / n on rows not ignored, 0 on ignored ones (..., 1).
// The gradient is g (p - q) w.
struct CrossEntropyTerms {
  Tensor p, q, w;
};

CrossEntropyTerms cross_entropy_terms(const Tensor& logits, const Ids& targets,
                                      const CrossEntropyOptions& opt, std::size_t n_valid) {
  const Shape& s = logits.shape();
  const std::size_t C = s.back(), N = targets.size();
  Shape rows = s;
  rows.back() = 1;
  CrossEntropyTerms k{softmax(logits, -1), Tensor(), Tensor()};
  dispatch(logits.dtype(), [&]<class T>() {
    Array<T> q = xt::zeros<T>(s), w = xt::zeros<T>(rows);
    for (std::size_t r = 0; r < N; ++r) {
      const std::int64_t t = targets.data()[r];
      if (t == opt.ignore_index) continue;
      w.data()[r] = static_cast<T>(1.0 / n_valid);
      std::fill_n(q.data() + r * C, C, static_cast<T>(opt.label_smoothing / C));
      q.data()[r * C + t] += static_cast<T>(1 - opt.label_smoothing);
    }
    k.q = Tensor(std::move(q));
    k.w = Tensor(std::move(w));
  });
  return k;
}

// The gradient's values by the fused kernel: g_y (p - q) w (cross_entropy_terms), of the
// logits' shape, from p (N, C), the softmax of the logits.  With `take` the gradient takes p's
// memory (p is left empty).
Tensor cross_entropy_gradient_values(const Tensor& g_y, const Shape& shape, const Ids& targets,
                                     const CrossEntropyOptions& opt, std::size_t n_valid,
                                     AnyArray& probs, bool take) {
  const std::size_t C = shape.back(), N = targets.size();
  return dispatch(g_y.dtype(), [&]<class T>() {
    Array<T>& p = std::get<Array<T>>(probs);
    Array<T> out = take ? std::move(p) : Array<T>::from_shape(shape);
    const T scale = n_valid > 0 ? g_y.data<T>()() / static_cast<T>(n_valid) : T(0);
    cross_entropy_gradient_rows(take ? out.data() : p.data(), out.data(), N, C, scale, targets,
                                opt);
    out.reshape(shape);
    return Tensor(std::move(out));
  });
}

// out = g (p - q) w (cross_entropy_terms), an op of (g, logits), linear in g:
//   g_g = sum(g_out (p - q) w),  g_logits = g w J g_out;  d(out) = dg (p - q) w + g w J dlogits
// The values come from the fused kernel, over the softmax p of the logits.
Tensor cross_entropy_gradient(const Tensor& g_y, const Tensor& logits,
                              const std::shared_ptr<const Ids>& targets,
                              const CrossEntropyOptions& opt, std::size_t n_valid,
                              AnyArray& probs) {
  Tensor g_x =
      cross_entropy_gradient_values(g_y, logits.shape(), *targets, opt, n_valid, probs, true);
  if (needs_grad(g_y, logits))
    record(
        "cross_entropy_backward", g_x, {g_y, logits}, saved_bytes(g_y, logits),
        [g_y, logits, targets, opt, n_valid](const Tensor& g_out, Grads& g) {
          const CrossEntropyTerms k = cross_entropy_terms(logits, *targets, opt, n_valid);
          if (g.wanted(0)) g.add(0, sum_to(g_out * (k.p - k.q) * k.w, g_y.shape()));
          if (g.wanted(1)) g.add(1, softmax_backward(g_out, k.p, -1) * k.w * g_y);
        },
        [g_y, logits, targets, opt, n_valid](const Tangents& t) {
          const CrossEntropyTerms k = cross_entropy_terms(logits, *targets, opt, n_valid);
          if (!t.has(1)) return t[0] * (k.p - k.q) * k.w;
          const Tensor along_logits = softmax_backward(t[1], k.p, -1) * k.w * g_y;
          return t.has(0) ? t[0] * (k.p - k.q) * k.w + along_logits : along_logits;
        });
  return g_x;
}

// What cross_entropy's rule keeps: p (N, C), the softmax its forward computed, from which the
// first-order gradient comes in one pass; and of the logits only their place in the graph
// (graph_link: their values can go after the forward), or the logits themselves while they
// carry a tangent, which a vjp run inside a jvp (tg::hvp) differentiates along.
struct CrossEntropySaved {
  std::shared_ptr<AnyArray> p;
  Tensor logits;          // the logits, or their stand-in
  bool stand_in = false;  // logits is a stand-in with no values
  Shape shape;            // the logits' (a stand-in has none)
  std::shared_ptr<const Ids> targets;
  CrossEntropyOptions opt;
  std::size_t n_valid = 0;
};

// log p, of the logits' shape: logits for the stand-in, since softmax(log p) = p (the softmax
// ignores each row's shift, log sum exp), to rounding.  p is floored at the smallest normal
// number so that an underflowed probability gives a finite log (its softmax weight stays ~0).
AnyArray log_probs(const CrossEntropySaved& s) {
  return std::visit(
      [&]<class T>(const Array<T>& p) {
        Array<T> lp = xt::log(xt::maximum(p, std::numeric_limits<T>::min()));
        lp.reshape(s.shape);
        return AnyArray(std::move(lp));
      },
      *s.p);
}

// cross_entropy's vjp.  First order (nothing records, no tangents): the fused kernel on p, in
// p's memory when this rule holds the last reference to it (the tape will not run it again).
// Otherwise the backward op, whose rules differentiate again, over the logits (or log p given
// to their stand-in), so that the ops it records connect to the logits' node.
Tensor cross_entropy_vjp(const Tensor& g_y, const CrossEntropySaved& s) {
  if (first_order(g_y, s.logits))
    return cross_entropy_gradient_values(g_y, s.shape, *s.targets, s.opt, s.n_valid, *s.p,
                                         s.p.use_count() == 1);
  const Tensor logits = s.stand_in ? detail::with_values(s.logits, log_probs(s)) : s.logits;
  return cross_entropy_backward(g_y, logits, *s.targets, s.opt);
}

}  // namespace

// y = -sum_r w_r sum_c q_rc log p_rc;  g_logits = cross_entropy_backward(g_y) = g_y (p - q) w;
// dy = sum(dlogits (p - q) w)
Tensor cross_entropy(const Tensor& logits, const Ids& targets, const CrossEntropyOptions& opt) {
  const std::size_t n_valid = counted_rows("cross_entropy", logits, targets, opt);
  const std::size_t C = logits.shape().back(), N = targets.size();
  auto probs = std::make_shared<AnyArray>();
  Tensor loss = dispatch(logits.dtype(), [&]<class T>() {
    Array<T> p = Array<T>::from_shape({N, C});
    const double total = softmax_rows(logits.data<T>().data(), p.data(), N, C, targets, opt);
    *probs = std::move(p);
    return scalar(n_valid > 0 ? total / n_valid : 0.0, logits.dtype());
  });
  if (!needs_grad(logits)) return loss;
  const bool tangent = detail::forward_mode_on() && detail::has_tangent(logits);
  CrossEntropySaved saved{.p = probs,
                          .logits = tangent ? logits : detail::graph_link(logits),
                          .shape = logits.shape(),
                          .targets = std::make_shared<const Ids>(targets),
                          .opt = opt,
                          .n_valid = n_valid};
  saved.stand_in = saved.logits.impl() != logits.impl();
  record(
      "cross_entropy", loss, {logits}, saved_bytes(logits) * (tangent ? 2 : 1),  // p (+ logits)
      [saved](const Tensor& g_y, Grads& g) { g.add(0, cross_entropy_vjp(g_y, saved)); },
      [logits, targets = saved.targets, opt](const Tangents& t) {
        const Tensor slope =
            cross_entropy_backward(scalar(1.0, logits.dtype()), logits, *targets, opt);
        return sum_to(t[0] * slope, Shape{});
      });
  return loss;
}

Tensor cross_entropy_backward(const Tensor& g_y, const Tensor& logits, const Ids& targets,
                              const CrossEntropyOptions& opt) {
  const char* op = "cross_entropy_backward";
  const std::size_t n_valid = counted_rows(op, logits, targets, opt);
  check_same_dtype(op, g_y, logits);
  if (g_y.dim() != 0)
    fail(op, "g_y is the gradient of the scalar loss, so it must be a scalar (), got " +
                 shape_str(g_y.shape()));
  const std::size_t C = logits.shape().back(), N = targets.size();
  AnyArray probs = dispatch(logits.dtype(), [&]<class T>() {
    Array<T> p = Array<T>::from_shape({N, C});
    softmax_rows(logits.data<T>().data(), p.data(), N, C, targets, opt);
    return AnyArray(std::move(p));
  });
  return cross_entropy_gradient(g_y, logits, std::make_shared<const Ids>(targets), opt, n_valid,
                                probs);
}

// y = mean over the n elements of max(x, 0) - x t + log(1 + e^-|x|) (x the logits, t the
// targets);  g_x = g_y (sigmoid(x) - t) / n,  g_t = -g_y x / n;
// dy = sum((sigmoid(x) - t) dx - x dt) / n
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets) {
  const char* op = "binary_cross_entropy_with_logits";
  check_defined(op, logits);
  check_defined(op, targets);
  if (logits.shape() != targets.shape() || logits.dtype() != targets.dtype())
    fail(op, "logits and targets must have one shape and dtype: logits are " +
                 shape_str(logits.shape()) + " " + dtype_name(logits.dtype()) + ", targets are " +
                 shape_str(targets.shape()) + " " + dtype_name(targets.dtype()));
  if (logits.numel() == 0) fail(op, "the inputs are empty: " + shape_str(logits.shape()));
  const std::size_t n = logits.numel();
  Tensor loss = dispatch(logits.dtype(), [&]<class T>() {
    const T* x = logits.data<T>().data();
    const T* t = targets.data<T>().data();
    double total = 0;
    for (std::size_t i = 0; i < n; ++i)
      total += std::max<double>(x[i], 0) - double(x[i]) * t[i] +
               std::log1p(std::exp(-std::abs(double(x[i]))));
    return scalar(total / n, logits.dtype());
  });
  if (needs_grad(logits, targets))
    record(
        "binary_cross_entropy_with_logits", loss, {logits, targets}, saved_bytes(logits, targets),
        [logits, targets, n](const Tensor& g_y, Grads& g) {
          // g_y / n divides (g_y * (1 / n) would round differently from the kernel it replaced)
          const Tensor scale = g_y / scalar(static_cast<double>(n), g_y.dtype());
          if (g.wanted(0)) g.add(0, (sigmoid(logits) - targets) * scale);
          if (g.wanted(1)) g.add(1, -logits * scale);
        },
        [logits, targets, n](const Tangents& t) {
          Tensor d;
          if (t.has(0)) d = (sigmoid(logits) - targets) * t[0];
          if (t.has(1)) d = t.has(0) ? d - logits * t[1] : -logits * t[1];
          return sum_to(d, Shape{}) / static_cast<double>(n);
        });
  return loss;
}

// ---- layer norm: the plain loop first (reference.hpp), then the fused op ------------------------

namespace reference {

Array<double> layer_norm(const Array<double>& x, const Array<double>& gamma,
                         const Array<double>& beta, double eps) {
  const std::size_t N = x.shape()[0], C = x.shape()[1];
  Array<double> y = Array<double>::from_shape({N, C});
  for (std::size_t r = 0; r < N; ++r) {
    double mean = 0, var = 0;
    for (std::size_t c = 0; c < C; ++c) mean += x(r, c) / C;
    for (std::size_t c = 0; c < C; ++c) var += (x(r, c) - mean) * (x(r, c) - mean) / C;
    for (std::size_t c = 0; c < C; ++c)
      y(r, c) = (x(r, c) - mean) / std::sqrt(var + eps) * gamma(c) + beta(c);
  }
  return y;
}

LayerNormGrads layer_norm_backward(const Array<double>& x, const Array<double>& gamma, double eps,
                                   const Array<double>& g_y) {
  const std::size_t N = x.shape()[0], C = x.shape()[1];
  LayerNormGrads g{xt::zeros<double>({N, C}), xt::zeros<double>({C}), xt::zeros<double>({C})};
  for (std::size_t r = 0; r < N; ++r) {
    double mean = 0, var = 0;
    for (std::size_t c = 0; c < C; ++c) mean += x(r, c) / C;
    for (std::size_t c = 0; c < C; ++c) var += (x(r, c) - mean) * (x(r, c) - mean) / C;
    const double rstd = 1 / std::sqrt(var + eps);
    // xhat_c = (x_c - mean) rstd;  y_c = gamma_c xhat_c + beta_c.  With gh_c = g_c gamma_c,
    // dL/dx_j = rstd (gh_j - mean_c gh_c - xhat_j mean_c(gh_c xhat_c)).
    double mean_gh = 0, mean_gh_xhat = 0;
    for (std::size_t c = 0; c < C; ++c) {
      const double xhat = (x(r, c) - mean) * rstd, gh = g_y(r, c) * gamma(c);
      mean_gh += gh / C;
      mean_gh_xhat += gh * xhat / C;
      g.gamma(c) += g_y(r, c) * xhat;
      g.beta(c) += g_y(r, c);
    }
    for (std::size_t c = 0; c < C; ++c) {
      const double xhat = (x(r, c) - mean) * rstd;
      g.x(r, c) = rstd * (g_y(r, c) * gamma(c) - mean_gh - xhat * mean_gh_xhat);
    }
  }
  return g;
}

}  // namespace reference

// For each row x (C values): mu = mean(x), rstd = 1 / sqrt(var(x) + eps),
//   xhat = (x - mu) rstd,  y = gamma xhat + beta.
// Backward, with gh = g gamma (the gradient of xhat):
//   dL/dx = rstd (gh - mean(gh) - xhat mean(gh xhat)),
//   dL/dgamma = sum over rows of g xhat,  dL/dbeta = sum over rows of g.
// (mean(gh) comes through mu, mean(gh xhat) through rstd.)  The fused backward is an op of its
// own (layer_norm_backward), whose rules differentiate again.
namespace {

// Rows go kRowBlock at a time.  Each row's sums still run over its columns in order, in double,
// as a loop over one row would (the same bits), but the rows' chains of additions are
// independent and the CPU overlaps them; one row at a time, every add waits for the one before.
constexpr std::size_t kRowBlock = 4;

// R rows of x (R, C) -> out (R, C) (when not null), xhat (R, C) and rstd (R).
template <std::size_t R, class T>
void layer_norm_rows(const T* x, const T* gamma, const T* beta, std::size_t C, double eps, T* out,
                     T* xhat, T* rstd) {
  double mu[R] = {}, var[R] = {};
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t r = 0; r < R; ++r) mu[r] += x[r * C + c];
  for (std::size_t r = 0; r < R; ++r) mu[r] /= C;
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t r = 0; r < R; ++r) var[r] += (x[r * C + c] - mu[r]) * (x[r * C + c] - mu[r]);
  for (std::size_t r = 0; r < R; ++r) {
    const T rs = static_cast<T>(1.0 / std::sqrt(var[r] / C + eps));
    rstd[r] = rs;
    for (std::size_t c = 0; c < C; ++c) {
      const T h = static_cast<T>((x[r * C + c] - mu[r]) * rs);
      xhat[r * C + c] = h;
      if (out != nullptr) out[r * C + c] = gamma[c] * h + beta[c];
    }
  }
}

// Backward of R rows from g_y (R, C): g_x (R, C); adds the rows' terms of dL/dgamma and dL/dbeta
// to pg and pb (C), row after row.
template <std::size_t R, class T>
void layer_norm_backward_rows(const T* g_y, const T* xhat, const T* rstd, const T* gamma,
                              std::size_t C, T* g_x, T* pg, T* pb) {
  double mean_gh[R] = {}, mean_gh_xhat[R] = {};
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t r = 0; r < R; ++r) {
      const T g = g_y[r * C + c], h = xhat[r * C + c];
      const double gh = g * gamma[c];
      mean_gh[r] += gh;
      mean_gh_xhat[r] += gh * h;
      pg[c] += g * h;
      pb[c] += g;
    }
  for (std::size_t r = 0; r < R; ++r) {
    mean_gh[r] /= C;
    mean_gh_xhat[r] /= C;
    for (std::size_t c = 0; c < C; ++c)
      g_x[r * C + c] = static_cast<T>(
          rstd[r] * (g_y[r * C + c] * gamma[c] - mean_gh[r] - xhat[r * C + c] * mean_gh_xhat[r]));
  }
}

// body<R>(first row) over rows [begin, end): blocks of kRowBlock, then single rows.
template <class Body>
void for_row_blocks(std::size_t begin, std::size_t end, const Body& body) {
  std::size_t r = begin;
  for (; r + kRowBlock <= end; r += kRowBlock) body.template operator()<kRowBlock>(r);
  for (; r < end; ++r) body.template operator()<1>(r);
}

// What the fused backward reads, kept by the forward: xhat (N, C) and rstd (N).  The rules that
// need x's values (those of a second derivative) get xhat / rstd instead: x less its row's mean,
// which layer norm cannot tell from x (it gives the same xhat and rstd for x + c, c constant
// along a row), so it has every derivative x has.
struct LayerNormSaved {
  AnyArray xhat, rstd;
};

// x (..., C), gamma and beta (C) of x's dtype, for `op` (beta undefined: not checked).
void check_layer_norm(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta) {
  check_defined(op, x);
  check_defined(op, gamma);
  const Shape& s = x.shape();
  if (s.empty()) fail(op, "x must have at least 1 dim, got a scalar");
  const std::size_t C = s.back();
  if (!beta.defined()) {
    if (gamma.shape() != Shape{C})
      fail(op, "gamma must be (C) = (" + std::to_string(C) + ") for x " + shape_str(s) +
                   ", got gamma " + shape_str(gamma.shape()));
    if (gamma.dtype() != x.dtype()) fail(op, "x and gamma must have one dtype");
    return;
  }
  if (gamma.shape() != Shape{C} || beta.shape() != Shape{C})
    fail(op, "gamma and beta must be (C) = (" + std::to_string(C) + ") for x " + shape_str(s) +
                 ", got gamma " + shape_str(gamma.shape()) + ", beta " + shape_str(beta.shape()));
  if (gamma.dtype() != x.dtype() || beta.dtype() != x.dtype())
    fail(op, "x, gamma and beta must have one dtype");
}

// The fused forward: y (or, with `statistics_only`, nothing), with xhat and rstd kept in
// `saved`.
Tensor layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                          LayerNormSaved& saved, bool statistics_only = false) {
  const Shape& s = x.shape();
  const std::size_t C = s.back(), N = x.numel() / std::max<std::size_t>(C, 1);
  return dispatch(x.dtype(), [&]<class T>() {
    const T* xv = x.data<T>().data();
    const T* gv = gamma.data<T>().data();
    const T* bv = beta.defined() ? beta.data<T>().data() : nullptr;
    Array<T> out = statistics_only ? Array<T>() : Array<T>::from_shape(s);
    Array<T> xh = Array<T>::from_shape(s), rs = Array<T>::from_shape({N});
    parallel_rows(N, C, [&](std::size_t begin, std::size_t end) {
      for_row_blocks(begin, end, [&]<std::size_t R>(std::size_t r) {
        layer_norm_rows<R>(xv + r * C, gv, bv, C, eps,
                           statistics_only ? nullptr : out.data() + r * C, xh.data() + r * C,
                           rs.data() + r);
      });
    });
    saved.xhat = std::move(xh);
    saved.rstd = std::move(rs);
    return statistics_only ? Tensor() : Tensor(std::move(out));
  });
}

// The fused backward from the saved xhat and rstd: the three gradients, not yet recorded.
LayerNormBackward layer_norm_backward_kernel(const Tensor& g_y, const Tensor& gamma,
                                             const LayerNormSaved& saved) {
  const std::size_t C = gamma.numel(), N = g_y.numel() / std::max<std::size_t>(C, 1);
  return dispatch(g_y.dtype(), [&]<class T>() {
    const T* gy = g_y.data<T>().data();
    const T* xh = std::get<Array<T>>(saved.xhat).data();
    const T* rs = std::get<Array<T>>(saved.rstd).data();
    const T* gv = gamma.data<T>().data();
    Array<T> g_x = Array<T>::from_shape(g_y.shape());
    // gamma's and beta's gradients sum over rows: one partial sum per chunk of rows, added in
    // chunk order (the same bits on any number of threads).
    std::vector<Array<T>> partial_gamma, partial_beta;
    partial_gamma.assign(chunk_count(N, C), xt::zeros<T>({C}));
    partial_beta = partial_gamma;
    parallel_chunks(N, C, [&](std::size_t k, std::size_t begin, std::size_t end) {
      T* pg = partial_gamma[k].data();
      T* pb = partial_beta[k].data();
      for_row_blocks(begin, end, [&]<std::size_t R>(std::size_t r) {
        layer_norm_backward_rows<R>(gy + r * C, xh + r * C, rs + r, gv, C, g_x.data() + r * C, pg,
                                    pb);
      });
    });
    Array<T> g_gamma = xt::zeros<T>({C}), g_beta = xt::zeros<T>({C});
    for (std::size_t k = 0; k < partial_gamma.size(); ++k) {
      g_gamma += partial_gamma[k];
      g_beta += partial_beta[k];
    }
    return LayerNormBackward{Tensor(std::move(g_x)), Tensor(std::move(g_gamma)),
                             Tensor(std::move(g_beta))};
  });
}

// v (..., C) -> its mean over the last axis, kept as size 1: (..., 1).
Tensor mean_last(const Tensor& v) { return mean(v, {-1}, /*keepdim=*/true); }

// The normalisation written with ops, for the rules (the fused kernels compute the same
// values): over the last axis of x (..., C), xhat = (x - mean) rstd, rstd = (var + eps)^(-1/2).
struct Normalized {
  Tensor xhat, rstd;  // (..., C), (..., 1)
  // J v = rstd (v - mean(v) - xhat mean(xhat v)): xhat's Jacobian times v, row by row (mean(v)
  // comes through the mean, mean(xhat v) through rstd).  J is symmetric, so this is also the
  // vector-Jacobian product.
  Tensor along(const Tensor& v) const {
    return rstd * (v - mean_last(v) - xhat * mean_last(xhat * v));
  }
};

Normalized normalized(const Tensor& x, double eps) {
  const Tensor centred = x - mean_last(x);
  const Tensor rstd = pow(mean_last(centred * centred) + eps, -0.5);
  return {centred * rstd, rstd};
}

// The derivative of J a (a = g gamma, held fixed) along x, in direction v:
//   H v = -rstd (mean(xhat v) J a + mean(a xhat) J v + xhat mean(a J v))
// (from d rstd = -rstd^2 mean(xhat v) and d xhat = J v).  H is the Hessian of sum(a xhat), so
// symmetric: also the vector-Jacobian product.
Tensor layer_norm_curvature(const Normalized& n, const Tensor& a, const Tensor& ja,
                            const Tensor& v) {
  const Tensor jv = n.along(v);
  return -n.rstd *
         (mean_last(n.xhat * v) * ja + mean_last(a * n.xhat) * jv + n.xhat * mean_last(a * jv));
}

// Records the kernel's three gradients as ops of (g, x, gamma), each differentiable again.
// With J = xhat's Jacobian, H = the derivative of J a along x (above), a = g gamma, sums over
// rows written sum_rows, and u the gradient arriving at the op's output:
//   out = J a               g_g = gamma J u,  g_x = H u,  g_gamma = sum_rows(g J u);
//                           d(out) = J (dg gamma + g dgamma) + H dx
//   out = sum_rows(g xhat)  g_g = u xhat,  g_x = J (g u);  d(out) = sum_rows(dg xhat + g J dx)
//   out = sum_rows(g)       g_g = u;  d(out) = sum_rows(dg)
LayerNormBackward record_layer_norm_backward(LayerNormBackward b, const Tensor& g_y,
                                             const Tensor& x, const Tensor& gamma, double eps) {
  if (needs_grad(g_y, x, gamma)) {
    const Tensor ja = b.g_x;  // its own rules read it (H)
    record(
        "layer_norm_backward", b.g_x, {g_y, x, gamma}, saved_bytes(g_y, x, gamma, ja),
        [g_y, x, gamma, ja, eps](const Tensor& u, Grads& g) {
          const Normalized n = normalized(x, eps);
          const Tensor ju = n.along(u);
          if (g.wanted(0)) g.add(0, gamma * ju);
          if (g.wanted(1)) g.add(1, layer_norm_curvature(n, g_y * gamma, ja, u));
          if (g.wanted(2)) g.add(2, sum_to(g_y * ju, gamma.shape()));
        },
        [g_y, x, gamma, ja, eps](const Tangents& t) {
          const Normalized n = normalized(x, eps);
          Tensor d;
          if (t.has(0) || t.has(2)) d = n.along(t[0] * gamma + g_y * t[2]);
          if (!t.has(1)) return d;
          const Tensor along_x = layer_norm_curvature(n, g_y * gamma, ja, t[1]);
          return d.defined() ? d + along_x : along_x;
        });
  }
  if (needs_grad(g_y, x))
    record(
        "layer_norm_backward_gamma", b.g_gamma, {g_y, x}, saved_bytes(g_y, x),
        [g_y, x, eps](const Tensor& u, Grads& g) {
          const Normalized n = normalized(x, eps);
          if (g.wanted(0)) g.add(0, u * n.xhat);
          if (g.wanted(1)) g.add(1, n.along(g_y * u));
        },
        [g_y, x, eps, params = gamma.shape()](const Tangents& t) {
          const Normalized n = normalized(x, eps);
          if (!t.has(1)) return sum_to(t[0] * n.xhat, params);
          const Tensor along_x = g_y * n.along(t[1]);
          return sum_to(t.has(0) ? t[0] * n.xhat + along_x : along_x, params);
        });
  if (needs_grad(g_y))
    record(
        "layer_norm_backward_beta", b.g_beta, {g_y}, 0,
        [rows = g_y.shape()](const Tensor& u, Grads& g) { g.add(0, expand(u, rows)); },
        [params = gamma.shape()](const Tangents& t) { return sum_to(t[0], params); });
  return b;
}

// layer_norm's vjp.  First order (nothing records, no tangents): the fused kernel on the saved
// xhat and rstd.  Otherwise the backward ops, whose rules differentiate again, over x (or x's
// values less their rows' means, xhat / rstd, given to its stand-in), so that the ops they record
// connect to x's node.
LayerNormBackward layer_norm_vjp(const Tensor& g_y, const Tensor& x_kept, const Tensor& gamma,
                                 double eps, const std::shared_ptr<LayerNormSaved>& saved) {
  if (first_order(g_y, x_kept, gamma)) return layer_norm_backward_kernel(g_y, gamma, *saved);
  Tensor x = x_kept;
  if (x_kept.shape() != g_y.shape()) {  // the stand-in: xhat / rstd (LayerNormSaved)
    x = detail::with_values(x_kept, std::visit(
                                        [&]<class T>(const Array<T>& xhat) {
                                          const auto& rstd = std::get<Array<T>>(saved->rstd);
                                          const std::size_t C = gamma.numel();
                                          Array<T> v = Array<T>::from_shape(xhat.shape());
                                          for (std::size_t i = 0; i < v.size(); ++i)
                                            v.data()[i] = xhat.data()[i] / rstd.data()[i / C];
                                          return AnyArray(std::move(v));
                                        },
                                        saved->xhat));
  }
  return layer_norm_backward(g_y, x, gamma, eps);
}

}  // namespace

// y = gamma xhat + beta, row by row;  g_x, g_gamma, g_beta = layer_norm_backward(g_y);
// dy = gamma J dx + dgamma xhat + dbeta  (J = xhat's Jacobian, Normalized::along)
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  check_layer_norm("layer_norm", x, gamma, beta);
  auto saved = std::make_shared<LayerNormSaved>();
  Tensor y = layer_norm_forward(x, gamma, beta, eps, *saved);
  if (!needs_grad(x, gamma, beta)) return y;
  // The rule keeps xhat and rstd, and of x only its place in the graph (graph_link),
  // or x itself while it carries a tangent (a vjp inside a jvp differentiates along it).
  const bool tangent = detail::forward_mode_on() && detail::has_tangent(x);
  const Tensor x_kept = tangent ? x : detail::graph_link(x);
  const std::size_t N = x.numel() / std::max<std::size_t>(x.shape().back(), 1);
  record(
      "layer_norm", y, {x, gamma, beta},
      saved_bytes(x, gamma) + N * dtype_size(x.dtype()),  // xhat, rstd
      [x_kept, gamma, eps, saved](const Tensor& g_y, Grads& g) {
        LayerNormBackward b = layer_norm_vjp(g_y, x_kept, gamma, eps, saved);
        if (g.wanted(0)) g.add(0, std::move(b.g_x));
        if (g.wanted(1)) g.add(1, std::move(b.g_gamma));
        if (g.wanted(2)) g.add(2, std::move(b.g_beta));
      },
      [x, gamma, eps, shape = y.shape()](const Tangents& t) {
        Tensor dy = expand(t[2], shape);  // dbeta (zeros when beta has no tangent)
        if (!t.has(0) && !t.has(1)) return dy;
        const Normalized n = normalized(x, eps);
        if (t.has(0)) dy = dy + gamma * n.along(t[0]);
        if (t.has(1)) dy = dy + t[1] * n.xhat;
        return dy;
      });
  return y;
}

LayerNormBackward layer_norm_backward(const Tensor& g_y, const Tensor& x, const Tensor& gamma,
                                      double eps) {
  const char* op = "layer_norm_backward";
  check_layer_norm(op, x, gamma, Tensor());
  check_same_dtype(op, g_y, x);
  if (g_y.shape() != x.shape())
    fail(op, "g_y must have x's shape: g_y is " + shape_str(g_y.shape()) + ", x is " +
                 shape_str(x.shape()));
  LayerNormSaved saved;
  layer_norm_forward(x, gamma, Tensor(), eps, saved, /*statistics_only=*/true);
  return record_layer_norm_backward(layer_norm_backward_kernel(g_y, gamma, saved), g_y, x, gamma,
                                    eps);
}

}  // namespace tg

// Fused attention: one kernel per (batch, head) block does what the composed version in
// nn/attention.cpp does with nine ops (two batched products, the relative-position gathers, the
// scale, the masked softmax, dropout, two more products).  The composed version stays the
// reference: tests check that both give the same outputs and gradients.
//
// For one block, with T queries, S keys, head size D and relative tables of R = 2k + 1 rows:
//   L  = q k^T + G(q a_K^T)      (T, S)  G gathers column clip(j - pos_i, -k, k) + k of (T, R)
//   W  = masked softmax(L scale)         the weights; saved for backward (B, H, T, S)
//   W' = W * keep                        dropout: the same mask as dropout() would draw
//   o  = W' v + P a_V            (T, D)  P = G^T(W') sums W' per table row: (T, R)
// Backward, from g_o (T, D):
//   g_v = W'^T g_o        g_W' = g_o v^T + G(g_o a_V^T)        g_W = g_W' * keep
//   g_L = scale W (g_W - rowsum(g_W W))                         (the softmax's backward)
//   g_q = g_L k + G^T(g_L) a_K        g_k = g_L^T q
//   g_a_K = sum over blocks G^T(g_L)^T q       g_a_V = sum over blocks P^T g_o
// Each block runs on one thread; the table gradients are two products over all blocks' rows at
// the end, so every sum has an order fixed by the sizes and results are the same bits on any
// number of threads.  Saves W only, (B, H, T, S); W' is recomputed from the dropout seed.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include "broadcast.hpp"
#include "gemm.hpp"
#include "generator.hpp"
#include "kernels.hpp"
#include "ops.hpp"
#include "tape.hpp"

namespace tg {
namespace {

struct Dims {
  std::size_t B, H, T, S, D, R;  // R = 0: no relative positions
  std::size_t k() const { return R / 2; }
};

// The table row of query i and key j: clip(j - pos_i, -k, k) + k, query i at position i + S - T.
std::size_t table_row(const Dims& d, std::size_t i, std::size_t j) {
  const auto offset = static_cast<std::int64_t>(j) - static_cast<std::int64_t>(i + d.S - d.T);
  const auto k = static_cast<std::int64_t>(d.k());
  return static_cast<std::size_t>(std::clamp(offset, -k, k) + k);
}

// Which keys each query may see: the mask read through broadcast strides (never expanded), and
// the causal rule.
class KeyFilter {
 public:
  KeyFilter(const Mask* mask, bool causal, const Dims& d) : mask_(mask), causal_(causal), d_(d) {
    if (!mask) return;
    const std::size_t lead = 4 - mask->dimension();
    for (std::size_t a = 4, stride = 1; a-- > lead;) {
      if (mask->shape()[a - lead] != 1) stride_[a] = stride;
      stride *= mask->shape()[a - lead];
    }
  }
  // Fills allowed[j] for query i of block (b, h); returns how many keys are allowed.
  std::size_t row(std::size_t b, std::size_t h, std::size_t i, std::vector<char>& allowed) const {
    const std::size_t last = causal_ ? i + d_.S - d_.T : d_.S - 1;  // the last key i may see
    const bool* m = mask_ ? mask_->data() + b * stride_[0] + h * stride_[1] + i * stride_[2] : nullptr;
    std::size_t count = 0;
    for (std::size_t j = 0; j < d_.S; ++j) {
      allowed[j] = j <= last && (!m || m[j * stride_[3]]);
      count += allowed[j];
    }
    return count;
  }

 private:
  const Mask* mask_;
  bool causal_;
  Dims d_;
  std::array<std::size_t, 4> stride_{};
};

struct Dropout {
  std::uint64_t seed = 0, threshold = 0;  // threshold 0: nothing is dropped
  double keep = 1.0;                      // 1 / (1 - p)
  bool active() const { return threshold > 0; }
};

// W' = W * keep for block n, (T, S): element (i, j) is element n T S + i S + j of the whole
// (B, H, T, S) weights, as dropout() numbers them.
template <class T>
void apply_keep(const Dropout& drop, const Dims& d, std::size_t n, const T* w, T* out) {
  const std::size_t base = n * d.T * d.S;
  const T keep = static_cast<T>(drop.keep);
  for (std::size_t e = 0; e < d.T * d.S; ++e)
    out[e] = dropout_drops(drop.seed, base + e, drop.threshold) ? T(0) : w[e] * keep;
}

template <class T>
struct Inputs {
  const T *q, *k, *v, *rel_key, *rel_value;  // tables are null without relative positions
};

// Forward of block n: writes W (T, S) into w and o (T, D) into out.
template <class T>
void forward_block(const Dims& d, std::size_t n, const Inputs<T>& in, const KeyFilter& keys, double scale,
                   const Dropout& drop, T* w, T* out, std::vector<T>& scratch, std::vector<char>& allowed) {
  const std::size_t b = n / d.H, h = n % d.H;
  const T* q = in.q + n * d.T * d.D;
  const T* k = in.k + n * d.S * d.D;
  const T* v = in.v + n * d.S * d.D;
  gemm_serial({.trans_b = true, .M = d.T, .N = d.S, .K = d.D}, q, k, w, T(0));  // L = q k^T
  T* table = scratch.data();  // (T, R)
  if (d.R > 0) {
    gemm_serial({.trans_b = true, .M = d.T, .N = d.R, .K = d.D}, q, in.rel_key, table, T(0));
    for (std::size_t i = 0; i < d.T; ++i)
      for (std::size_t j = 0; j < d.S; ++j) w[i * d.S + j] += table[i * d.R + table_row(d, i, j)];
  }
  for (std::size_t i = 0; i < d.T; ++i) {  // masked softmax of L scale, row by row
    T* row = w + i * d.S;
    if (keys.row(b, h, i, allowed) == 0) {  // no key to see: zeros, and zero gradients
      std::fill_n(row, d.S, T(0));
      continue;
    }
    T mx = -std::numeric_limits<T>::infinity();
    for (std::size_t j = 0; j < d.S; ++j)
      if (allowed[j]) mx = std::max(mx, static_cast<T>(row[j] * scale));
    T z = 0;
    for (std::size_t j = 0; j < d.S; ++j) {
      row[j] = allowed[j] ? std::exp(static_cast<T>(row[j] * scale) - mx) : T(0);
      z += row[j];
    }
    for (std::size_t j = 0; j < d.S; ++j) row[j] /= z;
  }
  const T* kept = w;
  if (drop.active()) {
    T* dropped = scratch.data() + d.T * d.R;  // (T, S)
    apply_keep(drop, d, n, w, dropped);
    kept = dropped;
  }
  gemm_serial({.M = d.T, .N = d.D, .K = d.S}, kept, v, out, T(0));  // o = W' v
  if (d.R > 0) {  // o += P a_V, P = W' summed per table row
    std::fill_n(table, d.T * d.R, T(0));
    for (std::size_t i = 0; i < d.T; ++i)
      for (std::size_t j = 0; j < d.S; ++j) table[i * d.R + table_row(d, i, j)] += kept[i * d.S + j];
    gemm_serial({.M = d.T, .N = d.D, .K = d.R}, table, in.rel_value, out, T(1));
  }
}

template <class T>
struct GradOutputs {
  T *q, *k, *v;            // (B, H, T, D), (B, H, S, D), (B, H, S, D): every block writes its own
  T *rows_key, *rows_val;  // (B, H, T, R): G^T(g_L) and P per block, for the table gradients
};

// Backward of block n, from g_o (T, D) and the saved W.
template <class T>
void backward_block(const Dims& d, std::size_t n, const Inputs<T>& in, double scale, const Dropout& drop,
                    const T* w, const T* g_o, const GradOutputs<T>& g, std::vector<T>& scratch) {
  const T* q = in.q + n * d.T * d.D;
  const T* k = in.k + n * d.S * d.D;
  const T* v = in.v + n * d.S * d.D;
  T* g_q = g.q + n * d.T * d.D;
  T* g_w = scratch.data();  // (T, S): g_W', then g_W, then g_L, in place
  const T* kept = w;
  if (drop.active()) {
    T* dropped = scratch.data() + d.T * d.S;
    apply_keep(drop, d, n, w, dropped);
    kept = dropped;
  }
  gemm_serial({.trans_a = true, .M = d.S, .N = d.D, .K = d.T}, kept, g_o, g.v + n * d.S * d.D, T(0));
  gemm_serial({.trans_b = true, .M = d.T, .N = d.S, .K = d.D}, g_o, v, g_w, T(0));  // g_W' = g_o v^T
  if (d.R > 0) {
    T* g_table = scratch.data() + 2 * d.T * d.S;  // (T, R): g_o a_V^T
    gemm_serial({.trans_b = true, .M = d.T, .N = d.R, .K = d.D}, g_o, in.rel_value, g_table, T(0));
    T* p = g.rows_val + n * d.T * d.R;
    std::fill_n(p, d.T * d.R, T(0));
    for (std::size_t i = 0; i < d.T; ++i)
      for (std::size_t j = 0; j < d.S; ++j) {
        const std::size_t r = table_row(d, i, j);
        g_w[i * d.S + j] += g_table[i * d.R + r];
        p[i * d.R + r] += kept[i * d.S + j];
      }
  }
  if (drop.active()) apply_keep(drop, d, n, g_w, g_w);  // g_W = g_W' * keep
  for (std::size_t i = 0; i < d.T; ++i) {                // g_L = scale W (g_W - rowsum(g_W W))
    const T* wr = w + i * d.S;
    T* gr = g_w + i * d.S;
    T dot = 0;
    for (std::size_t j = 0; j < d.S; ++j) dot += gr[j] * wr[j];
    for (std::size_t j = 0; j < d.S; ++j) gr[j] = static_cast<T>(scale) * wr[j] * (gr[j] - dot);
  }
  gemm_serial({.M = d.T, .N = d.D, .K = d.S}, g_w, k, g_q, T(0));                              // g_L k
  gemm_serial({.trans_a = true, .M = d.S, .N = d.D, .K = d.T}, g_w, q, g.k + n * d.S * d.D, T(0));  // g_L^T q
  if (d.R > 0) {
    T* g_rows = g.rows_key + n * d.T * d.R;  // G^T(g_L): g_L summed per table row
    std::fill_n(g_rows, d.T * d.R, T(0));
    for (std::size_t i = 0; i < d.T; ++i)
      for (std::size_t j = 0; j < d.S; ++j) g_rows[i * d.R + table_row(d, i, j)] += g_w[i * d.S + j];
    gemm_serial({.M = d.T, .N = d.D, .K = d.R}, g_rows, in.rel_key, g_q, T(1));  // += G^T(g_L) a_K
  }
}

// Runs body(n, scratch, allowed) for every block, in parallel, with scratch of `scratch_size`.
template <class T, class F>
void for_each_block(std::size_t blocks, std::size_t scratch_size, std::size_t S, F body) {
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, blocks, 1), [&](const tbb::blocked_range<std::size_t>& r) {
    std::vector<T> scratch(scratch_size);
    std::vector<char> allowed(S);
    for (std::size_t n = r.begin(); n < r.end(); ++n) body(n, scratch, allowed);
  });
}

Dims check_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args) {
  const char* op = "fused_attention";
  check_defined(op, q);
  check_defined(op, k);
  check_defined(op, v);
  check_same_dtype(op, q, k);
  check_same_dtype(op, q, v);
  if (q.dim() != 4 || k.dim() != 4 || k.shape() != v.shape() || q.shape()[3] != k.shape()[3] ||
      q.shape()[0] != k.shape()[0] || q.shape()[1] != k.shape()[1])
    fail(op, "needs q (B, H, T, D), k and v (B, H, S, D): got q " + shape_str(q.shape()) + ", k " +
                 shape_str(k.shape()) + ", v " + shape_str(v.shape()));
  Dims d{q.shape()[0], q.shape()[1], q.shape()[2], k.shape()[2], q.shape()[3], 0};
  if (args.causal && d.T > d.S)
    fail(op, "causal attention with more queries (" + std::to_string(d.T) + ") than keys (" + std::to_string(d.S) + ")");
  if (args.mask && !broadcasts_to(args.mask->shape(), {d.B, d.H, d.T, d.S}))
    fail(op, "the mask " + shape_str(args.mask->shape()) + " does not broadcast to the logits (B, H, T, S) = " +
                 shape_str({d.B, d.H, d.T, d.S}));
  if (args.rel_key.defined() != args.rel_value.defined())
    fail(op, "relative positions need both tables, rel_key and rel_value");
  if (args.rel_key.defined()) {
    const Shape table{2 * args.relative_k + 1, d.D};
    if (args.rel_key.shape() != table || args.rel_value.shape() != table)
      fail(op, "relative tables must be (2k + 1, D) = " + shape_str(table) + " for k " +
                   std::to_string(args.relative_k) + ": got rel_key " + shape_str(args.rel_key.shape()) +
                   ", rel_value " + shape_str(args.rel_value.shape()));
    check_same_dtype(op, q, args.rel_key);
    check_same_dtype(op, q, args.rel_value);
    d.R = table[0];
  }
  if (!(args.dropout >= 0 && args.dropout < 1))
    fail(op, "dropout must be in [0, 1), got " + std::to_string(args.dropout));
  if (args.training && args.dropout > 0 && !args.gen) fail(op, "dropout in training needs a generator");
  return d;
}

}  // namespace

// q: (B, H, T, D), k, v: (B, H, S, D) [, rel_key, rel_value: (2k + 1, D)] -> (B, H, T, D)
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args) {
  const Dims d = check_attention(q, k, v, args);
  Dropout drop;
  if (args.training && args.dropout > 0) {  // one draw, as dropout() takes
    drop.seed = args.gen->next_u64();
    drop.threshold = static_cast<std::uint64_t>(args.dropout * 4294967296.0);
    drop.keep = 1.0 / (1.0 - args.dropout);
  }
  const bool relative = d.R > 0;
  const std::size_t blocks = d.B * d.H;
  Tensor weights;  // W, kept for backward
  Tensor y = dispatch(q.dtype(), [&]<class T>() {
    const Inputs<T> in{q.data<T>().data(), k.data<T>().data(), v.data<T>().data(),
                       relative ? args.rel_key.data<T>().data() : nullptr,
                       relative ? args.rel_value.data<T>().data() : nullptr};
    Array<T> w = Array<T>::from_shape({d.B, d.H, d.T, d.S});
    Array<T> out = Array<T>::from_shape({d.B, d.H, d.T, d.D});
    const KeyFilter keys(args.mask, args.causal, d);
    for_each_block<T>(blocks, d.T * d.R + d.T * d.S, d.S, [&](std::size_t n, std::vector<T>& scratch, std::vector<char>& allowed) {
      forward_block(d, n, in, keys, args.scale, drop, w.data() + n * d.T * d.S, out.data() + n * d.T * d.D,
                    scratch, allowed);
    });
    weights = Tensor(std::move(w));
    return Tensor(std::move(out));
  });
  std::vector<Tensor> inputs{q, k, v};
  if (relative) inputs.insert(inputs.end(), {args.rel_key, args.rel_value});
  if (!needs_grad(inputs)) return y;
  const std::size_t saved = dtype_size(q.dtype()) * blocks * d.T * d.S;
  record("fused_attention", y, inputs, saved,
         [q, k, v, rk = args.rel_key, rv = args.rel_value, weights, d, drop, scale = args.scale,
          relative]<class T>(const Array<T>& g_out, Grads& g) {
           const Inputs<T> in{q.data<T>().data(), k.data<T>().data(), v.data<T>().data(),
                              relative ? rk.data<T>().data() : nullptr, relative ? rv.data<T>().data() : nullptr};
           const Array<T>& w = weights.data<T>();
           Array<T> g_q = Array<T>::from_shape(q.shape()), g_k = Array<T>::from_shape(k.shape()),
                    g_v = Array<T>::from_shape(v.shape());
           Array<T> rows_key, rows_val;  // (B H T, R) each
           if (relative) {
             rows_key = Array<T>::from_shape({d.B * d.H * d.T, d.R});
             rows_val = Array<T>::from_shape({d.B * d.H * d.T, d.R});
           }
           const GradOutputs<T> out{g_q.data(), g_k.data(), g_v.data(), rows_key.data(), rows_val.data()};
           for_each_block<T>(d.B * d.H, 2 * d.T * d.S + d.T * d.R, d.S,
                             [&](std::size_t n, std::vector<T>& scratch, std::vector<char>&) {
                               backward_block(d, n, in, scale, drop, w.data() + n * d.T * d.S,
                                              g_out.data() + n * d.T * d.D, out, scratch);
                             });
           g.add(0, std::move(g_q));
           g.add(1, std::move(g_k));
           g.add(2, std::move(g_v));
           if (!relative) return;
           // Table gradients: one product over the rows of every block, (R, B H T) (B H T, D).
           const GemmArgs sum_rows{.trans_a = true, .M = d.R, .N = d.D, .K = d.B * d.H * d.T};
           if (g.wanted(3)) {
             Array<T> g_rk = Array<T>::from_shape({d.R, d.D});
             gemm(sum_rows, rows_key.data(), in.q, g_rk.data(), T(0));
             g.add(3, std::move(g_rk));
           }
           if (g.wanted(4)) {
             Array<T> g_rv = Array<T>::from_shape({d.R, d.D});
             gemm(sum_rows, rows_val.data(), g_out.data(), g_rv.data(), T(0));
             g.add(4, std::move(g_rv));
           }
         });
  return y;
}

}  // namespace tg

// Fused attention: one kernel per (batch, head) block does what the composed version in
// nn/attention/multihead.cpp does with nine ops (two batched products, the relative-position
// gathers, the scale, the masked softmax, dropout, two more products).  The composed version
// stays the reference: tests check that both give the same outputs and gradients.
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
// Each block runs on one thread, and the table gradients are added up block after block at the
// end, so every sum has an order fixed by the sizes: the same bits on any number of threads.
// Saves W only, (B, H, T, S); W' is recomputed from the dropout seed.
//
// Two layouts: fused_attention takes q, k, v with heads split, (B, H, T, D); fused_self_attention
// takes a projection's output (B, T, 3C) and reads each head in place (Operand, below).
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include "broadcast.hpp"
#include "ops.hpp"
#include "runtime/gemm.hpp"
#include "runtime/generator.hpp"
#include "runtime/kernels.hpp"
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
  // Fills allowed[j] for query i of block (b, h).
  void row(std::size_t b, std::size_t h, std::size_t i, std::vector<char>& allowed) const {
    const std::size_t last = causal_ ? i + d_.S - d_.T : d_.S - 1;  // the last key i may see
    const bool* m =
        mask_ ? mask_->data() + b * stride_[0] + h * stride_[1] + i * stride_[2] : nullptr;
    for (std::size_t j = 0; j < d_.S; ++j) allowed[j] = j <= last && (!m || m[j * stride_[3]]);
  }

 private:
  const Mask* mask_;
  bool causal_;
  Dims d_;
  std::array<std::size_t, 4> stride_{};
};

// Where block (b, h)'s matrix starts in a tensor and how far apart its rows are.  Heads split,
// (B, H, T, D): at b H T D + h T D, rows D apart.  Heads side by side in the channels, as a
// projection leaves them, (B, T, width) with head h in columns offset + h D: at
// b T width + offset + h D, rows `width` apart; no permute or slice copies them out first.
struct Operand {
  std::size_t batch_stride, head_stride, ld, offset = 0;
  std::size_t at(std::size_t b, std::size_t h) const {
    return offset + b * batch_stride + h * head_stride;
  }
};
struct Layout {
  Operand q, k, v, out;  // gradients are laid out as what they are the gradient of
};

Layout split_heads_layout(const Dims& d) {
  const Operand queries{d.H * d.T * d.D, d.T * d.D, d.D}, keys{d.H * d.S * d.D, d.S * d.D, d.D};
  return {queries, keys, keys, queries};
}

// qkv (B, T, 3C) -> out (B, T, C), C = H D: q, k and v are the three blocks of C channels.
Layout packed_layout(const Dims& d) {
  const std::size_t C = d.H * d.D;
  return {{d.T * 3 * C, d.D, 3 * C, 0},
          {d.T * 3 * C, d.D, 3 * C, C},
          {d.T * 3 * C, d.D, 3 * C, 2 * C},
          {d.T * C, d.D, C, 0}};
}

struct Dropout {
  std::uint64_t seed = 0, threshold = 0;  // threshold 0: nothing is dropped
  double keep = 1.0;                      // 1 / (1 - p)
  bool active() const { return threshold > 0; }
};

// W' = W * keep for block n, (T, S): element (i, j) is element n T S + i S + j of the whole
// (B, H, T, S) weights, as dropout() numbers them.
template <class T>
void apply_keep(const Dropout& drop, const Dims& d, std::size_t n, const T* w, T* out) {
  apply_dropout_mask(w, out, d.T * d.S, n * d.T * d.S, drop.seed, drop.threshold,
                     static_cast<T>(drop.keep));
}

template <class T>
struct Inputs {
  const T *q, *k, *v, *rel_key, *rel_value;  // tables are null without relative positions
};

// Forward of block n: writes W (T, S) into w and o (T, D) into out.
template <class T>
void forward_block(const Dims& d, const Layout& L, std::size_t n, const Inputs<T>& in,
                   const KeyFilter& keys, double scale, const Dropout& drop, T* w, T* out_base,
                   std::vector<T>& scratch, std::vector<char>& allowed) {
  const std::size_t b = n / d.H, h = n % d.H;
  const T* q = in.q + L.q.at(b, h);
  const T* k = in.k + L.k.at(b, h);
  const T* v = in.v + L.v.at(b, h);
  T* out = out_base + L.out.at(b, h);
  gemm_serial({.trans_b = true, .M = d.T, .N = d.S, .K = d.D, .lda = L.q.ld, .ldb = L.k.ld}, q, k,
              w, T(0));       // L = q k^T
  T* table = scratch.data();  // (T, R)
  if (d.R > 0) {
    gemm_serial({.trans_b = true, .M = d.T, .N = d.R, .K = d.D, .lda = L.q.ld}, q, in.rel_key,
                table, T(0));
    for (std::size_t i = 0; i < d.T; ++i)
      for (std::size_t j = 0; j < d.S; ++j) w[i * d.S + j] += table[i * d.R + table_row(d, i, j)];
  }
  for (std::size_t e = 0; e < d.T * d.S; ++e) w[e] *= static_cast<T>(scale);
  for (std::size_t i = 0; i < d.T; ++i) {  // masked softmax, row by row (no key to see: zeros)
    keys.row(b, h, i, allowed);
    masked_softmax_row(w + i * d.S, w + i * d.S, d.S,
                       [&](std::size_t j) { return allowed[j] != 0; });
  }
  const T* kept = w;
  if (drop.active()) {
    T* dropped = scratch.data() + d.T * d.R;  // (T, S)
    apply_keep(drop, d, n, w, dropped);
    kept = dropped;
  }
  gemm_serial({.M = d.T, .N = d.D, .K = d.S, .ldb = L.v.ld, .ldc = L.out.ld}, kept, v, out,
              T(0));  // o = W' v
  if (d.R > 0) {      // o += P a_V, P = W' summed per table row
    std::fill_n(table, d.T * d.R, T(0));
    for (std::size_t i = 0; i < d.T; ++i)
      for (std::size_t j = 0; j < d.S; ++j)
        table[i * d.R + table_row(d, i, j)] += kept[i * d.S + j];
    gemm_serial({.M = d.T, .N = d.D, .K = d.R, .ldc = L.out.ld}, table, in.rel_value, out, T(1));
  }
}

template <class T>
struct GradOutputs {
  T *q, *k, *v;            // laid out as q, k, v: every block writes its own rows and columns
  T *rows_key, *rows_val;  // (B, H, T, R): G^T(g_L) and P per block, for the table gradients
};

// Backward of block n, from g_o (T, D) and the saved W.
template <class T>
void backward_block(const Dims& d, const Layout& L, std::size_t n, const Inputs<T>& in,
                    double scale, const Dropout& drop, const T* w, const T* g_out,
                    const GradOutputs<T>& g, std::vector<T>& scratch) {
  const std::size_t b = n / d.H, h = n % d.H;
  const T* q = in.q + L.q.at(b, h);
  const T* k = in.k + L.k.at(b, h);
  const T* v = in.v + L.v.at(b, h);
  const T* g_o = g_out + L.out.at(b, h);
  T* g_q = g.q + L.q.at(b, h);
  T* g_w = scratch.data();  // (T, S): g_W', then g_W, then g_L, in place
  const T* kept = w;
  if (drop.active()) {
    T* dropped = scratch.data() + d.T * d.S;
    apply_keep(drop, d, n, w, dropped);
    kept = dropped;
  }
  gemm_serial(
      {.trans_a = true, .M = d.S, .N = d.D, .K = d.T, .lda = d.S, .ldb = L.out.ld, .ldc = L.v.ld},
      kept, g_o, g.v + L.v.at(b, h), T(0));  // g_v = W'^T g_o
  gemm_serial({.trans_b = true, .M = d.T, .N = d.S, .K = d.D, .lda = L.out.ld, .ldb = L.v.ld}, g_o,
              v, g_w, T(0));  // g_W' = g_o v^T
  if (d.R > 0) {
    T* g_table = scratch.data() + 2 * d.T * d.S;  // (T, R): g_o a_V^T
    gemm_serial({.trans_b = true, .M = d.T, .N = d.R, .K = d.D, .lda = L.out.ld}, g_o, in.rel_value,
                g_table, T(0));
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
  for (std::size_t i = 0; i < d.T; ++i)                 // g_L = scale W (g_W - rowsum(g_W W))
    softmax_backward_row(w + i * d.S, g_w + i * d.S, g_w + i * d.S, d.S, static_cast<T>(scale));
  gemm_serial({.M = d.T, .N = d.D, .K = d.S, .ldb = L.k.ld, .ldc = L.q.ld}, g_w, k, g_q,
              T(0));  // g_L k
  gemm_serial(
      {.trans_a = true, .M = d.S, .N = d.D, .K = d.T, .lda = d.S, .ldb = L.q.ld, .ldc = L.k.ld},
      g_w, q, g.k + L.k.at(b, h), T(0));  // g_L^T q
  if (d.R > 0) {
    T* g_rows = g.rows_key + n * d.T * d.R;  // G^T(g_L): g_L summed per table row
    std::fill_n(g_rows, d.T * d.R, T(0));
    for (std::size_t i = 0; i < d.T; ++i)
      for (std::size_t j = 0; j < d.S; ++j)
        g_rows[i * d.R + table_row(d, i, j)] += g_w[i * d.S + j];
    gemm_serial({.M = d.T, .N = d.D, .K = d.R, .ldc = L.q.ld}, g_rows, in.rel_key, g_q,
                T(1));  // += G^T(g_L) a_K
  }
}

// Runs body(n, scratch, allowed) for every block, in parallel, with scratch of `scratch_size`.
template <class T, class F>
void for_each_block(std::size_t blocks, std::size_t scratch_size, std::size_t S, F body) {
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, blocks, 1),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      std::vector<T> scratch(scratch_size);
                      std::vector<char> allowed(S);
                      for (std::size_t n = r.begin(); n < r.end(); ++n) body(n, scratch, allowed);
                    });
}

// q, k and v from three tensors, or from one tensor read three times; the tables if defined.
template <class T>
Inputs<T> inputs_of(const std::vector<Tensor>& sources, const Tensor& rel_key,
                    const Tensor& rel_value) {
  const T* last = sources.back().data<T>().data();
  return Inputs<T>{sources[0].data<T>().data(),
                   sources.size() > 1 ? sources[1].data<T>().data() : last, last,
                   rel_key.defined() ? rel_key.data<T>().data() : nullptr,
                   rel_value.defined() ? rel_value.data<T>().data() : nullptr};
}

// The rules every call must meet, whatever the layout; fills in d.R.
void check_args(const char* op, Dims& d, const Tensor& x, const AttentionArgs& args) {
  if (args.causal && d.T > d.S)
    fail(op, "causal attention with more queries (" + std::to_string(d.T) + ") than keys (" +
                 std::to_string(d.S) + ")");
  if (args.mask && !broadcasts_to(args.mask->shape(), {d.B, d.H, d.T, d.S}))
    fail(op,
         "the mask " + shape_str(args.mask->shape()) +
             " does not broadcast to the logits (B, H, T, S) = " + shape_str({d.B, d.H, d.T, d.S}));
  if (args.rel_key.defined() != args.rel_value.defined())
    fail(op, "relative positions need both tables, rel_key and rel_value");
  if (args.rel_key.defined()) {
    const Shape table{2 * args.relative_k + 1, d.D};
    if (args.rel_key.shape() != table || args.rel_value.shape() != table)
      fail(op, "relative tables must be (2k + 1, D) = " + shape_str(table) + " for k " +
                   std::to_string(args.relative_k) + ": got rel_key " +
                   shape_str(args.rel_key.shape()) + ", rel_value " +
                   shape_str(args.rel_value.shape()));
    check_same_dtype(op, x, args.rel_key);
    check_same_dtype(op, x, args.rel_value);
    d.R = table[0];
  }
  if (!(args.dropout >= 0 && args.dropout < 1))
    fail(op, "dropout must be in [0, 1), got " + std::to_string(args.dropout));
  if (args.training && args.dropout > 0 && !args.gen)
    fail(op, "dropout in training needs a generator");
}

// The op for either layout: `sources` are q, k, v (or qkv alone), read through `L`; the output
// has shape `out_shape`.  Inputs on the tape: the sources, then the two tables.
Tensor attention_op(const char* op, const Dims& d, const Layout& L,
                    const std::vector<Tensor>& sources, const Shape& out_shape,
                    const AttentionArgs& args) {
  Dropout drop;
  if (args.training && args.dropout > 0) {  // one draw, as dropout() takes
    drop.seed = args.gen->next_u64();
    drop.threshold = static_cast<std::uint64_t>(args.dropout * 4294967296.0);
    drop.keep = 1.0 / (1.0 - args.dropout);
  }
  const bool relative = d.R > 0;
  const std::size_t blocks = d.B * d.H, n_sources = sources.size();
  Tensor weights;  // W, kept for backward
  Tensor y = dispatch(sources[0].dtype(), [&]<class T>() {
    const Inputs<T> in = inputs_of<T>(sources, args.rel_key, args.rel_value);
    Array<T> w = Array<T>::from_shape({d.B, d.H, d.T, d.S});
    Array<T> out = Array<T>::from_shape(out_shape);
    const KeyFilter keys(args.mask, args.causal, d);
    for_each_block<T>(blocks, d.T * d.R + d.T * d.S, d.S,
                      [&](std::size_t n, std::vector<T>& scratch, std::vector<char>& allowed) {
                        forward_block(d, L, n, in, keys, args.scale, drop, w.data() + n * d.T * d.S,
                                      out.data(), scratch, allowed);
                      });
    weights = Tensor(std::move(w));
    return Tensor(std::move(out));
  });
  std::vector<Tensor> inputs = sources;
  if (relative) inputs.insert(inputs.end(), {args.rel_key, args.rel_value});
  if (!needs_grad(inputs)) return y;
  record(op, y, inputs, weights.numel() * dtype_size(weights.dtype()),
         [inputs, weights, d, L, drop, scale = args.scale, relative, n_sources]<class T>(
             const Array<T>& g_out, Grads& g) {
           const std::vector<Tensor> sources(inputs.begin(), inputs.begin() + n_sources);
           const Inputs<T> in =
               relative ? inputs_of<T>(sources, inputs[n_sources], inputs[n_sources + 1])
                        : inputs_of<T>(sources, Tensor(), Tensor());
           const Array<T>& w = weights.data<T>();
           std::vector<Array<T>> g_sources;
           for (const Tensor& t : sources) g_sources.push_back(Array<T>::from_shape(t.shape()));
           Array<T> rows_key, rows_val;  // (B H T, R) each
           if (relative) {
             rows_key = Array<T>::from_shape({d.B * d.H * d.T, d.R});
             rows_val = Array<T>::from_shape({d.B * d.H * d.T, d.R});
           }
           T* last = g_sources.back().data();
           const GradOutputs<T> out{g_sources[0].data(), n_sources > 1 ? g_sources[1].data() : last,
                                    last, rows_key.data(), rows_val.data()};
           for_each_block<T>(d.B * d.H, 2 * d.T * d.S + d.T * d.R, d.S,
                             [&](std::size_t n, std::vector<T>& scratch, std::vector<char>&) {
                               backward_block(d, L, n, in, scale, drop, w.data() + n * d.T * d.S,
                                              g_out.data(), out, scratch);
                             });
           for (std::size_t i = 0; i < n_sources; ++i) g.add(i, std::move(g_sources[i]));
           if (!relative) return;
           // Table gradients: the blocks' rows summed block after block, in order.
           Array<T> g_rk = xt::zeros<T>(Shape{d.R, d.D}), g_rv = xt::zeros<T>(Shape{d.R, d.D});
           for (std::size_t n = 0; n < d.B * d.H; ++n) {
             const std::size_t b = n / d.H, h = n % d.H;
             const GemmArgs rows{.trans_a = true, .M = d.R, .N = d.D, .K = d.T, .lda = d.R};
             GemmArgs from_q = rows, from_g = rows;
             from_q.ldb = L.q.ld;
             from_g.ldb = L.out.ld;
             gemm_serial(from_q, rows_key.data() + n * d.T * d.R, in.q + L.q.at(b, h), g_rk.data(),
                         T(1));
             gemm_serial(from_g, rows_val.data() + n * d.T * d.R, g_out.data() + L.out.at(b, h),
                         g_rv.data(), T(1));
           }
           if (g.wanted(n_sources)) g.add(n_sources, std::move(g_rk));
           if (g.wanted(n_sources + 1)) g.add(n_sources + 1, std::move(g_rv));
         });
  return y;
}

}  // namespace

// q: (B, H, T, D), k, v: (B, H, S, D) [, rel_key, rel_value: (2k + 1, D)] -> (B, H, T, D)
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionArgs& args) {
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
  check_args(op, d, q, args);
  return attention_op(op, d, split_heads_layout(d), {q, k, v}, q.shape(), args);
}

// qkv: (B, T, 3C), C = H D, [tables] -> (B, T, C): self-attention on a projection's output,
// each head read in place (no slice, no permute).
Tensor fused_self_attention(const Tensor& qkv, std::size_t heads, const AttentionArgs& args) {
  const char* op = "fused_self_attention";
  check_defined(op, qkv);
  if (qkv.dim() != 3 || heads == 0 || qkv.shape()[2] % (3 * heads) != 0)
    fail(op, "needs qkv (B, T, 3C) with C a multiple of the " + std::to_string(heads) +
                 " heads: got " + shape_str(qkv.shape()));
  const std::size_t B = qkv.shape()[0], T = qkv.shape()[1], C = qkv.shape()[2] / 3;
  Dims d{B, heads, T, T, C / heads, 0};
  check_args(op, d, qkv, args);
  return attention_op(op, d, packed_layout(d), {qkv}, Shape{B, T, C}, args);
}

}  // namespace tg

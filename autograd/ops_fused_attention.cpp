// Fused attention: one kernel per (batch, head) block does what the composed version in
// nn/attention/multihead.cpp does with nine ops (two batched products, the relative-position
// gathers, the scale, the masked softmax, dropout, two more products).  The composed version
// stays the reference: tests check that both give the same outputs and gradients.
//
// For one block, with T queries, S keys, head size D and relative tables of R = 2k + 1 rows:
//   L  = q k^T + G(q a_K^T)      (T, S)  G gathers column clip(j - pos_i, -k, k) + k of (T, R)
//   W  = masked softmax(L scale)         the weights; saved for backward, (T, S) per block
//   W' = W * keep                        dropout: the same mask as dropout() would draw
//   o  = W' v + P a_V            (T, D)  P = G^T(W') sums W' per table row: (T, R)
// Backward, from g_o (T, D):
//   g_v = W'^T g_o        g_W' = g_o v^T + G(g_o a_V^T)        g_W = g_W' * keep
//   g_L = scale W (g_W - rowsum(g_W W))                         (the softmax's backward)
//   g_q = g_L k + G^T(g_L) a_K        g_k = g_L^T q
//   g_a_K = sum over blocks G^T(g_L)^T q       g_a_V = sum over blocks P^T g_o
// Each block runs on one thread, and the table gradients are added up block after block at the
// end, so every sum has an order fixed by the sizes: the same bits on any number of threads.
// Saves W only, (B, H, T, S) (on packed tokens each block's (L, L)); W' is recomputed from the
// dropout seed.
//
// The backward is an op of its own, fused_attention_backward, so that attention differentiates
// again, in both modes.  Its rules, and the forward's jvp, are those of the same attention
// written with ops (attention_composed.hpp): a second derivative is rare and may be slow, a
// first-order step runs the two kernels only.
//
// Three forms (Form, below): fused_attention takes q, k, v with heads split, (B, H, T, D);
// fused_self_attention takes a projection's output (B, T, 3C) and reads each head in place;
// fused_token_attention does the same on packed tokens, (N, 3C), one block per sentence and head.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include "attention_composed.hpp"
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

// How far apart the rows of each matrix are: D with heads split, (B, H, T, D); the whole width
// when heads sit side by side in the channels, as a projection leaves them, (B, T, 3C) or
// packed tokens (N, 3C), so that no permute or slice copies them out first.
struct Layout {
  std::size_t q, k, v, out;  // gradients are laid out as what they are the gradient of
};

// One (batch, head) block: its queries and keys, where its matrices start, where its weights
// are saved, and how dropout numbers them.  On packed tokens sentence b's L_b real tokens are
// both (T = S = L_b), and weight (i, j) keeps the number it has in the padded (B, H, T, T), so
// that dropout drops the weights the padded call would.
struct Block {
  std::size_t b, h, T, S;
  std::size_t q, k, v, out;         // offsets into the operands (and their gradients)
  std::size_t w;                    // offset of its weights (T, S) in the saved W
  std::uint64_t first, row_stride;  // weight (i, j) is dropout element first + i row_stride + j
};

// The keys of query i by their relative table row (attention::table_row): keys [0, lo) all take
// row 0, keys [lo, hi) rows first, first + 1, ..., and keys [hi, S) row 2k.  So the loops over
// them run on stretches of consecutive rows, in the keys' order.
struct Band {
  std::size_t lo, hi, first;
};
Band band(const Dims& d, const Block& blk, std::size_t i) {
  const auto pos = static_cast<std::int64_t>(i + blk.S - blk.T),
             k = static_cast<std::int64_t>(d.k()), S = static_cast<std::int64_t>(blk.S);
  const auto lo = static_cast<std::size_t>(std::clamp<std::int64_t>(pos - k, 0, S)),
             hi = static_cast<std::size_t>(std::clamp<std::int64_t>(pos + k + 1, 0, S));
  return {lo, hi, attention::table_row(blk.T, blk.S, d.k(), i, lo)};
}
// x[j] += t[row of j] for every key j: one add per element.
template <class T>
void add_table_rows(const Band& b, std::size_t S, std::size_t R, const T* t, T* x) {
  for (std::size_t j = 0; j < b.lo; ++j) x[j] += t[0];
  for (std::size_t j = b.lo; j < b.hi; ++j) x[j] += t[b.first + (j - b.lo)];
  for (std::size_t j = b.hi; j < S; ++j) x[j] += t[R - 1];
}
// t[row of j] += x[j] for every key j, in the keys' order (each row's sum in that order).
template <class T>
void sum_into_table_rows(const Band& b, std::size_t S, std::size_t R, const T* x, T* t) {
  for (std::size_t j = 0; j < b.lo; ++j) t[0] += x[j];
  for (std::size_t j = b.lo; j < b.hi; ++j) t[b.first + (j - b.lo)] += x[j];
  for (std::size_t j = b.hi; j < S; ++j) t[R - 1] += x[j];
}

using attention::Dropout;

// W' = W * keep for a block, (T, S), as dropout() on the padded (B, H, T, S) weights would do it.
template <class T>
void apply_keep(const Dropout& drop, const Block& blk, const T* w, T* out) {
  const auto keep = static_cast<T>(drop.keep);
  if (blk.row_stride == blk.S) {
    apply_dropout_mask(w, out, blk.T * blk.S, blk.first, drop.seed, drop.threshold, keep);
    return;
  }
  for (std::size_t i = 0; i < blk.T; ++i)
    apply_dropout_mask(w + i * blk.S, out + i * blk.S, blk.S, blk.first + i * blk.row_stride,
                       drop.seed, drop.threshold, keep);
}

template <class T>
struct Inputs {
  const T *q, *k, *v, *rel_key, *rel_value;  // tables are null without relative positions
};

// Forward of one block: writes W (T, S) into w and o (T, D) into its rows of out.
template <class T>
void forward_block(const Dims& d, const Layout& L, const Block& blk, const Inputs<T>& in,
                   const KeyFilter& keys, double scale, const Dropout& drop, T* w, T* out_base,
                   std::vector<T>& scratch, std::vector<char>& allowed) {
  const std::size_t T_ = blk.T, S = blk.S;
  const T* q = in.q + blk.q;
  const T* k = in.k + blk.k;
  const T* v = in.v + blk.v;
  T* out = out_base + blk.out;
  gemm_serial({.trans_b = true, .M = T_, .N = S, .K = d.D, .lda = L.q, .ldb = L.k}, q, k, w,
              T(0));          // L = q k^T
  T* table = scratch.data();  // (T, R)
  if (d.R > 0) {
    gemm_serial({.trans_b = true, .M = T_, .N = d.R, .K = d.D, .lda = L.q}, q, in.rel_key, table,
                T(0));
    for (std::size_t i = 0; i < T_; ++i)
      add_table_rows(band(d, blk, i), S, d.R, table + i * d.R, w + i * S);
  }
  for (std::size_t e = 0; e < T_ * S; ++e) w[e] *= static_cast<T>(scale);
  for (std::size_t i = 0; i < T_; ++i) {  // masked softmax, row by row (no key to see: zeros)
    keys.row(blk.b, blk.h, i, allowed);
    masked_softmax_row(w + i * S, w + i * S, S, [&](std::size_t j) { return allowed[j] != 0; });
  }
  const T* kept = w;
  if (drop.active()) {
    T* dropped = scratch.data() + T_ * d.R;  // (T, S)
    apply_keep(drop, blk, w, dropped);
    kept = dropped;
  }
  gemm_serial({.M = T_, .N = d.D, .K = S, .ldb = L.v, .ldc = L.out}, kept, v, out,
              T(0));  // o = W' v
  if (d.R > 0) {      // o += P a_V, P = W' summed per table row
    std::fill_n(table, T_ * d.R, T(0));
    for (std::size_t i = 0; i < T_; ++i)
      sum_into_table_rows(band(d, blk, i), S, d.R, kept + i * S, table + i * d.R);
    gemm_serial({.M = T_, .N = d.D, .K = d.R, .ldc = L.out}, table, in.rel_value, out, T(1));
  }
}

template <class T>
struct GradOutputs {
  T *q, *k, *v;            // laid out as q, k, v: every block writes its own rows and columns
  T *rows_key, *rows_val;  // (B, H, T, R): G^T(g_L) and P per block, for the table gradients
};

// Backward of block n, from g_o (T, D) and the saved W.
template <class T>
void backward_block(const Dims& d, const Layout& L, std::size_t n, const Block& blk,
                    const Inputs<T>& in, double scale, const Dropout& drop, const T* w,
                    const T* g_out, const GradOutputs<T>& g, std::vector<T>& scratch) {
  const std::size_t T_ = blk.T, S = blk.S;
  const T* q = in.q + blk.q;
  const T* k = in.k + blk.k;
  const T* v = in.v + blk.v;
  const T* g_o = g_out + blk.out;
  T* g_q = g.q + blk.q;
  T* g_w = scratch.data();  // (T, S): g_W', then g_W, then g_L, in place
  const T* kept = w;
  if (drop.active()) {
    T* dropped = scratch.data() + T_ * S;
    apply_keep(drop, blk, w, dropped);
    kept = dropped;
  }
  gemm_serial({.trans_a = true, .M = S, .N = d.D, .K = T_, .lda = S, .ldb = L.out, .ldc = L.v},
              kept, g_o, g.v + blk.v, T(0));  // g_v = W'^T g_o
  gemm_serial({.trans_b = true, .M = T_, .N = S, .K = d.D, .lda = L.out, .ldb = L.v}, g_o, v, g_w,
              T(0));  // g_W' = g_o v^T
  if (d.R > 0) {
    T* g_table = scratch.data() + 2 * T_ * S;  // (T, R): g_o a_V^T
    gemm_serial({.trans_b = true, .M = T_, .N = d.R, .K = d.D, .lda = L.out}, g_o, in.rel_value,
                g_table, T(0));
    T* p = g.rows_val + n * d.T * d.R;
    std::fill_n(p, T_ * d.R, T(0));
    for (std::size_t i = 0; i < T_; ++i) {
      const Band b = band(d, blk, i);
      add_table_rows(b, S, d.R, g_table + i * d.R, g_w + i * S);
      sum_into_table_rows(b, S, d.R, kept + i * S, p + i * d.R);
    }
  }
  if (drop.active()) apply_keep(drop, blk, g_w, g_w);  // g_W = g_W' * keep
  for (std::size_t i = 0; i < T_; ++i)                 // g_L = scale W (g_W - rowsum(g_W W))
    softmax_backward_row(w + i * S, g_w + i * S, g_w + i * S, S, static_cast<T>(scale));
  gemm_serial({.M = T_, .N = d.D, .K = S, .ldb = L.k, .ldc = L.q}, g_w, k, g_q,
              T(0));  // g_L k
  gemm_serial({.trans_a = true, .M = S, .N = d.D, .K = T_, .lda = S, .ldb = L.q, .ldc = L.k}, g_w,
              q, g.k + blk.k, T(0));  // g_L^T q
  if (d.R > 0) {
    T* g_rows = g.rows_key + n * d.T * d.R;  // G^T(g_L): g_L summed per table row
    std::fill_n(g_rows, T_ * d.R, T(0));
    for (std::size_t i = 0; i < T_; ++i)
      sum_into_table_rows(band(d, blk, i), S, d.R, g_w + i * S, g_rows + i * d.R);
    gemm_serial({.M = T_, .N = d.D, .K = d.R, .ldc = L.q}, g_rows, in.rel_key, g_q,
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

std::int64_t i64(std::size_t n) { return static_cast<std::int64_t>(n); }

// Where q, k and v come from: three tensors with heads split, q (B, H, T, D) and k, v
// (B, H, S, D); or one projection's output with heads side by side, qkv (B, T, 3C) = [q | k | v],
// or the same on packed tokens, (N, 3C), the real tokens of B sentences of T places, each
// sentence's at its first places.
enum class Form { split, qkv, tokens };

// One call of any of the ops, as its kernels and its rules see it.
struct Call {
  Dims d;  // on packed tokens, the padded sizes: T = S the padded length
  Form form = Form::split;
  attention::Setting setting;  // the caller's mask; on packed tokens each block sees its tokens
  std::vector<Tensor> inputs;  // q, k, v (or qkv), then rel_key and rel_value when relative
  PackedTokens tokens;         // Form::tokens: where each row stands in the padded layout
  std::vector<std::size_t> first_row, first_weight;  // of sentence b, and its end at b + 1

  std::size_t sources() const { return form == Form::split ? 3 : 1; }
  bool relative() const { return d.R > 0; }
  std::size_t width() const { return d.H * d.D; }  // C
  Layout layout() const {
    if (form == Form::split) return {d.D, d.D, d.D, d.D};
    return {3 * width(), 3 * width(), 3 * width(), width()};
  }
  Shape out_shape() const {
    if (form == Form::split) return {d.B, d.H, d.T, d.D};
    if (form == Form::qkv) return {d.B, d.T, width()};
    return {tokens.rows->size(), width()};
  }
  std::size_t weights_size() const {
    return form == Form::tokens ? first_weight[d.B] : d.B * d.H * d.T * d.S;
  }
  Block block(std::size_t n) const {
    const std::size_t b = n / d.H, h = n % d.H, C = width();
    if (form == Form::split) {
      const std::size_t q = n * d.T * d.D, k = n * d.S * d.D;
      return {b, h, d.T, d.S, q, k, k, q, n * d.T * d.S, n * d.T * d.S, d.S};
    }
    if (form == Form::qkv) {
      const std::size_t q = b * d.T * 3 * C + h * d.D;
      return {
          b,  h, d.T, d.S, q, q + C, q + 2 * C, b * d.T * C + h * d.D, n * d.T * d.S, n * d.T * d.S,
          d.S};
    }
    const std::size_t L = first_row[b + 1] - first_row[b], q = first_row[b] * 3 * C + h * d.D;
    return {b,
            h,
            L,
            L,
            q,
            q + C,
            q + 2 * C,
            first_row[b] * C + h * d.D,
            first_weight[b] + h * L * L,
            n * d.T * d.T,
            d.T};
  }

  // Between the op's layout and the composed form's, heads split (B, H, T, D): (B, T, C) ->
  // (B, H, T, D) and back; packed tokens are unpacked to (B, T, C) first, zeros at padding.
  Tensor heads(const Tensor& x) const {
    if (form == Form::split) return x;
    const Tensor padded =
        form == Form::tokens ? scatter_rows(x, tokens.rows, {d.B, d.T, x.shape()[1]}) : x;
    return permute(reshape(padded, {i64(d.B), i64(d.T), i64(d.H), i64(d.D)}), {0, 2, 1, 3});
  }
  Tensor merged(const Tensor& x) const {
    if (form == Form::split) return x;
    const Tensor padded = reshape(permute(x, {0, 2, 1, 3}), {i64(d.B), i64(d.T), i64(width())});
    return form == Form::tokens ? gather_rows(padded, tokens.rows) : padded;
  }
  // Tensors laid out as `inputs` (the inputs themselves, tangents, cotangents) -> Operands.
  attention::Operands operands(const std::vector<Tensor>& in) const {
    attention::Operands x;
    if (form == Form::split) {
      x = {in[0], in[1], in[2]};
    } else {
      const std::int64_t C = i64(width());
      x.q = heads(slice(in[0], -1, 0, C));
      x.k = heads(slice(in[0], -1, C, 2 * C));
      x.v = heads(slice(in[0], -1, 2 * C, 3 * C));
    }
    if (relative()) {
      x.a_K = in[sources()];
      x.a_V = in[sources() + 1];
    }
    return x;
  }
  // ... and back.
  std::vector<Tensor> laid_out(const attention::Operands& x) const {
    std::vector<Tensor> out;
    if (form == Form::split) out = {x.q, x.k, x.v};
    else out = {concat({merged(x.q), merged(x.k), merged(x.v)}, -1)};
    if (relative()) out.insert(out.end(), {x.a_K, x.a_V});
    return out;
  }
  // The same attention written with ops, on the padded layout: for packed tokens its mask also
  // hides the padding, which the kernels never read.
  attention::Composed composed() const {
    if (form != Form::tokens) return {operands(inputs), setting};
    attention::Setting padded = setting;
    padded.mask = std::make_shared<const Mask>(token_mask());
    return {operands(inputs), padded};
  }
  // (B, 1, 1, T) true at each sentence's tokens (row b T + t is place t of sentence b), ANDed
  // with a caller's mask if there is one (broadcast, as nn::mask_and does).
  Mask token_mask() const {
    Mask real = xt::zeros<bool>(Shape{d.B, 1, 1, d.T});
    for (const std::size_t row : *tokens.rows) real.data()[row] = true;
    return setting.mask ? Mask(*setting.mask && real) : real;
  }
};

// q, k and v from three tensors, or from one tensor read three times; the tables if defined.
template <class T>
Inputs<T> inputs_of(const Call& c) {
  const std::vector<Tensor>& in = c.inputs;
  const T* last = in[c.sources() - 1].data<T>().data();
  const std::size_t n = c.sources();
  return Inputs<T>{in[0].data<T>().data(), n > 1 ? in[1].data<T>().data() : last, last,
                   c.relative() ? in[n].data<T>().data() : nullptr,
                   c.relative() ? in[n + 1].data<T>().data() : nullptr};
}

// The forward kernel: returns o, and puts W into `weights`: (B, H, T, S), or on packed tokens
// each block's (L_b, L_b) one after the other.
Tensor forward_kernel(const Call& c, Tensor& weights) {
  const Dims& d = c.d;
  const Layout L = c.layout();
  return dispatch(c.inputs[0].dtype(), [&]<class T>() {
    const Inputs<T> in = inputs_of<T>(c);
    Array<T> w = c.form == Form::tokens ? Array<T>::from_shape({c.weights_size()})
                                        : Array<T>::from_shape({d.B, d.H, d.T, d.S});
    Array<T> out = Array<T>::from_shape(c.out_shape());
    const KeyFilter keys(c.setting.mask.get(), c.setting.causal, d);
    for_each_block<T>(d.B * d.H, d.T * d.R + d.T * d.S, d.S,
                      [&](std::size_t n, std::vector<T>& scratch, std::vector<char>& allowed) {
                        const Block blk = c.block(n);
                        if (blk.T == 0 && blk.S == 0) return;  // an empty sentence
                        forward_block(d, L, blk, in, keys, c.setting.scale, c.setting.drop,
                                      w.data() + blk.w, out.data(), scratch, allowed);
                      });
    weights = Tensor(std::move(w));
    return Tensor(std::move(out));
  });
}

// The backward kernel: the gradients of the inputs, in their order, from g_o and the saved W.
std::vector<Tensor> backward_kernel(const Call& c, const Tensor& g_o, const Tensor& weights) {
  const Dims& d = c.d;
  const Layout L = c.layout();
  return dispatch(g_o.dtype(), [&]<class T>() {
    const Inputs<T> in = inputs_of<T>(c);
    const Array<T>& w = weights.data<T>();
    const Array<T>& g_out = g_o.data<T>();
    std::vector<Array<T>> g_sources;
    for (std::size_t i = 0; i < c.sources(); ++i)
      g_sources.push_back(Array<T>::from_shape(c.inputs[i].shape()));
    Array<T> rows_key, rows_val;  // (B H T, R) each
    if (c.relative()) {
      rows_key = Array<T>::from_shape({d.B * d.H * d.T, d.R});
      rows_val = Array<T>::from_shape({d.B * d.H * d.T, d.R});
    }
    T* last = g_sources.back().data();
    const GradOutputs<T> out{g_sources[0].data(), c.sources() > 1 ? g_sources[1].data() : last,
                             last, rows_key.data(), rows_val.data()};
    for_each_block<T>(d.B * d.H, 2 * d.T * d.S + d.T * d.R, d.S,
                      [&](std::size_t n, std::vector<T>& scratch, std::vector<char>&) {
                        const Block blk = c.block(n);
                        if (blk.T == 0 && blk.S == 0) return;  // an empty sentence
                        backward_block(d, L, n, blk, in, c.setting.scale, c.setting.drop,
                                       w.data() + blk.w, g_out.data(), out, scratch);
                      });
    std::vector<Tensor> grads;
    for (Array<T>& g : g_sources) grads.emplace_back(std::move(g));
    if (!c.relative()) return grads;
    // Table gradients: the blocks' rows summed block after block, in order.
    Array<T> g_rk = xt::zeros<T>(Shape{d.R, d.D}), g_rv = xt::zeros<T>(Shape{d.R, d.D});
    for (std::size_t n = 0; n < d.B * d.H; ++n) {
      const Block blk = c.block(n);
      if (blk.T == 0) continue;
      const GemmArgs rows{.trans_a = true, .M = d.R, .N = d.D, .K = blk.T, .lda = d.R};
      GemmArgs from_q = rows, from_g = rows;
      from_q.ldb = L.q;
      from_g.ldb = L.out;
      gemm_serial(from_q, rows_key.data() + n * d.T * d.R, in.q + blk.q, g_rk.data(), T(1));
      gemm_serial(from_g, rows_val.data() + n * d.T * d.R, g_out.data() + blk.out, g_rv.data(),
                  T(1));
    }
    grads.emplace_back(std::move(g_rk));
    grads.emplace_back(std::move(g_rv));
    return grads;
  });
}

// Tangents t[from], t[from + 1], ... (zeros where an input has none).
std::vector<Tensor> tangents_from(const Tangents& t, std::size_t from) {
  std::vector<Tensor> out;
  for (std::size_t i = from; i < t.size(); ++i) out.push_back(t[i]);
  return out;
}

// g_x = B(g_o, x), the gradients of <g_o, o>, by the backward kernel: one op per input x_i
// (all from one run of the kernel), each with the rules
//   g_{g_o} = do along dx,  g_x = Hess dx;   d(g_x_i) = B(dg_o, x)_i + (Hess dx)_i
// with dx = (0, .., c, .., 0), the op's cotangent c put at input i (vjp), or the inputs'
// tangents (jvp).  B is linear in g_o with Jacobian (do/dx)^T, whence the terms in g_o; its
// Jacobian in x is the Hessian of <g_o, o>, symmetric, so both rules take the same product
// Hess dx: the tangent of the composed form's gradients (Composed::gradients_tangent).
std::vector<Tensor> attention_backward(const std::shared_ptr<const Call>& c, const Tensor& g_o,
                                       const Tensor& weights) {
  std::vector<Tensor> grads = backward_kernel(*c, g_o, weights);
  std::vector<Tensor> inputs = {g_o};
  inputs.insert(inputs.end(), c->inputs.begin(), c->inputs.end());
  if (!needs_grad(inputs)) return grads;
  const char* op = c->form == Form::split ? "fused_attention_backward"
                   : c->form == Form::qkv ? "fused_self_attention_backward"
                                          : "fused_token_attention_backward";
  for (std::size_t i = 0; i < grads.size(); ++i)
    record(
        op, grads[i], inputs, i == 0 ? saved_bytes(weights) : 0,  // W counted once, not per op
        [c, g_o, i](const Tensor& cotangent, Grads& g) {
          std::vector<Tensor> along(c->inputs.size());
          for (std::size_t j = 0; j < along.size(); ++j)
            along[j] = j == i ? cotangent : zeros_like(c->inputs[j]);
          const attention::Composed a = c->composed();
          const attention::Operands dx = c->operands(along);
          if (g.wanted(0)) g.add(0, c->merged(a.tangent(dx)));
          bool any = false;
          for (std::size_t j = 1; j <= c->inputs.size(); ++j) any = any || g.wanted(j);
          if (!any) return;
          const std::vector<Tensor> hess = c->laid_out(a.gradients_tangent(c->heads(g_o), dx));
          for (std::size_t j = 0; j < hess.size(); ++j)
            if (g.wanted(j + 1)) g.add(j + 1, hess[j]);
        },
        [c, g_o, weights, i](const Tangents& t) {
          const attention::Composed a = c->composed();
          const attention::Operands dx = c->operands(tangents_from(t, 1));
          Tensor d = c->laid_out(a.gradients_tangent(c->heads(g_o), dx))[i];
          if (t.has(0)) d = d + attention_backward(c, t[0], weights)[i];
          return d;
        });
  return grads;
}

// y = attention(x), x = (q, k, v [, a_K, a_V]), by the forward kernel, which saves W;
//   g_x = B(g_y, x) (attention_backward);  dy = mix(dW M, V) + mix(W', dV) (Composed::tangent)
Tensor attention_op(const char* op, const std::shared_ptr<const Call>& c) {
  Tensor weights;  // W, kept for backward
  Tensor y = forward_kernel(*c, weights);
  if (!needs_grad(c->inputs)) return y;
  record(
      op, y, c->inputs, saved_bytes(weights),
      [c, weights](const Tensor& g_y, Grads& g) {
        std::vector<Tensor> grads = attention_backward(c, g_y, weights);
        for (std::size_t i = 0; i < grads.size(); ++i)
          if (g.wanted(i)) g.add(i, std::move(grads[i]));
      },
      [c](const Tangents& t) {
        const attention::Composed a = c->composed();
        return c->merged(a.tangent(c->operands(tangents_from(t, 0))));
      });
  return y;
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
}

// q, k, v (heads split) checked: the sizes of the call.
Dims split_dims(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                const AttentionArgs& args) {
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
  return d;
}

// qkv (B, T, 3C) checked: the sizes of the call.
Dims qkv_dims(const char* op, const Tensor& qkv, std::size_t heads, const AttentionArgs& args) {
  check_defined(op, qkv);
  if (qkv.dim() != 3 || heads == 0 || qkv.shape()[2] % (3 * heads) != 0)
    fail(op, "needs qkv (B, T, 3C) with C a multiple of the " + std::to_string(heads) +
                 " heads: got " + shape_str(qkv.shape()));
  const std::size_t B = qkv.shape()[0], T = qkv.shape()[1], C = qkv.shape()[2] / 3;
  Dims d{B, heads, T, T, C / heads, 0};
  check_args(op, d, qkv, args);
  return d;
}

// qkv (N, 3C) on packed tokens checked: the padded sizes of the call, and where each
// sentence's rows start (its end at b + 1).
Dims token_dims(const char* op, const Tensor& qkv, std::size_t heads, const PackedTokens& tokens,
                const AttentionArgs& args, std::vector<std::size_t>& first_row) {
  check_defined(op, qkv);
  if (!tokens.rows) fail(op, "no packed rows given (a null list)");
  const std::vector<std::size_t>& rows = *tokens.rows;
  if (qkv.dim() != 2 || heads == 0 || qkv.shape()[1] % (3 * heads) != 0 ||
      qkv.shape()[0] != rows.size())
    fail(op, "needs qkv (N, 3C) with N = " + std::to_string(rows.size()) +
                 " packed tokens and C a multiple of the " + std::to_string(heads) +
                 " heads: got " + shape_str(qkv.shape()));
  const std::size_t B = tokens.batch, T = tokens.length;
  first_row.assign(B + 1, 0);  // sentence b's count at b + 1 first, then summed
  for (std::size_t n = 0; n < rows.size(); ++n) {
    const std::size_t b = T > 0 ? rows[n] / T : B, t = T > 0 ? rows[n] % T : 0;
    if (b >= B || (n > 0 && rows[n] <= rows[n - 1]))
      fail(op, "packed rows must increase and lie below B T = " + std::to_string(B * T) + ": row " +
                   std::to_string(n) + " is " + std::to_string(rows[n]));
    if (t != first_row[b + 1])
      fail(op, "each sentence's tokens must stand at its first places: packed row " +
                   std::to_string(n) + " is place " + std::to_string(t) + " of sentence " +
                   std::to_string(b) + ", which has " + std::to_string(first_row[b + 1]) +
                   " tokens before it");
    ++first_row[b + 1];
  }
  for (std::size_t b = 0; b < B; ++b) first_row[b + 1] += first_row[b];
  const std::size_t C = qkv.shape()[1] / 3;
  Dims d{B, heads, T, T, C / heads, 0};
  check_args(op, d, qkv, args);
  return d;
}

// The one generator draw a call takes for dropout (none without dropout in training), as
// dropout() takes it.
std::uint64_t take_draw(const char* op, const AttentionArgs& args) {
  if (!(args.training && args.dropout > 0)) return 0;
  if (!args.gen) fail(op, "dropout in training needs a generator");
  return args.gen->next_u64();
}

std::shared_ptr<Call> make_call(const Dims& d, Form form, std::vector<Tensor> sources,
                                const AttentionArgs& args, std::uint64_t draw) {
  auto c = std::make_shared<Call>();
  c->d = d;
  c->form = form;
  // The rules may run after the caller's mask is gone: they keep a copy.
  c->setting = {.scale = args.scale,
                .mask = args.mask ? std::make_shared<const Mask>(*args.mask) : nullptr,
                .causal = args.causal,
                .relative_k = args.relative_k};
  if (args.training && args.dropout > 0)
    c->setting.drop = {.seed = draw,
                       .threshold = static_cast<std::uint64_t>(args.dropout * 4294967296.0),
                       .keep = 1.0 / (1.0 - args.dropout)};
  c->inputs = std::move(sources);
  if (c->relative()) c->inputs.insert(c->inputs.end(), {args.rel_key, args.rel_value});
  return c;
}

// g_out must be shaped like the op's output.
void check_output_gradient(const char* op, const Tensor& g_out, const Call& c) {
  check_defined(op, g_out);
  if (g_out.shape() != c.out_shape() || g_out.dtype() != c.inputs[0].dtype())
    fail(op, "g_out must be the output's shape " + shape_str(c.out_shape()) + " and dtype " +
                 dtype_name(c.inputs[0].dtype()) + ": got " + shape_str(g_out.shape()) + " " +
                 dtype_name(g_out.dtype()));
}

// A call on packed tokens: make_call's, with the sentences' rows and weights.
std::shared_ptr<const Call> token_call(const Dims& d, const Tensor& qkv, const PackedTokens& tokens,
                                       std::vector<std::size_t> first_row,
                                       const AttentionArgs& args, std::uint64_t draw) {
  std::shared_ptr<Call> c = make_call(d, Form::tokens, {qkv}, args, draw);
  c->tokens = tokens;
  c->first_row = std::move(first_row);
  c->first_weight.assign(d.B + 1, 0);
  for (std::size_t b = 0; b < d.B; ++b) {
    const std::size_t L = c->first_row[b + 1] - c->first_row[b];
    c->first_weight[b + 1] = c->first_weight[b] + d.H * L * L;
  }
  return c;
}

// The backward op called by itself: W computed again by the forward kernel.
std::vector<Tensor> backward_from_scratch(const char* op, const Tensor& g_out,
                                          const std::shared_ptr<const Call>& c) {
  check_output_gradient(op, g_out, *c);
  Tensor weights;
  forward_kernel(*c, weights);
  return attention_backward(c, g_out, weights);
}

}  // namespace

// q: (B, H, T, D), k, v: (B, H, S, D) [, rel_key, rel_value: (2k + 1, D)] -> (B, H, T, D)
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionArgs& args) {
  const char* op = "fused_attention";
  const Dims d = split_dims(op, q, k, v, args);
  return attention_op(op, make_call(d, Form::split, {q, k, v}, args, take_draw(op, args)));
}

// qkv: (B, T, 3C), C = H D, [tables] -> (B, T, C): self-attention on a projection's output,
// each head read in place (no slice, no permute).
Tensor fused_self_attention(const Tensor& qkv, std::size_t heads, const AttentionArgs& args) {
  const char* op = "fused_self_attention";
  const Dims d = qkv_dims(op, qkv, heads, args);
  return attention_op(op, make_call(d, Form::qkv, {qkv}, args, take_draw(op, args)));
}

// qkv: (N, 3C), the real tokens of B sentences packed, [tables] -> (N, C): the same as
// fused_self_attention on the padded (B, T, 3C) with the padding masked, at the real tokens, and
// nothing computed for the padding.
Tensor fused_token_attention(const Tensor& qkv, std::size_t heads, const PackedTokens& tokens,
                             const AttentionArgs& args) {
  const char* op = "fused_token_attention";
  std::vector<std::size_t> first_row;
  const Dims d = token_dims(op, qkv, heads, tokens, args, first_row);
  return attention_op(op,
                      token_call(d, qkv, tokens, std::move(first_row), args, take_draw(op, args)));
}

// g_out: (B, H, T, D) -> the gradients of q, k, v [, rel_key, rel_value]
std::vector<Tensor> fused_attention_backward(const Tensor& g_out, const Tensor& q, const Tensor& k,
                                             const Tensor& v, const AttentionArgs& args,
                                             std::uint64_t draw) {
  const char* op = "fused_attention_backward";
  const Dims d = split_dims(op, q, k, v, args);
  return backward_from_scratch(op, g_out, make_call(d, Form::split, {q, k, v}, args, draw));
}

// g_out: (B, T, C) -> the gradients of qkv [, rel_key, rel_value]
std::vector<Tensor> fused_self_attention_backward(const Tensor& g_out, const Tensor& qkv,
                                                  std::size_t heads, const AttentionArgs& args,
                                                  std::uint64_t draw) {
  const char* op = "fused_self_attention_backward";
  const Dims d = qkv_dims(op, qkv, heads, args);
  return backward_from_scratch(op, g_out, make_call(d, Form::qkv, {qkv}, args, draw));
}

// g_out: (N, C) -> the gradients of qkv [, rel_key, rel_value]
std::vector<Tensor> fused_token_attention_backward(const Tensor& g_out, const Tensor& qkv,
                                                   std::size_t heads, const PackedTokens& tokens,
                                                   const AttentionArgs& args, std::uint64_t draw) {
  const char* op = "fused_token_attention_backward";
  std::vector<std::size_t> first_row;
  const Dims d = token_dims(op, qkv, heads, tokens, args, first_row);
  return backward_from_scratch(op, g_out,
                               token_call(d, qkv, tokens, std::move(first_row), args, draw));
}

// The same as fused_attention, with ops (attention_composed.hpp).
Tensor attention_composed(const Tensor& q, const Tensor& k, const Tensor& v,
                          const AttentionArgs& args) {
  const char* op = "attention_composed";
  const Dims d = split_dims(op, q, k, v, args);
  const auto c = make_call(d, Form::split, {q, k, v}, args, take_draw(op, args));
  return attention::Composed(c->operands(c->inputs), c->setting).output();
}

}  // namespace tg

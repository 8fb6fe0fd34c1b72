// Matrix products: matmul, linear, and matmul_transposed, the product their derivatives are
// made of.  The products themselves are in runtime/gemm.cpp.
//
// matmul follows numpy.matmul (not numpy.dot): the last two dims are the matrices, the dims
// before them are batch dims that broadcast.  The derivatives of y = a b,
//   g_a = g_y b^T,  g_b = a^T g_y  (each summed over the batch dims its operand was broadcast
//   along),  dy = da b + a db,
// are products with a transposed operand.  gemm reads an operand transposed in place (a flag,
// never a copy), so matmul_transposed(a, ta, b, tb, shape) = op(a) op(b) summed down to `shape`,
// op = transpose where the flag says, is one op for all of them; its own rules are such
// products again, so products differentiate to any order at the speed of the first.
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include "broadcast.hpp"
#include "ops.hpp"
#include "runtime/bf16.hpp"
#include "runtime/gemm.hpp"
#include "runtime/kernels.hpp"
#include "tape.hpp"

namespace tg {
namespace {

// C (M x N) = op(A) (M x K) op(B) (K x N) + beta C, packed row-major, in parallel tiles.
template <class T>
void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, const T* A, const T* B,
          T* C, T beta) {
  tg::gemm(GemmArgs{.trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K}, A, B, C, beta);
}

Shape batch_of(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

// Maps a flat index over the broadcast batch shape to the matrix index of an operand whose
// own batch shape broadcasts to it (dims of size 1, or missing, repeat the same matrix).
class BatchIndexer {
 public:
  BatchIndexer(const Shape& own, const Shape& batch) : batch_(batch), strides_(batch.size(), 0) {
    std::size_t stride = 1;
    for (std::size_t i = 0; i < own.size(); ++i) {
      const std::size_t d = own.size() - 1 - i;  // own dim, from the right
      const std::size_t b = batch.size() - 1 - i;
      if (own[d] != 1) strides_[b] = stride;
      stride *= own[d];
    }
  }
  std::size_t operator()(std::size_t flat) const {
    std::size_t index = 0;
    for (std::size_t d = batch_.size(); d-- > 0;) {
      index += (flat % batch_[d]) * strides_[d];
      flat /= batch_[d];
    }
    return index;
  }

 private:
  Shape batch_;
  std::vector<std::size_t> strides_;
};

// Below this many flops a product is too small to cut into tiles: a batch of them runs one
// product per task instead.
constexpr double kSmallProduct = 8e6;

// For each index i of `batch`:  C[c(i)] = op(A[a(i)]) op(B[b(i)]), with C (M x N) of the
// shape `c_shape`, returned.  C's batch shape may be smaller than `batch`: then products are
// summed into it, which is how a gradient is reduced over the dims its operand was broadcast
// along; otherwise each block is written once, with no zero fill first.
template <class T>
Array<T> batched_gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K,
                      const Array<T>& A, const Array<T>& B, const Shape& c_shape,
                      const Shape& batch) {
  const bool reduce = batch_of(c_shape) != batch;
  Array<T> C = reduce ? Array<T>(xt::zeros<T>(c_shape)) : Array<T>::from_shape(c_shape);
  const BatchIndexer ia(batch_of(A.shape()), batch), ib(batch_of(B.shape()), batch),
      ic(batch_of(c_shape), batch);
  const std::size_t count = shape_numel(batch);
  const GemmArgs p{.trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K};
  const auto product = [&](std::size_t i, auto&& kernel) {
    kernel(p, A.data() + ia(i) * M * K, B.data() + ib(i) * K * N, C.data() + ic(i) * M * N,
           reduce ? T(1) : T(0));
  };
  const double flops =
      2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  if (!std::is_same_v<T, float> || count < 2 || flops >= kSmallProduct) {
    // Few or large products (or float64, where BLAS has its own threads): one after another,
    // each cut into tiles.
    for (std::size_t i = 0; i < count; ++i) product(i, [](auto&&... a) { tg::gemm(a...); });
    return C;
  }
  // Many small products (per batch element and head): one task per block of C, each block's
  // products on one thread.  When C is reduced over the batch, a block adds its products in
  // batch order, so the sum is the same on any number of threads.
  const std::size_t blocks = shape_numel(batch_of(c_shape));
  std::vector<std::vector<std::size_t>> members(blocks);
  for (std::size_t i = 0; i < count; ++i) members[ic(i)].push_back(i);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, blocks),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t c = r.begin(); c < r.end(); ++c)
                        for (std::size_t i : members[c])
                          product(i, [](auto&&... a) { gemm_serial(a...); });
                    });
  return C;
}

// C = op(A) op(B), each op(A) (M x K) and op(B) (K x N), over the batch `batch`, summed down to
// c_shape's batch dims (see batched_gemm).  Two layouts take one tall product instead, with no
// copy: these are a layer's products, forward and backward.
template <class T>
Array<T> product(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, const Array<T>& A,
                 const Array<T>& B, const Shape& c_shape, const Shape& batch) {
  const std::size_t a_count = shape_numel(batch_of(A.shape()));
  // B one matrix and C batched as A: A's batch and row dims are rows of one product
  // (x w forward, g_y w^T backward).
  if (!ta && B.dimension() == 2 && batch_of(c_shape) == batch_of(A.shape())) {
    Array<T> C = Array<T>::from_shape(c_shape);
    gemm(false, tb, a_count * M, N, K, A.data(), B.data(), C.data(), T(0));
    return C;
  }
  // A^T B summed over a batch both share, into one matrix: the batch is part of the inner sum
  // (x^T g_y, a weight's gradient summed over every row).
  if (ta && !tb && c_shape.size() == 2 && batch_of(A.shape()) == batch_of(B.shape())) {
    Array<T> C = Array<T>::from_shape(c_shape);
    gemm(true, false, M, N, a_count * K, A.data(), B.data(), C.data(), T(0));
    return C;
  }
  return batched_gemm(ta, tb, M, N, K, A, B, c_shape, batch);
}

// y = op(a) op(b), batch dims broadcast against `shape`'s and summed down to them; shapes checked
// by the caller, `batch` the three batch shapes broadcast together.  With a' = op(a), b' = op(b):
//   g_a' = g_y b'^T,  g_b' = a'^T g_y  (transposed back where a or b was read transposed:
//   g_a = (g_y b'^T)^T = b' g_y^T),  dy = op(da) b' + a' op(db)
// Every rule is again a product with flags, so this op differentiates to any order.
Tensor product_op(const Tensor& a, bool ta, const Tensor& b, bool tb, const Shape& shape,
                  const Shape& batch) {
  const Shape& sa = a.shape();
  const std::size_t r = sa.size(), n = ta ? sa[r - 1] : sa[r - 2], k = ta ? sa[r - 2] : sa[r - 1],
                    m = shape.back();
  Tensor y = dispatch(a.dtype(), [&]<class T>() {
    return Tensor(product(ta, tb, n, m, k, a.data<T>(), b.data<T>(), shape, batch));
  });
  if (needs_grad(a, b))
    record(
        ta || tb ? "matmul_transposed" : "matmul", y, {a, b}, saved_bytes(a, b),
        [a, ta, b, tb](const Tensor& g_y, Grads& g) {
          if (g.wanted(0))
            g.add(0, ta ? matmul_transposed(b, tb, g_y, true, a.shape())
                        : matmul_transposed(g_y, false, b, !tb, a.shape()));
          if (g.wanted(1))
            g.add(1, tb ? matmul_transposed(g_y, true, a, ta, b.shape())
                        : matmul_transposed(a, !ta, g_y, false, b.shape()));
        },
        [a, ta, b, tb, shape](const Tangents& t) {
          if (!t.has(1)) return matmul_transposed(t[0], ta, b, tb, shape);
          if (!t.has(0)) return matmul_transposed(a, ta, t[1], tb, shape);
          return matmul_transposed(t[0], ta, b, tb, shape) +
                 matmul_transposed(a, ta, t[1], tb, shape);
        });
  return y;
}

// Under the bf16 policy each product rounds the operands it reads.  linear rounds g_y (millions
// of numbers in a large layer) once for both gradients, and w once in the forward pass, keeping
// that copy (in x out, small) for g_x.  x is rounded by the forward product and again by g_w's:
// a copy of it kept from the forward pass would add half of x's size to what the tape holds for
// backward (the translation workload: 361 MB against 307) for about 3% of a step.

// float32 products that read bfloat16 operands at this layer's size (the same for its three
// products: each has rows x in x out multiply-adds).
bool rounds_products(Dtype dtype, std::size_t rows, std::size_t in, std::size_t out) {
  return dtype == Dtype::f32 && rounds_to_bf16(GemmArgs{.M = rows, .N = out, .K = in});
}

// C = op(A) op(B) + beta C as gemm above, with the rounded copies of A and B where the type has
// them (float32 only).
template <class T>
void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, const T* A, const T* B,
          T* C, T beta, const Bf16Matrix& a_rounded, const Bf16Matrix& b_rounded) {
  const GemmArgs p{.trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K};
  if constexpr (std::is_same_v<T, float>) tg::gemm(p, A, B, C, beta, a_rounded, b_rounded);
  else tg::gemm(p, A, B, C, beta);
}

// linear's rule at first order (first_order, tape.hpp): the rule's three gradients computed
// straight into arrays, with none of the ops' shape checks and records.  The same formulas by
// the same kernels, so the same bits: matmul_transposed takes the same single product for each
// (product's two tall layouts, above) and sum_to the same row sum (sum_to_shape); under the
// bf16 policy the products read g_y rounded once and w as rounded in the forward pass, the same
// bits again.
//   g_x = g_y w^T:  one product over all rows, (rows, out) (out, in)^T
//   g_w = x^T g_y:  one product whose inner sum runs over all rows, (rows, in)^T (rows, out)
//   g_b = g_y summed over the rows
void linear_first_order(const Tensor& g_y, const Tensor& x, const Tensor& w, std::size_t rows,
                        bool has_bias, const Bf16Matrix& w_rounded, Grads& g) {
  const std::size_t in = w.shape()[0], out = w.shape()[1];
  dispatch(x.dtype(), [&]<class T>() {
    const T* gy = g_y.data<T>().data();
    const Bf16Matrix gy_rounded =
        g.wanted(0) && g.wanted(1) && rounds_products(x.dtype(), rows, in, out)
            ? Bf16Matrix(g_y.data<float>().data(), rows, out)
            : Bf16Matrix();
    if (g.wanted(0)) {
      Array<T> g_x = Array<T>::from_shape(x.shape());
      gemm(false, true, rows, in, out, gy, w.data<T>().data(), g_x.data(), T(0), gy_rounded,
           w_rounded);
      g.add(0, std::move(g_x));
    }
    if (g.wanted(1)) {
      Array<T> g_w = Array<T>::from_shape(w.shape());
      gemm(true, false, in, out, rows, x.data<T>().data(), gy, g_w.data(), T(0), Bf16Matrix(),
           gy_rounded);
      g.add(1, std::move(g_w));
    }
    if (has_bias && g.wanted(2)) g.add(2, sum_to_shape(g_y.data<T>(), Shape{out}));
  });
}

}  // namespace

// a: (..., n, k), b: (..., k, m) -> (..., n, m);  g_a = g_y b^T,  g_b = a^T g_y,  dy = da b + a db
Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_dtype("matmul", a, b);
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  if (sa.size() < 2 || sb.size() < 2)
    fail("matmul", "both inputs need at least 2 dims: a is " + shape_str(sa) + ", b is " +
                       shape_str(sb) + " (reshape a vector to (1, k) or (k, 1))");
  const std::size_t n = sa[sa.size() - 2], k = sa.back(), m = sb.back();
  if (sb[sb.size() - 2] != k)
    fail("matmul", "inner dimensions differ: a is " + shape_str(sa) + ", b is " + shape_str(sb));
  const Shape batch = broadcast_shapes("matmul (batch dims)", batch_of(sa), batch_of(sb));
  Shape out = batch;
  out.push_back(n);
  out.push_back(m);
  return product_op(a, false, b, false, out, batch);
}

// a: (..., n, k) or (..., k, n) with trans_a, b: (..., k, m) or (..., m, k) with trans_b
//   -> shape (..., n, m):  y = op(a) op(b) summed down to shape (rules at product_op)
Tensor matmul_transposed(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                         const Shape& shape) {
  const char* op = "matmul_transposed";
  check_same_dtype(op, a, b);
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  const auto described = [&] {
    return "a " + shape_str(sa) + (trans_a ? " (transposed)" : "") + ", b " + shape_str(sb) +
           (trans_b ? " (transposed)" : "") + ", result " + shape_str(shape);
  };
  if (sa.size() < 2 || sb.size() < 2 || shape.size() < 2)
    fail(op, "a, b and the result need at least 2 dims: " + described());
  const std::size_t ra = sa.size(), rb = sb.size();
  const std::size_t n = trans_a ? sa[ra - 1] : sa[ra - 2], k = trans_a ? sa[ra - 2] : sa[ra - 1];
  const std::size_t kb = trans_b ? sb[rb - 1] : sb[rb - 2], m = trans_b ? sb[rb - 2] : sb[rb - 1];
  if (k != kb) fail(op, "inner dimensions differ: " + described());
  if (shape[shape.size() - 2] != n || shape.back() != m)
    fail(op, "the result must end in (" + std::to_string(n) + ", " + std::to_string(m) +
                 "): " + described());
  const Shape batch = broadcast_shapes(
      "matmul_transposed (batch dims)",
      broadcast_shapes("matmul_transposed (batch dims)", batch_of(sa), batch_of(sb)),
      batch_of(shape));
  return product_op(a, trans_a, b, trans_b, shape, batch);
}

// x: (..., in), w: (in, out), b: (out) or undefined -> (..., out):  y = x w + b.
// The bias is written into y first and the product added onto it (beta = 1), so a layer costs
// one pass over y, not a product and then a broadcast add.  Rules, all rows at once:
//   g_x = g_y w^T,  g_w = x^T g_y,  g_b = g_y summed over the rows;  dy = dx w + x dw + db
// (A backward that records nothing takes the same formulas as arrays: linear_first_order.)
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_same_dtype("linear", x, w);
  if (b.defined()) check_same_dtype("linear", x, b);
  if (x.dim() < 1 || w.dim() != 2 || x.shape().back() != w.shape()[0] ||
      (b.defined() && b.shape() != Shape{w.shape()[1]}))
    fail("linear", "needs x (..., in), w (in, out) and b (out): got x " + shape_str(x.shape()) +
                       ", w " + shape_str(w.shape()) +
                       (b.defined() ? ", b " + shape_str(b.shape()) : ", no b"));
  const std::size_t in = w.shape()[0], out = w.shape()[1],
                    rows = x.numel() / std::max<std::size_t>(in, 1);
  // One x (in) is a batch of one row: the rules below read x as a matrix.
  if (x.dim() == 1)
    return reshape(linear(reshape(x, {1, static_cast<std::int64_t>(in)}), w, b),
                   {static_cast<std::int64_t>(out)});
  Shape y_shape = x.shape();
  y_shape.back() = out;
  Bf16Matrix w_rounded;  // empty: the products read float32
  if (rounds_products(x.dtype(), rows, in, out))
    w_rounded = Bf16Matrix(w.data<float>().data(), in, out);
  Tensor y = dispatch(x.dtype(), [&]<class T>() {
    Array<T> y_value = Array<T>::from_shape(y_shape);
    T beta = T(0);
    if (b.defined()) {  // every row starts as the bias
      const T* bias = b.data<T>().data();
      parallel_rows(rows, out, [&](std::size_t begin, std::size_t end) {
        for (std::size_t r = begin; r < end; ++r) std::copy_n(bias, out, y_value.data() + r * out);
      });
      beta = T(1);
    }
    gemm(false, false, rows, out, in, x.data<T>().data(), w.data<T>().data(), y_value.data(), beta,
         Bf16Matrix(), w_rounded);
    return Tensor(std::move(y_value));
  });
  const bool has_bias = b.defined();
  std::vector<Tensor> inputs{x, w};
  if (has_bias) inputs.push_back(b);
  if (!needs_grad(inputs)) return y;
  if (!needs_grad(x)) w_rounded = Bf16Matrix();  // read only for g_x
  record(
      "linear", y, inputs, saved_bytes(x, w) + w_rounded.bytes(),
      [x, w, has_bias, out, rows, w_rounded](const Tensor& g_y, Grads& g) {
        if (first_order(g_y, x, w))
          return linear_first_order(g_y, x, w, rows, has_bias, w_rounded, g);
        if (g.wanted(0)) g.add(0, matmul_transposed(g_y, false, w, true, x.shape()));
        if (g.wanted(1)) g.add(1, matmul_transposed(x, true, g_y, false, w.shape()));
        if (has_bias && g.wanted(2)) g.add(2, sum_to(g_y, Shape{out}));
      },
      [x, w, has_bias](const Tangents& t) {
        const Tensor db = has_bias && t.has(2) ? t[2] : Tensor();
        if (!t.has(1)) return linear(t[0], w, db);  // t[0]: zeros if only b has a tangent
        const Tensor x_dw = linear(x, t[1], db);
        return t.has(0) ? linear(t[0], w) + x_dw : x_dw;
      });
  return y;
}

}  // namespace tg

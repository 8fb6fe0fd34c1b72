// matmul: the op, its shape rules and its backward; the products themselves are in gemm.cpp.
//
// matmul follows numpy.matmul (not numpy.dot): the last two dims are the matrices, the dims
// before them are batch dims that broadcast.  Backward of C = A B:
//   dL/dA = dL/dC B^T     dL/dB = A^T dL/dC
// each summed over the batch dims its operand was broadcast along.
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include "broadcast.hpp"
#include "ops.hpp"
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

// Backward of one tall product, y (rows, out) = x (rows, in) w (in, out), x's leading dims
// flattened into rows:  g_x = g_y w^T (inputs' slot 0),  g_w = x^T g_y, summed over every row (slot
// 1).
template <class T>
void tall_product_backward(const Tensor& x, const Tensor& w, std::size_t rows, std::size_t in,
                           std::size_t out, const Array<T>& g_y, Grads& g) {
  if (g.wanted(0)) {
    Array<T> g_x = Array<T>::from_shape(x.shape());
    gemm(false, true, rows, in, out, g_y.data(), w.data<T>().data(), g_x.data(), T(0));
    g.add(0, std::move(g_x));
  }
  if (g.wanted(1)) {
    Array<T> g_w = Array<T>::from_shape(w.shape());
    gemm(true, false, in, out, rows, x.data<T>().data(), g_y.data(), g_w.data(), T(0));
    g.add(1, std::move(g_w));
  }
}

}  // namespace

// a: (..., n, k), b: (..., k, m) -> (..., n, m)
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

  // When b is one matrix, a's batch and row dims collapse into one tall product.
  const bool b_is_matrix = sb.size() == 2;
  const std::size_t rows = b_is_matrix ? shape_numel(batch_of(sa)) * n : n;

  Tensor y = dispatch(a.dtype(), [&]<class T>() {
    if (!b_is_matrix)
      return Tensor(batched_gemm(false, false, n, m, k, a.data<T>(), b.data<T>(), out, batch));
    Array<T> c = Array<T>::from_shape(out);
    gemm(false, false, rows, m, k, a.data<T>().data(), b.data<T>().data(), c.data(), T(0));
    return Tensor(std::move(c));
  });
  if (needs_grad(a, b))
    record("matmul", y, {a, b}, saved_bytes(a, b),
           [a, b, batch, n, k, m, rows, b_is_matrix]<class T>(const Array<T>& g_y, Grads& g) {
             if (b_is_matrix) return tall_product_backward(a, b, rows, k, m, g_y, g);
             const Array<T>& av = a.data<T>();
             const Array<T>& bv = b.data<T>();
             if (g.wanted(0))  // g_a = g_y b^T: (..., n, m) (..., m, k) -> a's shape
               g.add(0, batched_gemm(false, true, n, k, m, g_y, bv, av.shape(), batch));
             if (g.wanted(1))  // g_b = a^T g_y: (..., k, n) (..., n, m) -> b's shape
               g.add(1, batched_gemm(true, false, k, m, n, av, g_y, bv.shape(), batch));
           });
  return y;
}

// x: (..., in), w: (in, out), b: (out) or undefined -> (..., out):  y = x w + b.
// The bias is written into y first and the product added onto it (beta = 1), so a layer costs
// one pass over y, not a product and then a broadcast add.  Backward:
//   g_x = g_y w^T     g_w = x^T g_y (all rows)     g_b = g_y summed over the rows
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
  Shape y_shape = x.shape();
  y_shape.back() = out;
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
    gemm(false, false, rows, out, in, x.data<T>().data(), w.data<T>().data(), y_value.data(), beta);
    return Tensor(std::move(y_value));
  });
  const bool has_bias = b.defined();
  std::vector<Tensor> inputs{x, w};
  if (has_bias) inputs.push_back(b);
  if (needs_grad(inputs))
    record("linear", y, inputs, saved_bytes(x, w),
           [x, w, rows, in, out, has_bias]<class T>(const Array<T>& g_y, Grads& g) {
             tall_product_backward(x, w, rows, in, out, g_y, g);
             if (has_bias && g.wanted(2)) g.add(2, sum_to_shape(g_y, Shape{out}));
           });
  return y;
}

}  // namespace tg

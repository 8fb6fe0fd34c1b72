// Matrix products through OpenBLAS's cblas ?gemm.
//
// matmul follows numpy.matmul (not numpy.dot): the last two dims are the matrices, the dims
// before them are batch dims that broadcast.  Backward of C = A B:
//   dL/dA = dL/dC B^T     dL/dB = A^T dL/dC
// each summed over the batch dims its operand was broadcast along.
#include <cblas.h>

#include "broadcast.hpp"
#include "ops.hpp"
#include "tape.hpp"

namespace tg {
namespace {

// C (M x N) += op(A) (M x K) op(B) (K x N), row-major; op transposes when asked.
template <class T>
void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, const T* A,
          const T* B, T* C) {
  if (M == 0 || N == 0 || K == 0) return;
  const auto m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
  const auto op_a = ta ? CblasTrans : CblasNoTrans, op_b = tb ? CblasTrans : CblasNoTrans;
  const int lda = ta ? m : k, ldb = tb ? k : n;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, op_a, op_b, m, n, k, 1.0f, A, lda, B, ldb, 1.0f, C, n);
  else
    cblas_dgemm(CblasRowMajor, op_a, op_b, m, n, k, 1.0, A, lda, B, ldb, 1.0, C, n);
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

// For each index i of `batch`:  C[c(i)] += op(A[a(i)]) op(B[b(i)]), with C (M x N).
// C's batch shape may be smaller than `batch`: then products are summed into it, which is
// how a gradient is reduced over the dims its operand was broadcast along.
template <class T>
void batched_gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K,
                  const Array<T>& A, const Array<T>& B, Array<T>& C, const Shape& batch) {
  const BatchIndexer ia(batch_of(A.shape()), batch), ib(batch_of(B.shape()), batch),
      ic(batch_of(C.shape()), batch);
  const std::size_t count = shape_numel(batch);
  for (std::size_t i = 0; i < count; ++i)
    gemm(ta, tb, M, N, K, A.data() + ia(i) * M * K, B.data() + ib(i) * K * N,
         C.data() + ic(i) * M * N);
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
    Array<T> c = xt::zeros<T>(out);
    if (b_is_matrix)
      gemm(false, false, rows, m, k, a.data<T>().data(), b.data<T>().data(), c.data());
    else
      batched_gemm(false, false, n, m, k, a.data<T>(), b.data<T>(), c, batch);
    return Tensor(std::move(c));
  });
  if (needs_grad(a, b))
    record("matmul", y, {a, b}, saved_bytes(a, b),
           [a, b, batch, n, k, m, rows, b_is_matrix]<class T>(const Array<T>& g_y, Grads& g) {
             const Array<T>& av = a.data<T>();
             const Array<T>& bv = b.data<T>();
             if (g.wanted(0)) {  // g_a = g_y b^T: (..., n, m) (..., m, k) -> a's shape
               Array<T> g_a = xt::zeros<T>(av.shape());
               if (b_is_matrix)
                 gemm(false, true, rows, k, m, g_y.data(), bv.data(), g_a.data());
               else
                 batched_gemm(false, true, n, k, m, g_y, bv, g_a, batch);
               g.add(0, std::move(g_a));
             }
             if (g.wanted(1)) {  // g_b = a^T g_y: (..., k, n) (..., n, m) -> b's shape
               Array<T> g_b = xt::zeros<T>(bv.shape());
               if (b_is_matrix)
                 gemm(true, false, k, m, rows, av.data(), g_y.data(), g_b.data());
               else
                 batched_gemm(true, false, k, m, n, av, g_y, g_b, batch);
               g.add(1, std::move(g_b));
             }
           });
  return y;
}

}  // namespace tg

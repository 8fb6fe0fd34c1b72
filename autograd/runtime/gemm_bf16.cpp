#include "gemm_bf16.hpp"

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include "bf16.hpp"
#include "gemm.hpp"
#include "libraries.hpp"

namespace tg::detail {
namespace {

// Products below this many multiply-adds stay float32 under the bf16 policy: on them a oneDNN
// call's fixed cost of a few microseconds, or rounding the operands for the float32 kernels,
// costs more than the product itself (a 32 x 32 x 32 attention block ran 8x slower rounded:
// build/bench/gemm-bench, docs/speed.md).  The choice depends on the shape only, so a model
// rounds the same products on every CPU.
constexpr double kMinBf16Macs = 1 << 20;

// Rows of a stored operand rounded per task, when rounding runs in parallel.
constexpr std::size_t kRoundGrain = 64;

// The stored matrix X (rows x cols, leading dimension ld) rounded to bfloat16 into `out`, packed
// (leading dimension cols): as bits (uint16) or as float32 values.
template <class Out>
void round_packed(const float* X, std::size_t rows, std::size_t cols, std::size_t ld, Out* out,
                  bool parallel) {
  const auto round_rows = [&](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r) {
      if constexpr (std::is_same_v<Out, float>) round_bf16(X + r * ld, out + r * cols, cols);
      else to_bf16(X + r * ld, out + r * cols, cols);
    }
  };
  if (!parallel || rows * cols < 16 * 1024) return round_rows(0, rows);
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(0, rows, kRoundGrain),
      [&](const tbb::blocked_range<std::size_t>& r) { round_rows(r.begin(), r.end()); });
}

// op(A)'s and op(B)'s stored shapes: A is M x K (K x M when transposed), B is K x N (N x K).
struct Stored {
  std::size_t a_rows, a_cols, b_rows, b_cols;
};
Stored stored(const GemmArgs& p) {
  return {p.trans_a ? p.K : p.M, p.trans_a ? p.M : p.K, p.trans_b ? p.N : p.K,
          p.trans_b ? p.K : p.N};
}

// ---- oneDNN's matmul --------------------------------------------------------------------------

void check(dnnl_status_t status, const char* call, const GemmArgs& p) {
  if (status != dnnl_success)
    throw std::runtime_error("gemm (bf16): oneDNN's " + std::string(call) + " failed (status " +
                             std::to_string(status) + ") for M " + std::to_string(p.M) + ", N " +
                             std::to_string(p.N) + ", K " + std::to_string(p.K));
}

dnnl_engine_t engine() {
  static const dnnl_engine_t e = [] {
    dnnl_engine_t made = nullptr;
    if (onednn_matmul().engine_create(&made, dnnl_cpu, 0) != dnnl_success)
      throw std::runtime_error("gemm (bf16): oneDNN cannot create its CPU engine");
    return made;
  }();
  return e;
}

// One thread's stream (each product runs on the thread that calls it), destroyed with the thread.
class Stream {
 public:
  Stream() {
    if (onednn_matmul().stream_create(&stream_, engine(), dnnl_stream_default_flags) !=
        dnnl_success)
      throw std::runtime_error("gemm (bf16): oneDNN cannot create a stream");
  }
  ~Stream() { onednn_matmul().stream_destroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  dnnl_stream_t get() const { return stream_; }

 private:
  dnnl_stream_t stream_ = nullptr;
};

dnnl_stream_t stream() {
  thread_local const Stream s;
  return s.get();
}

// A matmul primitive for one shape, layout and beta, with the three memory objects it runs on
// (their data pointers set at each call).  dst = src x weights (+ dst with the sum post-op).
class Matmul {
 public:
  explicit Matmul(const GemmArgs& p, bool accumulate) {
    const OneDnnMatmul& dnnl = onednn_matmul();
    const auto d = [](std::size_t n) { return static_cast<dnnl_dim_t>(n); };
    // src (M, K): row m, column k at m * lda + k, or at k * lda + m when transposed.
    const dnnl_dims_t src_dims = {d(p.M), d(p.K)}, wei_dims = {d(p.K), d(p.N)},
                      dst_dims = {d(p.M), d(p.N)};
    const dnnl_dims_t src_strides = {p.trans_a ? 1 : d(p.lda), p.trans_a ? d(p.lda) : 1};
    const dnnl_dims_t wei_strides = {p.trans_b ? 1 : d(p.ldb), p.trans_b ? d(p.ldb) : 1};
    const dnnl_dims_t dst_strides = {d(p.ldc), 1};
    dnnl_memory_desc_t src, wei, dst;
    check(dnnl.memory_desc_init_by_strides(&src, 2, src_dims, dnnl_bf16, src_strides),
          "memory_desc_init_by_strides", p);
    check(dnnl.memory_desc_init_by_strides(&wei, 2, wei_dims, dnnl_bf16, wei_strides),
          "memory_desc_init_by_strides", p);
    check(dnnl.memory_desc_init_by_strides(&dst, 2, dst_dims, dnnl_f32, dst_strides),
          "memory_desc_init_by_strides", p);
    dnnl_matmul_desc_t desc;
    check(dnnl.matmul_desc_init(&desc, &src, &wei, nullptr, &dst), "matmul_desc_init", p);
    dnnl_primitive_attr_t attr = nullptr;
    check(dnnl.primitive_attr_create(&attr), "primitive_attr_create", p);
    if (accumulate) {  // beta = 1: the sum post-op adds what dst held
      dnnl_post_ops_t ops = nullptr;
      check(dnnl.post_ops_create(&ops), "post_ops_create", p);
      check(dnnl.post_ops_append_sum(ops, 1.0f), "post_ops_append_sum", p);
      check(dnnl.primitive_attr_set_post_ops(attr, ops), "primitive_attr_set_post_ops", p);
      dnnl.post_ops_destroy(ops);
    }
    dnnl_primitive_desc_t pd = nullptr;
    const dnnl_status_t made = dnnl.primitive_desc_create(&pd, &desc, attr, engine(), nullptr);
    dnnl.primitive_attr_destroy(attr);
    check(made, "primitive_desc_create", p);
    const dnnl_status_t built = dnnl.primitive_create(&primitive_, pd);
    dnnl.primitive_desc_destroy(pd);
    check(built, "primitive_create", p);
    check(dnnl.memory_create(&src_, &src, engine(), DNNL_MEMORY_NONE), "memory_create", p);
    check(dnnl.memory_create(&wei_, &wei, engine(), DNNL_MEMORY_NONE), "memory_create", p);
    check(dnnl.memory_create(&dst_, &dst, engine(), DNNL_MEMORY_NONE), "memory_create", p);
  }
  ~Matmul() {
    const OneDnnMatmul& dnnl = onednn_matmul();
    dnnl.memory_destroy(src_), dnnl.memory_destroy(wei_), dnnl.memory_destroy(dst_);
    dnnl.primitive_destroy(primitive_);
  }
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  void run(const GemmArgs& p, const std::uint16_t* A, const std::uint16_t* B, float* C) {
    const OneDnnMatmul& dnnl = onednn_matmul();
    check(dnnl.memory_set_data_handle(src_, const_cast<std::uint16_t*>(A)), "set_data_handle", p);
    check(dnnl.memory_set_data_handle(wei_, const_cast<std::uint16_t*>(B)), "set_data_handle", p);
    check(dnnl.memory_set_data_handle(dst_, C), "set_data_handle", p);
    const dnnl_exec_arg_t args[] = {
        {DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, wei_}, {DNNL_ARG_DST, dst_}};
    check(dnnl.primitive_execute(primitive_, stream(), 3, args), "primitive_execute", p);
    check(dnnl.stream_wait(stream()), "stream_wait", p);
  }

 private:
  dnnl_primitive_t primitive_ = nullptr;
  dnnl_memory_t src_ = nullptr, wei_ = nullptr, dst_ = nullptr;
};

// Each thread keeps the primitives of the shapes it has run (a model has a few dozen).
using MatmulKey = std::tuple<bool, bool, std::size_t, std::size_t, std::size_t, std::size_t,
                             std::size_t, std::size_t, bool>;

Matmul& matmul_for(const GemmArgs& p, bool accumulate) {
  thread_local std::map<MatmulKey, std::unique_ptr<Matmul>> cache;
  const MatmulKey key{p.trans_a, p.trans_b, p.M, p.N, p.K, p.lda, p.ldb, p.ldc, accumulate};
  std::unique_ptr<Matmul>& m = cache[key];
  if (!m) m = std::make_unique<Matmul>(p, accumulate);
  return *m;
}

}  // namespace

}  // namespace tg::detail

namespace tg {

bool rounds_to_bf16(const GemmArgs& p) {
  return precision() == Precision::bf16 && multiply_adds(p) >= detail::kMinBf16Macs;
}

Bf16Matrix::Bf16Matrix(const float* x, std::size_t rows, std::size_t cols)
    : rows_(rows), cols_(cols) {
  if (precision() != Precision::bf16) return;  // empty: the products read float32
  if (bf16_kernel_in_use() == Bf16Kernel::onednn) {
    auto bits = std::make_unique_for_overwrite<std::uint16_t[]>(rows * cols);
    detail::round_packed(x, rows, cols, cols, bits.get(), /*parallel=*/true);
    bits_ = std::move(bits);
  } else {
    auto values = std::make_unique_for_overwrite<float[]>(rows * cols);
    detail::round_packed(x, rows, cols, cols, values.get(), /*parallel=*/true);
    values_ = std::move(values);
  }
}

std::size_t Bf16Matrix::bytes() const {
  return rows_ * cols_ * (bits_ ? sizeof(std::uint16_t) : values_ ? sizeof(float) : 0);
}

}  // namespace tg

namespace tg::detail {

void onednn_bf16_kernel(const GemmArgs& p, const std::uint16_t* A, const std::uint16_t* B, float* C,
                        float beta) {
  if (beta != 0.0f && beta != 1.0f)
    throw std::invalid_argument("gemm (bf16): beta must be 0 or 1, got " + std::to_string(beta));
  matmul_for(p, beta == 1.0f).run(p, A, B, C);
}

namespace {

// The rounded copy a product may read for an operand stored rows x cols: null when there is
// none (the product rounds the operand itself).  A copy of another shape is a caller's mistake.
const Bf16Matrix* usable(const Bf16Matrix* rounded, std::size_t rows, std::size_t cols,
                         const char* operand) {
  if (rounded == nullptr || rounded->empty()) return nullptr;
  if (rounded->rows() != rows || rounded->cols() != cols)
    throw std::invalid_argument("gemm (bf16): the rounded copy of " + std::string(operand) +
                                " is " + std::to_string(rounded->rows()) + " x " +
                                std::to_string(rounded->cols()) + ", the operand is stored " +
                                std::to_string(rows) + " x " + std::to_string(cols));
  return rounded;
}

// An operand as the kernel reads it: the rounded copy given, or one made here (packed, rounded
// in parallel when the product is), kept alive by `own`.
template <class Out>
const Out* rounded_operand(const Bf16Matrix* given, const float* X, std::size_t rows,
                           std::size_t cols, std::size_t ld, bool parallel,
                           std::unique_ptr<Out[]>& own) {
  if (given != nullptr) {
    if constexpr (std::is_same_v<Out, float>) return given->values();
    else return given->bits();
  }
  own = std::make_unique_for_overwrite<Out[]>(rows * cols);
  round_packed(X, rows, cols, ld, own.get(), parallel);
  return own.get();
}

}  // namespace

// The operands are rounded once, packed, before any tile runs (or were rounded before the call):
// on oneDNN as bfloat16 bits, in the emulation as float32 values that the float32 kernels read
// (the same products: a product of two bfloat16 numbers is exact in float32).  Buffers made here
// are each call's own, not filled before they are written (a TBB thread waiting for this call's
// tiles may run another product).
void gemm_bf16(const GemmArgs& p, const float* A, const float* B, float* C, float beta,
               bool parallel, const Bf16Matrix* a_rounded, const Bf16Matrix* b_rounded) {
  if (!rounds_to_bf16(p)) return gemm_f32(p, A, B, C, beta, parallel);
  const Stored s = stored(p);
  const Bf16Matrix* ra = usable(a_rounded, s.a_rows, s.a_cols, "A");
  const Bf16Matrix* rb = usable(b_rounded, s.b_rows, s.b_cols, "B");
  GemmArgs packed = p;
  packed.lda = s.a_cols;
  packed.ldb = s.b_cols;
  if (bf16_kernel_in_use() == Bf16Kernel::onednn) {
    std::unique_ptr<std::uint16_t[]> own_a, own_b;
    const std::uint16_t* a = rounded_operand(ra, A, s.a_rows, s.a_cols, p.lda, parallel, own_a);
    const std::uint16_t* b = rounded_operand(rb, B, s.b_rows, s.b_cols, p.ldb, parallel, own_b);
    gemm_onednn_bf16(packed, a, b, C, beta, parallel);
    return;
  }
  std::unique_ptr<float[]> own_a, own_b;
  const float* a = rounded_operand(ra, A, s.a_rows, s.a_cols, p.lda, parallel, own_a);
  const float* b = rounded_operand(rb, B, s.b_rows, s.b_cols, p.ldb, parallel, own_b);
  gemm_f32(packed, a, b, C, beta, parallel);
}

}  // namespace tg::detail

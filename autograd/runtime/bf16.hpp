// bfloat16 products: the precision policy, rounding, and which kernel runs them.
//
// bfloat16 keeps float32's sign and 8-bit exponent and 7 of its 23 mantissa bits: the upper half
// of a float32.  So it has float32's range (no loss scaling, Kalamkar et al. 2019) and about 3
// significant digits.  Under the bf16 policy every float32 matrix product of at least 2^20
// multiply-adds (the linear layers and the output layer, forward and backward) reads its two
// operands rounded to bfloat16, to nearest with ties to even, multiplies them exactly and sums in
// float32.  Smaller products (attention's per-head blocks, a tiny model's layers) stay float32,
// where rounding costs more than it saves; so do layer norm, softmax, the losses, the optimizer
// and the weights themselves.  Tensors stay float32: the rounding happens as a product reads its
// operands, or once before several products that read the same one (Bf16Matrix below: linear
// rounds its output gradient once for both of its gradients).
//
//   tg::PrecisionGuard bf16(tg::Precision::bf16);   // products in bfloat16 until the guard ends
//
// Kernels (gemm.cpp calls them): on a CPU with bfloat16 instructions (AVX512_BF16, AMX) the
// rounded products run on oneDNN's bfloat16 matmul; on other CPUs the float32 kernels run on the
// rounded operands ("emulated"), which is the same arithmetic: a product of two bfloat16 numbers
// is exact in float32.  TAPEGRAD_BF16_KERNEL=emulated runs the suite as it runs on a CPU without
// bfloat16 instructions, and so does ONEDNN_MAX_CPU_ISA set below AVX512_CORE_BF16 (which
// leaves oneDNN no bfloat16 kernels).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../named_enum.hpp"

namespace tg {

// ---- rounding ---------------------------------------------------------------------------------

// The bfloat16 nearest to x (ties to even), as its 16 bits; a NaN stays a (quiet) NaN.  On the
// bits: add 0x7fff, plus 1 when the kept half is odd, and cut.  A tie (the lower half exactly
// 0x8000) carries into the kept half only when that half is odd; anything above a tie always
// carries, anything below never.  A carry out of the mantissa moves to the next exponent, which
// is the right rounding too (up to infinity past the largest).  Inline, so that loops over arrays
// vectorise.
inline std::uint16_t to_bf16(float x) {
  const auto bits = std::bit_cast<std::uint32_t>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u)  // NaN: keep it a NaN (quiet), whatever its payload
    return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);
  return static_cast<std::uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}
// The float32 of a bfloat16's bits (exact).
inline float from_bf16(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}
// x rounded to the nearest bfloat16, as a float32.
inline float round_bf16(float x) { return from_bf16(to_bf16(x)); }

// Whole arrays: out[i] = to_bf16(in[i]), or round_bf16(in[i]) (out may be in), for i < n.
void to_bf16(const float* in, std::uint16_t* out, std::size_t n);
void round_bf16(const float* in, float* out, std::size_t n);

// A float32 matrix (rows x cols, packed) rounded to bfloat16 once, for several products that
// read it: a linear layer's output gradient is read by both of its gradients, its weight by the
// forward product and by the input's gradient (tg::gemm's rounded operands, gemm.hpp).  It holds
// what the kernel in use reads: bfloat16 bits for oneDNN, or the rounded values as float32 for the
// emulation.  Empty when made under the f32 policy: the products then read the float32 values.
class Bf16Matrix {
 public:
  Bf16Matrix() = default;
  Bf16Matrix(const float* x, std::size_t rows, std::size_t cols);  // rounds in parallel

  bool empty() const { return !bits_ && !values_; }
  std::size_t rows() const { return rows_; }
  std::size_t cols() const { return cols_; }
  std::size_t bytes() const;
  const std::uint16_t* bits() const { return bits_.get(); }  // oneDNN's kernel, else null
  const float* values() const { return values_.get(); }      // the emulation, else null

 private:
  std::size_t rows_ = 0, cols_ = 0;
  std::shared_ptr<const std::uint16_t[]> bits_;  // shared: copies are cheap (a tape keeps them)
  std::shared_ptr<const float[]> values_;
};

// ---- the policy -------------------------------------------------------------------------------

enum class Precision { f32, bf16 };
// Names for --precision and messages: enum_name(p), enum_from_name<Precision>("bf16").
constexpr auto enum_table(Precision) {
  return named_values<Precision>("precision", {{Precision::f32, "f32"}, {Precision::bf16, "bf16"}});
}

// The precision of float32 products, for every thread (f32 unless set).
Precision precision();
void set_precision(Precision p);

// Sets the precision for its lifetime and restores the one before.
class PrecisionGuard {
 public:
  explicit PrecisionGuard(Precision p) : before_(precision()) { set_precision(p); }
  ~PrecisionGuard() { set_precision(before_); }
  PrecisionGuard(const PrecisionGuard&) = delete;
  PrecisionGuard& operator=(const PrecisionGuard&) = delete;

 private:
  Precision before_;
};

// ---- kernels ----------------------------------------------------------------------------------

enum class Bf16Kernel { onednn, emulated };
constexpr auto enum_table(Bf16Kernel) {
  return named_values<Bf16Kernel>(
      "bf16 kernel", {{Bf16Kernel::onednn, "onednn"}, {Bf16Kernel::emulated, "emulated"}});
}

// True when the CPU reports AVX512_BF16 (vdpbf16ps) or AMX's bfloat16 tiles.
bool cpu_has_bf16();
// The kernel bfloat16 products use: onednn on a CPU with bfloat16 instructions, else emulated,
// or the one TAPEGRAD_BF16_KERNEL names (onednn on a CPU without them throws at the first
// product, naming the variable).
Bf16Kernel bf16_kernel_in_use();
// One line for programs and benchmarks: "bf16 (oneDNN, AVX512_BF16 + AMX)" or
// "bf16 (emulated: this CPU has no bfloat16 instructions)"; "f32" under the f32 policy.
std::string precision_description();

}  // namespace tg

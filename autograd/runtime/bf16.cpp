#include "bf16.hpp"

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <stdexcept>

#include "fast_math.hpp"  // TAPEGRAD_CPU_CLONES

namespace tg {

// ---- rounding ---------------------------------------------------------------------------------

// The loops vectorise (integer adds, shifts and a select); one copy per instruction set.
TAPEGRAD_CPU_CLONES("arch=x86-64-v4", "avx2", "default")
void to_bf16(const float* in, std::uint16_t* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = to_bf16(in[i]);
}

TAPEGRAD_CPU_CLONES("arch=x86-64-v4", "avx2", "default")
void round_bf16(const float* in, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = from_bf16(to_bf16(in[i]));
}

// ---- the policy -------------------------------------------------------------------------------

namespace {
std::atomic<Precision> current_precision{Precision::f32};
}  // namespace

Precision precision() { return current_precision.load(std::memory_order_relaxed); }
void set_precision(Precision p) { current_precision.store(p, std::memory_order_relaxed); }

// ---- kernels ----------------------------------------------------------------------------------

namespace {

bool cpu_has_amx_bf16() { return __builtin_cpu_supports("amx-bf16"); }

// oneDNN's bfloat16 kernels need AVX512_CORE_BF16 or AMX; ONEDNN_MAX_CPU_ISA (or its older name
// DNNL_MAX_CPU_ISA) set below those, to run as on an older CPU, leaves it none.  The name of the
// level that capped it, or empty when oneDNN may use them.
std::string onednn_isa_cap() {
  for (const char* variable : {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"}) {
    const char* value = std::getenv(variable);
    if (value == nullptr || *value == '\0') continue;
    std::string isa = value;
    for (char& c : isa) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (isa == "ALL" || isa == "DEFAULT" || isa.starts_with("AVX512_CORE_BF16") ||
        isa.starts_with("AVX512_CORE_FP16") || isa.starts_with("AVX512_CORE_AMX") ||
        isa.starts_with("AVX10"))
      return "";
    return std::string(variable) + "=" + value;
  }
  return "";
}

}  // namespace

bool cpu_has_bf16() { return __builtin_cpu_supports("avx512bf16") || cpu_has_amx_bf16(); }

namespace {

// The kernel bfloat16 products use, and why the emulation when it is (for the description).
struct KernelChoice {
  Bf16Kernel kernel;
  std::string why_emulated;
};

KernelChoice choose_kernel() {
  const char* name = std::getenv("TAPEGRAD_BF16_KERNEL");
  const std::string cap = onednn_isa_cap();
  const std::string why = !cpu_has_bf16() ? "this CPU has no bfloat16 instructions"
                          : !cap.empty()  ? cap + " leaves oneDNN no bfloat16 kernels"
                                          : "";
  if (name == nullptr || *name == '\0')
    return why.empty() ? KernelChoice{Bf16Kernel::onednn, ""}
                       : KernelChoice{Bf16Kernel::emulated, why};
  try {
    const Bf16Kernel kernel = enum_from_name<Bf16Kernel>(name);
    if (kernel == Bf16Kernel::onednn && !cpu_has_bf16())
      fail("bf16 kernel",
           "this CPU reports neither AVX512_BF16 nor AMX-BF16, which oneDNN's bfloat16 "
           "kernels need (use emulated)");
    if (kernel == Bf16Kernel::onednn && !why.empty()) fail("bf16 kernel", why + " (use emulated)");
    if (kernel == Bf16Kernel::onednn) return {kernel, ""};
    return {kernel, cpu_has_bf16() ? "TAPEGRAD_BF16_KERNEL=emulated" : why};
  } catch (const std::invalid_argument& e) {  // say where the name came from
    throw std::invalid_argument("TAPEGRAD_BF16_KERNEL=" + std::string(name) + ": " + e.what());
  }
}

const KernelChoice& kernel_choice() {
  static const KernelChoice chosen = choose_kernel();
  return chosen;
}

}  // namespace

Bf16Kernel bf16_kernel_in_use() { return kernel_choice().kernel; }

std::string precision_description() {
  if (precision() == Precision::f32) return "f32";
  if (bf16_kernel_in_use() == Bf16Kernel::emulated)
    return "bf16 (emulated: " + kernel_choice().why_emulated + ")";
  std::string isa = __builtin_cpu_supports("avx512bf16") ? "AVX512_BF16" : "";
  if (cpu_has_amx_bf16()) isa += isa.empty() ? "AMX" : " + AMX";
  return "bf16 (oneDNN, " + isa + ")";
}

}  // namespace tg

// The machine's ceiling for matrix products, measured: one core's fused multiply-adds per second
// on a micro-kernel that does nothing else, in float32 and in bfloat16 (tapegrad-bench
// --ceiling).  A product can come near these figures and never pass them.
#pragma once

#include <string>

namespace bench {

struct Peak {
  double f32_gflops = 0, bf16_gflops = 0;  // one core, 2 flops per multiply-add
  std::string f32_kernel, bf16_kernel;     // the instructions timed ("AVX-512 FMA", "AMX", ...)
};

// Times each micro-kernel the CPU runs for about `seconds` and keeps the fastest of each
// precision (bfloat16: AMX tiles, else AVX512_BF16 dot products, else 0 with kernel "none").
Peak measure_peak(double seconds = 0.2);

}  // namespace bench

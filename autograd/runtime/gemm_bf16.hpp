// The bfloat16 products behind tg::gemm (library-internal; the policy and the rounding are in
// bf16.hpp).  gemm.cpp sends every float32 product here under the bf16 policy; the emulation
// calls back the float32 products, and the oneDNN kernel runs tile by tile in gemm.cpp's tiles.
#pragma once

#include <cstdint>

#include "bf16.hpp"
#include "gemm_args.hpp"

namespace tg::detail {

// C = op(A) op(B) + beta C with A and B rounded to bfloat16 (leading dimensions set), or read
// from the rounded copies given (null: round here); `parallel`: in tiles on oneTBB's threads
// (tg::gemm), else on the calling thread (gemm_serial).
void gemm_bf16(const GemmArgs& p, const float* A, const float* B, float* C, float beta,
               bool parallel, const Bf16Matrix* a_rounded = nullptr,
               const Bf16Matrix* b_rounded = nullptr);

// gemm.cpp: the float32 products as they run under the f32 policy, and the tiles of a bfloat16
// product on oneDNN (each tile one call of onednn_bf16_kernel).
void gemm_f32(const GemmArgs& p, const float* A, const float* B, float* C, float beta,
              bool parallel);
void gemm_onednn_bf16(const GemmArgs& p, const std::uint16_t* A, const std::uint16_t* B, float* C,
                      float beta, bool parallel);

// gemm_bf16.cpp: one oneDNN bfloat16 matmul on the calling thread, bfloat16 operands (their
// leading dimensions in p), float32 C.
void onednn_bf16_kernel(const GemmArgs& p, const std::uint16_t* A, const std::uint16_t* B, float* C,
                        float beta);

}  // namespace tg::detail

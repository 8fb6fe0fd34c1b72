// Kernelized attention with relative positions (Luo et al. 2021, "Stable, Fast and Accurate:
// Kernelized Attention with Relative Positional Encoding"):
//   z_i = phi(q_i) . sum_j c_(j-i) phi(k_j) v_j^T  /  phi(q_i) . sum_j c_(j-i) phi(k_j)
// with phi Performer's positive random features (FAVOR+, Choromanski et al. 2021) and
// c_r = exp(b_r), b_r a learned bias per head and offset (clipped to [-k, k]).  The sums over j
// are Toeplitz products, computed by FFT in O(n log n) (tg::toeplitz_matmul): no (T, S) matrix.
// MultiheadAttention (multihead.hpp) runs it with kind = AttentionKind::kernelized.
#pragma once

#include <optional>

#include "../../autograd/named_enum.hpp"
#include "../../autograd/runtime/generator.hpp"
#include "../../autograd/tensor.hpp"

namespace tg::nn {

// Softmax attention, or kernelized attention (above).
enum class AttentionKind { softmax, kernelized };
constexpr auto enum_table(AttentionKind) {
  return named_values<AttentionKind>(
      "kind of attention",
      {{AttentionKind::softmax, "softmax"}, {AttentionKind::kernelized, "kernelized"}});
}

// FAVOR+ features, drawn once: m rows, in blocks of D orthogonal directions (Gram-Schmidt of
// Gaussian vectors), each row scaled to the length of its own Gaussian vector, so that every
// row is distributed as N(0, I_D) while rows in a block are orthogonal.  -> (m, D)
Array<double> orthogonal_gaussian_features(std::size_t m, std::size_t D, Generator& gen);

// Positive random features of x (B, H, T, D) for the rows w_f of omega (m, D):
//   phi(x)_f = exp(w_f . x' - |x'|^2 / 2) / sqrt(m),  x' = x / D^(1/4),
// so that E[phi(q) . phi(k)] = exp(q . k / sqrt(D)), the kernel of softmax attention.  Every
// query row (`queries`), or every (batch, head) block of keys, is scaled by a constant that
// keeps its largest exponent at 0; the constants cancel in kernelized attention's ratio.
// -> (B, H, T, m)
Tensor favor_features(const Tensor& x, const Tensor& omega, bool queries);

// Kernelized attention from features: phi_q (B, H, T, m), phi_k (B, H, S, m), v (B, H, S, D),
// c (H, 2S - 1) the coefficients of offsets j - p_i = -(S-1) .. S-1 (queries at positions
// S - T .. S - 1), mask broadcasting to (B, H, T, S) -> (B, H, T, D).  A query with no key gets
// zeros.  By FFT when T = S and the mask masks keys only ((B, 1, 1, S)); otherwise, with
// `direct`, or when `weights` asks for them (B, H, T, S), by the (T, S) matrix of weights (the
// reference the FFT is tested against).
Tensor kernelized_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                            const Tensor& c, const std::optional<Mask>& mask, bool causal,
                            bool direct = false, Tensor* weights = nullptr);

}  // namespace tg::nn

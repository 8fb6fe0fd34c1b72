// Plain loops for the fused kernels: each op's forward and backward written as the formula
// reads, one element at a time, in double, with no tape.  Read these first; the fused ops
// (layer_norm, cross_entropy, masked_softmax, gelu) compute the same numbers faster, and
// tests/test_reference.cpp checks that they agree, forward and backward.  Each definition sits
// right above its fused op in the .cpp file.
//
// Arrays are 2-d: N rows of C (or S) entries; `g_y` is the gradient arriving at the output.
#pragma once

#include <cstdint>
#include <vector>

#include "ops.hpp"
#include "tensor.hpp"

namespace tg::reference {

struct LayerNormGrads {
  Array<double> x, gamma, beta;
};
// y[r, c] = (x[r, c] - mean_r) / sqrt(var_r + eps) * gamma[c] + beta[c]
Array<double> layer_norm(const Array<double>& x, const Array<double>& gamma,
                         const Array<double>& beta, double eps);
LayerNormGrads layer_norm_backward(const Array<double>& x, const Array<double>& gamma, double eps,
                                   const Array<double>& g_y);

// The mean over rows whose target is not ignored of -sum_c q[c] log softmax(z)[c], with
// q = (1 - e) one-hot(t) + e / C; its gradient with respect to the logits z is (softmax - q) /
// rows.
double cross_entropy(const Array<double>& z, const std::vector<std::int64_t>& targets,
                     const CrossEntropyOptions& o);
Array<double> cross_entropy_backward(const Array<double>& z,
                                     const std::vector<std::int64_t>& targets,
                                     const CrossEntropyOptions& o);

// y[r, j] = e^x[r, j] / sum over allowed l of e^x[r, l] where allowed[r][j], else 0.
Array<double> masked_softmax(const Array<double>& x, const std::vector<std::vector<bool>>& allowed);
Array<double> masked_softmax_backward(const Array<double>& y, const Array<double>& g_y);

// exact: y = x Phi(x);  tanh: y = x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2.  The loops
// call the one scalar formula (and derivative) that the op and its float32 kernels call too, with
// the C library's erf and exp: what they check is the kernels' own erf and exp, and the op's loops.
Array<double> gelu(const Array<double>& x, GeluForm form);
Array<double> gelu_backward(const Array<double>& x, const Array<double>& g_y, GeluForm form);

}  // namespace tg::reference

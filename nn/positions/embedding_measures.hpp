// Measures of an embedding matrix (Zheng, Ramasinghe and Lucey 2021, "Rethinking Positional
// Encoding"), for comparing what positional encodings give a model (absolute.hpp's
// GaussianPositions comes from the same paper).
#pragma once

#include "../../autograd/tensor.hpp"

namespace tg::nn {

// The stable rank ||A||_F^2 / ||A||_2^2 of A (N, K): how many directions the N embeddings
// really use (at most rank(A)).
double stable_rank(const Array<double>& a);
// How well embeddings keep distances: the Pearson correlation between |x_i - x_j| and
// ||psi_i - psi_j|| over the pairs of points (N, M) closer than `window` (1: perfectly kept).
double distance_preservation(const Array<double>& points, const Array<double>& embeddings, double window);

}  // namespace tg::nn

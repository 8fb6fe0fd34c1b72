// Measures of an embedding matrix, as Zheng, Ramasinghe and Lucey (2021, "Rethinking
// Positional Encoding") use them to explain what an encoding of positions does: how many
// directions its N embeddings use, and how well they keep the distances between the points.
//
// They are in a library of their own, tapegrad::linalg: link it to call them.  The stable rank
// needs the largest singular value, which LAPACK computes (through xtensor-blas), and a program
// linked with LAPACK maps OpenBLAS when it starts, whereas tapegrad opens OpenBLAS only when a
// float64 product first needs it (autograd/runtime/libraries.hpp).  So only the programs that
// measure (the tests of these, examples/demos/coordinate_fit) pay for it.
#pragma once

#include "../../autograd/tensor.hpp"

namespace tg::nn {

// The stable rank ||A||_F^2 / ||A||_2^2 of A (N, K), exact to rounding: how many directions the
// N embeddings really use, from 1 (all on one line) to rank(A) (all singular values equal).
// 0 for A = 0, which uses no direction.  Throws for an empty matrix, another rank, or an entry
// that is not finite.
double stable_rank(const Array<double>& a);

// How well embeddings (N, K) keep the distances between points (N, M): the Pearson correlation
// between |x_i - x_j| and ||psi_i - psi_j|| over the pairs closer than `window` (1: perfectly
// kept; 0 when fewer than two pairs, or either distance is constant).
double distance_preservation(const Array<double>& points, const Array<double>& embeddings,
                             double window);

}  // namespace tg::nn

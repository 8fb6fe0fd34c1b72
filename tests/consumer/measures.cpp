// A program of a user's that measures embeddings: it links tapegrad::linalg, the installed
// library of nn/positions/measures.hpp, and with it LAPACK.
#include <tapegrad/tapegrad.hpp>

#include <cmath>
#include <iostream>

int main() {
  const tg::Array<double> a = {{3.0, 0.0}, {0.0, 1.0}};  // singular values 3 and 1
  const double rank = tg::nn::stable_rank(a);            // (9 + 1) / 9
  const bool ok = std::abs(rank - 10.0 / 9) < 1e-12;
  std::cout << (ok ? "consumer_measures: ok: " : "consumer_measures: FAILED: ") << "stable rank "
            << rank << "\n";
  return ok ? 0 : 1;
}

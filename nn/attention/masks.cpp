#include "masks.hpp"

#include <string>

#include <xtensor/xoperation.hpp>

namespace tg::nn {

Mask causal_mask(std::size_t T, std::size_t S) {
  if (T > S)
    fail("causal_mask",
         "more queries (" + std::to_string(T) + ") than keys (" + std::to_string(S) + ")");
  Mask m = Mask::from_shape({T, S});
  for (std::size_t i = 0; i < T; ++i)
    for (std::size_t j = 0; j < S; ++j) m(i, j) = j <= i + S - T;
  return m;
}

Mask padding_mask(const std::vector<std::size_t>& lengths, std::size_t S) {
  Mask m = Mask::from_shape({lengths.size(), 1, 1, S});
  for (std::size_t b = 0; b < lengths.size(); ++b) {
    if (lengths[b] > S)
      fail("padding_mask", "sequence " + std::to_string(b) + " has length " +
                               std::to_string(lengths[b]) + ", more than the " + std::to_string(S) +
                               " positions");
    for (std::size_t j = 0; j < S; ++j) m(b, 0, 0, j) = j < lengths[b];
  }
  return m;
}

Mask mask_and(const Mask& a, const Mask& b) { return Mask(a && b); }

}  // namespace tg::nn

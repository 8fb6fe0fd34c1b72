#include "packing.hpp"

#include "../autograd/ops.hpp"

namespace tg::nn {

TokenPacking::TokenPacking(const Mask& key_padding) {
  const auto& s = key_padding.shape();
  if (s.size() != 4 || s[1] != 1 || s[2] != 1)
    fail("TokenPacking",
         "the key padding mask must be (B, 1, 1, T), got " + shape_str(Shape(s.begin(), s.end())));
  packed_.batch = s[0];
  packed_.length = s[3];
  auto rows = std::make_shared<std::vector<std::size_t>>();
  for (std::size_t i = 0; i < key_padding.size(); ++i) {
    if (!key_padding.data()[i]) continue;
    // Real tokens first: each one at place 0, or right after the sentence's last.
    if (i % s[3] != 0 && (rows->empty() || rows->back() != i - 1)) real_tokens_first_ = false;
    rows->push_back(i);
  }
  packed_.rows = std::move(rows);
  key_padding_ = std::make_shared<const Mask>(key_padding);
}

Tensor TokenPacking::pack(const Tensor& x) const {
  if (!x.defined() || x.dim() != 3 || x.shape()[0] != packed_.batch ||
      x.shape()[1] != packed_.length)
    fail("TokenPacking::pack", "x must be (B, T, C) = (" + std::to_string(packed_.batch) + ", " +
                                   std::to_string(packed_.length) + ", C), got " +
                                   (x.defined() ? shape_str(x.shape()) : "undefined"));
  return gather_rows(x, packed_.rows);
}

Tensor TokenPacking::unpack(const Tensor& x) const {
  if (!x.defined() || x.dim() != 2 || x.shape()[0] != tokens())
    fail("TokenPacking::unpack", "x must be (N, C) with N = " + std::to_string(tokens()) +
                                     " real tokens, got " +
                                     (x.defined() ? shape_str(x.shape()) : "undefined"));
  return scatter_rows(x, packed_.rows, {packed_.batch, packed_.length, x.shape()[1]});
}

}  // namespace tg::nn

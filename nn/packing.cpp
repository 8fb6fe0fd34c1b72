#include "packing.hpp"

#include "../autograd/ops.hpp"

namespace tg::nn {

TokenPacking::TokenPacking(const Mask& key_padding) {
  const auto& s = key_padding.shape();
  if (s.size() != 4 || s[1] != 1 || s[2] != 1)
    fail("TokenPacking",
         "the key padding mask must be (B, 1, 1, T), got " + shape_str(Shape(s.begin(), s.end())));
  batch_ = s[0];
  length_ = s[3];
  auto rows = std::make_shared<std::vector<std::size_t>>();
  for (std::size_t i = 0; i < key_padding.size(); ++i)
    if (key_padding.data()[i]) rows->push_back(i);
  rows_ = std::move(rows);
  key_padding_ = std::make_shared<const Mask>(key_padding);
}

Tensor TokenPacking::pack(const Tensor& x) const {
  if (!x.defined() || x.dim() != 3 || x.shape()[0] != batch_ || x.shape()[1] != length_)
    fail("TokenPacking::pack", "x must be (B, T, C) = (" + std::to_string(batch_) + ", " +
                                   std::to_string(length_) + ", C), got " +
                                   (x.defined() ? shape_str(x.shape()) : "undefined"));
  return gather_rows(x, rows_);
}

Tensor TokenPacking::unpack(const Tensor& x) const {
  if (!x.defined() || x.dim() != 2 || x.shape()[0] != tokens())
    fail("TokenPacking::unpack", "x must be (N, C) with N = " + std::to_string(tokens()) +
                                     " real tokens, got " +
                                     (x.defined() ? shape_str(x.shape()) : "undefined"));
  return scatter_rows(x, rows_, {batch_, length_, x.shape()[1]});
}

}  // namespace tg::nn

// Steps that skip padding.  A batch of sentences is padded to its longest, (B, T, C), and in a
// typical batch a quarter of the rows are padding.  Position-wise layers -- projections, the
// feed-forward block, layer norm, dropout, residual sums -- treat each row on its own, so they
// can run on the N real tokens alone, packed as (N, C).  Attention mixes the positions of one
// sentence: fused_token_attention (autograd/ops.hpp) reads each sentence's packed rows as a block
// of its own, when every sentence's real tokens come first; otherwise attention unpacks to the
// padded (B, T, C) layout and masks the padding.
//
//   const TokenPacking packing(key_padding_mask);   // (B, 1, 1, T): true at real tokens
//   Tensor h = packing.pack(x);                      // (B, T, C) -> (N, C)
//   ...                                              // position-wise layers on (N, C)
//   Tensor y = packing.unpack(h);                    // (N, C) -> (B, T, C), zeros at padding
//
// The real tokens' values keep their bits: each row is computed in the same order, and dropout
// (its overload with rows, autograd/ops.hpp) drops the element of a packed row that it drops at
// that token's place in the padded layout.  For matrix products that holds by construction on
// tapegrad's own kernels (every element summed k = 0, 1, ... whatever the sizes, and a padded
// sum only adds exact zeros), as long as the packed and the padded product run on the same
// kernel: products of more multiply-adds than small_product_limit() go to oneDNN, and under the
// bf16 policy those of 2^20 and more are rounded, so a long padded batch may be computed by
// another kernel than its short sentences.  Products on oneDNN have fewer rows (and attention's
// fewer keys) packed and may in principle be blocked otherwise (docs/speed.md "Steps that skip
// padding" says what was measured).  nn::Encoder does this when a call
// gives it a packing (EncodeOptions).
#pragma once

#include <memory>
#include <vector>

#include "../autograd/ops.hpp"
#include "../autograd/tensor.hpp"

namespace tg::nn {

class TokenPacking {
 public:
  // The real tokens are where the key padding mask (B, 1, 1, T) is true.
  explicit TokenPacking(const Mask& key_padding);

  std::size_t batch() const { return packed_.batch; }          // B
  std::size_t length() const { return packed_.length; }        // T
  std::size_t tokens() const { return packed_.rows->size(); }  // N
  // b * T + t of each real token, in order: the row it stands at in (B * T, C).
  const std::shared_ptr<const std::vector<std::size_t>>& rows() const { return packed_.rows; }
  // B, T and the rows, as the ops on packed tokens take them (fused_token_attention).
  const PackedTokens& packed() const { return packed_; }
  // Whether every sentence's real tokens stand at its first places (padding only at the end),
  // as fused_token_attention needs.
  bool real_tokens_first() const { return real_tokens_first_; }
  // The key padding mask it was made from, (B, 1, 1, T): attention on the unpacked layout must
  // mask what is not a real token, or it would attend to the zeros unpack leaves there.
  const Mask& key_padding() const { return *key_padding_; }

  // x: (B, T, C) -> (N, C), the real tokens' rows.  Differentiable (backward: unpack).
  Tensor pack(const Tensor& x) const;
  // x: (N, C) -> (B, T, C), zeros at padding.  Differentiable (backward: pack).
  Tensor unpack(const Tensor& x) const;

 private:
  PackedTokens packed_;
  bool real_tokens_first_ = true;
  std::shared_ptr<const Mask> key_padding_;
};

}  // namespace tg::nn

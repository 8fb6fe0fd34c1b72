// nn::TokenPacking (nn/packing.hpp): packing and unpacking, for any mask (real tokens need not
// come first), an empty batch, their gradients, and what a packed call refuses.
#define BOOST_TEST_MODULE packing
#include "same_bits.hpp"
#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using testing::randn64;
using Inputs = std::vector<Tensor>;

namespace {

// (B, 1, 1, T) from rows of 0/1.
Mask key_mask(const std::vector<std::vector<int>>& real) {
  Mask m = Mask::from_shape({real.size(), 1, 1, real.empty() ? 0 : real[0].size()});
  for (std::size_t b = 0; b < real.size(); ++b)
    for (std::size_t t = 0; t < real[b].size(); ++t) m(b, 0, 0, t) = real[b][t] != 0;
  return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(pack_and_unpack_any_mask) {
  const TokenPacking packing(key_mask({{0, 1, 1}, {1, 0, 1}}));  // real tokens not first
  BOOST_TEST(packing.batch() == 2u);
  BOOST_TEST(packing.length() == 3u);
  BOOST_TEST(packing.tokens() == 4u);
  BOOST_TEST((*packing.rows() == std::vector<std::size_t>{1, 2, 3, 5}));
  const Tensor x = from_vector({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {2, 3, 2});
  const Tensor packed = packing.pack(x);
  BOOST_TEST((packed.data<float>() == Array<float>{{2, 3}, {4, 5}, {6, 7}, {10, 11}}));
  BOOST_TEST((packing.unpack(packed).data<float>() ==
              Array<float>{{{0, 0}, {2, 3}, {4, 5}}, {{6, 7}, {0, 0}, {10, 11}}}));
  const GradcheckOptions both{.order = 2, .modes = CheckModes::both};
  CHECK_GRAD([&](const Inputs& in) { return packing.pack(in[0]); }, {randn64({2, 3, 2}, 1)}, both);
  CHECK_GRAD([&](const Inputs& in) { return packing.unpack(in[0]); }, {randn64({4, 2}, 2)}, both);
}

// Whether each sentence's real tokens come first, as attention on packed tokens needs; when
// they do not, a packed encoder unpacks around attention, and its real tokens' values are still
// the padded pass's.
BOOST_AUTO_TEST_CASE(real_tokens_first_or_not) {
  BOOST_TEST(TokenPacking(padding_mask({3, 1, 0}, 3)).real_tokens_first());
  BOOST_TEST(TokenPacking(key_mask({{0, 0}, {0, 0}})).real_tokens_first());
  BOOST_TEST(!TokenPacking(key_mask({{1, 1, 0}, {0, 1, 1}})).real_tokens_first());
  BOOST_TEST(!TokenPacking(key_mask({{1, 0, 1}})).real_tokens_first());
  const Mask gaps = key_mask({{1, 0, 1, 1}, {0, 1, 1, 0}});
  const TokenPacking packing(gaps);
  Generator gen(8);
  Encoder enc(
      {.d_model = 8, .heads = 2, .ff = 16, .layers = 2, .dropout = 0.0, .attention_dropout = 0.0},
      gen);
  const Tensor x = randn64({2, 4, 8}, 9).to(Dtype::f32);
  NoGradGuard no_grad;
  const Tensor padded = enc.forward(x, gaps);
  const Tensor packed = enc.forward(x, {.mask = gaps, .packing = packing});
  BOOST_TEST(testing::same_bits_or_close(packing.pack(padded), packing.pack(packed)));
}

BOOST_AUTO_TEST_CASE(a_batch_without_real_tokens) {
  const TokenPacking packing(key_mask({{0, 0}, {0, 0}}));
  BOOST_TEST(packing.tokens() == 0u);
  const Tensor packed = packing.pack(randn64({2, 2, 3}, 3));
  BOOST_TEST(packed.shape() == (Shape{0, 3}));
  const Tensor back = packing.unpack(packed);
  BOOST_TEST(back.shape() == (Shape{2, 2, 3}));
  BOOST_TEST((back.data<double>() == xt::zeros<double>({2, 2, 3})));
  // An encoder over it: zeros, and a backward that runs.
  Generator gen(4);
  Encoder enc({.d_model = 4, .heads = 2, .ff = 6, .layers = 1}, gen);
  Tensor x = zeros({2, 2, 4}).set_requires_grad();
  Tape tape;
  TapeGuard recording(tape);
  const Tensor y = enc.forward(x, {.mask = packing.key_padding(), .packing = packing});
  BOOST_TEST((y.data<float>() == xt::zeros<float>({2, 2, 4})));
  sum(y).backward();
  BOOST_TEST((x.grad().data<float>() == xt::zeros<float>({2, 2, 4})));
}

// Attention over a packed call masks what the packing left empty, with or without a mask of the
// caller's: the same outputs either way, and the padded step's at the real tokens.
BOOST_AUTO_TEST_CASE(a_packed_call_masks_padding_itself) {
  Generator gen(5);
  Encoder enc(
      {.d_model = 8, .heads = 2, .ff = 16, .layers = 2, .dropout = 0.0, .attention_dropout = 0.0},
      gen);
  const Mask pad = padding_mask({4, 2}, 4);
  const TokenPacking packing(pad);
  const Tensor x = randn64({2, 4, 8}, 6).to(Dtype::f32);
  NoGradGuard no_grad;
  const Tensor padded = enc.forward(x, pad);
  const Tensor masked = enc.forward(x, {.mask = pad, .packing = packing});
  const Tensor unmasked = enc.forward(x, {.packing = packing});
  BOOST_TEST((masked.data<float>() == unmasked.data<float>()));
  BOOST_TEST(testing::same_bits_or_close(packing.pack(padded), packing.pack(masked)));
}

BOOST_AUTO_TEST_CASE(packed_inputs_are_checked) {
  Generator gen(23);
  Encoder enc({.d_model = 4, .heads = 2, .ff = 6, .layers = 1}, gen);
  const Mask pad = padding_mask({2, 1}, 3);
  const TokenPacking packing(pad);
  CHECK_THROWS_WITH(TokenPacking(causal_mask(3, 3)),
                    "TokenPacking: the key padding mask must be (B, 1, 1, T), got (3, 3)");
  CHECK_THROWS_WITH(packing.pack(zeros({2, 4, 4})),
                    "TokenPacking::pack: x must be (B, T, C) = (2, 3, C), got (2, 4, 4)");
  CHECK_THROWS_WITH(packing.unpack(zeros({4, 4})),
                    "TokenPacking::unpack: x must be (N, C) with N = 3 real tokens, got (4, 4)");
  CHECK_THROWS_WITH(enc.layers[0]->self_attn.forward(zeros({4, 4}), {.packing = packing}),
                    "packed x must be (N, C) with N = 3 real tokens and C = 4, got (4, 4)");
  KvCache cache;
  CHECK_THROWS_WITH(
      enc.layers[0]->self_attn.forward(zeros({3, 4}), {.cache = &cache, .packing = packing}),
      "packed x cannot use one");
  std::vector<KvCache> caches;
  CHECK_THROWS_WITH(
      enc.forward(zeros({2, 3, 4}), {.causal = true, .cache = &caches, .packing = packing}),
      "Encoder: a cache decodes one position after another; a packed call cannot");
  Encoder kernelized(
      {.d_model = 4, .heads = 2, .ff = 6, .layers = 1, .attention = AttentionKind::kernelized},
      gen);
  CHECK_THROWS_WITH(kernelized.forward(zeros({2, 3, 4}), {.mask = pad, .packing = packing}),
                    "kernelized attention cannot skip padding");
}

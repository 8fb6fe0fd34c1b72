#define BOOST_TEST_MODULE attention
#include <cmath>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using testing::randn64;
using Inputs = std::vector<Tensor>;
namespace tt = boost::test_tools;

namespace {

// Gradchecks attention through its input and every parameter, in float64, without dropout.
void check_attention_grad(MultiheadAttention& attn, const std::function<Tensor(const Tensor&)>& f,
                          const Shape& shape) {
  attn.to(Dtype::f64);
  attn.eval();
  std::vector<Tensor> inputs = {randn64(shape, 77)};
  for (const Tensor& p : attn.parameters()) inputs.push_back(p);
  CHECK_GRAD([&](const Inputs& in) { return f(in[0]); }, inputs);
}

bool all_equal(const Tensor& a, const Tensor& b) { return a.data<float>() == b.data<float>(); }

// The outputs of attention drawn from Generator(seed), with relative distances up to k, on x
// (N(0, 1) values of `shape` from Generator(seed + 1)) and on a copy of x that change() altered.
template <class Change>
std::pair<Tensor, Tensor> before_and_after(std::uint64_t seed, std::size_t k, const Shape& shape,
                                           const AttendOptions& call, Change change) {
  Generator gen(seed);
  MultiheadAttention attn({.d_model = shape.back(),
                           .heads = 2,
                           .positions = k > 0 ? PositionScheme::relative : PositionScheme::none,
                           .relative_k = k},
                          gen);
  Generator data(seed + 1);
  Tensor x = randn(shape, data);
  Array<float> changed = x.data<float>();
  change(changed);
  return {attn.forward(x, call), attn.forward(Tensor(changed), call)};
}

// Self-attention of width 8, 2 heads, with relative positions clipped to 2 apart.
const AttentionOptions kRelativeTwo{
    .d_model = 8, .heads = 2, .positions = PositionScheme::relative, .relative_k = 2};

}  // namespace

BOOST_AUTO_TEST_CASE(masks) {
  Mask c = causal_mask(3, 3);
  BOOST_TEST(c(0, 1) == false);
  BOOST_TEST(c(2, 2) == true);
  Mask c2 = causal_mask(2, 4);  // queries at positions 2 and 3
  BOOST_TEST(c2(0, 2) == true);
  BOOST_TEST(c2(0, 3) == false);
  Mask p = padding_mask({2, 3}, 4);
  BOOST_TEST((p.shape() == Shape{2, 1, 1, 4}));
  BOOST_TEST(p(0, 0, 0, 1) == true);
  BOOST_TEST(p(0, 0, 0, 2) == false);
  BOOST_TEST((mask_and(p, c2).shape() == Shape{2, 1, 2, 4}));
  CHECK_THROWS_WITH(padding_mask({5}, 4),
                    "padding_mask: sequence 0 has length 5, more than the 4 positions");
}

BOOST_AUTO_TEST_CASE(scaled_dot_product_attention_weights_and_gradients) {
  Tensor q = randn64({2, 2, 3, 4}, 1), k = randn64({2, 2, 5, 4}, 2), v = randn64({2, 2, 5, 4}, 3);
  Tensor w;
  Tensor out = scaled_dot_product_attention(q, k, v, std::nullopt, &w);
  BOOST_TEST(out.shape() == (Shape{2, 2, 3, 4}));
  BOOST_TEST(w.shape() == (Shape{2, 2, 3, 5}));
  BOOST_TEST(sum(w, {-1}).data<double>()(1, 1, 2) == 1.0, tt::tolerance(1e-12));
  Mask graph = {{true, true, false, false, false},
                {false, true, true, false, false},
                {false, false, false, false, true}};
  CHECK_GRAD(
      [graph](const Inputs& in) {
        return scaled_dot_product_attention(in[0], in[1], in[2], graph);
      },
      {q, k, v});
  CHECK_THROWS_WITH(scaled_dot_product_attention(q, k, randn64({2, 2, 4, 4}, 4)),
                    "needs q (B, H, T, D), k and v (B, H, S, D)");
}

BOOST_AUTO_TEST_CASE(a_graph_mask_restricts_attention_to_edges) {
  Generator gen(1);
  MultiheadAttention attn({.d_model = 8, .heads = 2}, gen);
  // A path graph 0 - 1 - 2 - 3 with self loops, as a (T, S) adjacency mask.
  Mask adj = xt::zeros<bool>({4, 4});
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 4; ++j) adj(i, j) = (i > j ? i - j : j - i) <= 1;
  Tensor w;
  attn.forward(randn64({1, 4, 8}, 2, false).to(Dtype::f32), {.mask = adj, .weights = &w});
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 4; ++j)
      if (!adj(i, j)) BOOST_TEST(w.data<float>()(0, 1, i, j) == 0.0f);
      else BOOST_TEST(w.data<float>()(0, 1, i, j) > 0.0f);
}

BOOST_AUTO_TEST_CASE(multihead_self_and_cross_attention_gradcheck) {
  Generator gen(2);
  MultiheadAttention self({.d_model = 6, .heads = 2}, gen);
  Mask pad = padding_mask({3, 2}, 3);
  check_attention_grad(self, [&](const Tensor& x) { return self.forward(x, {.mask = pad}); },
                       {2, 3, 6});
  check_attention_grad(self, [&](const Tensor& x) { return self.forward(x, {.causal = true}); },
                       {2, 3, 6});
  MultiheadAttention cross({.d_model = 6, .heads = 3}, gen);
  cross.to(Dtype::f64);
  Tensor memory = randn64({2, 4, 6}, 8);
  check_attention_grad(cross,
                       [&](const Tensor& x) {
                         return cross.forward_cross(x, memory, {.mask = padding_mask({4, 1}, 4)});
                       },
                       {2, 3, 6});
  CHECK_GRAD(
      [&](const Inputs& in) {
        return cross.forward_cross(randn64({2, 3, 6}, 9, false), in[0]);
      },
      {memory});
}

BOOST_AUTO_TEST_CASE(relative_attention_gradcheck_every_formulation) {
  struct Form {
    bool fused, skewed;
  };
  for (Form form : {Form{true, true}, Form{false, true}, Form{false, false}})
    for (bool causal : {false, true}) {
      BOOST_TEST_CONTEXT("fused " << form.fused << ", skewed " << form.skewed << ", causal "
                                  << causal) {
        Generator gen(3);
        MultiheadAttention attn({.d_model = 4,
                                 .heads = 2,
                                 .positions = PositionScheme::relative,
                                 .relative_k = 2,
                                 .relative_skewed = form.skewed,
                                 .fused = form.fused},
                                gen);
        check_attention_grad(
            attn,
            [&](const Tensor& x) {
              return attn.forward(x, {.mask = padding_mask({5, 3}, 5), .causal = causal});
            },
            {2, 5, 4});
      }
    }
}

BOOST_AUTO_TEST_CASE(skewed_relative_attention_equals_the_direct_one) {
  for (bool causal : {false, true}) {
    Generator g1(4), g2(4);
    const auto relative = [](bool skew) {
      return AttentionOptions{.d_model = 8,
                              .heads = 2,
                              .positions = PositionScheme::relative,
                              .relative_k = 3,
                              .relative_skewed = skew,
                              .fused = false};
    };
    MultiheadAttention skewed(relative(true), g1), direct(relative(false), g2);
    skewed.to(Dtype::f64);
    direct.to(Dtype::f64);
    Tensor x = randn64({2, 9, 8}, 5, false);
    Tensor a = skewed.forward(x, {.mask = padding_mask({9, 6}, 9), .causal = causal});
    Tensor b = direct.forward(x, {.mask = padding_mask({9, 6}, 9), .causal = causal});
    BOOST_TEST(max(abs(a - b), {0, 1, 2}).item() < 1e-12);
    // Float32 too, to float precision.
    skewed.to(Dtype::f32);
    direct.to(Dtype::f32);
    Tensor xf = x.to(Dtype::f32);
    BOOST_TEST(
        max(abs(skewed.forward(xf, {.causal = causal}) - direct.forward(xf, {.causal = causal})),
            {0, 1, 2})
            .item() < 1e-5);
  }
}

BOOST_AUTO_TEST_CASE(causal_attention_ignores_the_future_exactly) {
  for (std::size_t k : {0u, 2u}) {
    const auto [a, b] = before_and_after(5, k, {1, 6, 8}, {.causal = true}, [](Array<float>& x) {
      for (std::size_t t = 4; t < 6; ++t)
        for (std::size_t c = 0; c < 8; ++c) x(0, t, c) += 10.0f;  // change positions 4, 5
    });
    BOOST_TEST(all_equal(slice(a, 1, 0, 4), slice(b, 1, 0, 4)));   // positions 0..3: bit for bit
    BOOST_TEST(!all_equal(slice(a, 1, 4, 6), slice(b, 1, 4, 6)));  // (and the change did something)
  }
}

BOOST_AUTO_TEST_CASE(padded_positions_do_not_leak) {
  for (std::size_t k : {0u, 3u}) {
    const auto [a, b] =
        before_and_after(7, k, {2, 5, 8}, {.mask = padding_mask({3, 5}, 5)}, [](Array<float>& x) {
          for (std::size_t c = 0; c < 8; ++c)
            x(0, 3, c) = x(0, 4, c) = 1e3f;  // padding of sequence 0
        });
    BOOST_TEST(all_equal(slice(slice(a, 0, 0, 1), 1, 0, 3), slice(slice(b, 0, 0, 1), 1, 0, 3)));
    BOOST_TEST(all_equal(slice(a, 0, 1, 2), slice(b, 0, 1, 2)));
  }
}

BOOST_AUTO_TEST_CASE(relative_attention_is_shift_equivariant) {
  Generator gen(9);
  MultiheadAttention attn(kRelativeTwo, gen);
  attn.to(Dtype::f64);
  Tensor tokens = randn64({1, 5, 8}, 10, false);
  // The same 5 tokens at positions 0..4 of a window of 8, and shifted right to 3..7.
  Tensor pad = zeros({1, 3, 8}, Dtype::f64);
  Tensor left = concat({tokens, pad}, 1), right = concat({pad, tokens}, 1);
  Mask mask_left = xt::zeros<bool>({1, 1, 1, 8}), mask_right = xt::zeros<bool>({1, 1, 1, 8});
  for (std::size_t j = 0; j < 5; ++j) mask_left(0, 0, 0, j) = mask_right(0, 0, 0, j + 3) = true;
  Tensor a = slice(attn.forward(left, {.mask = mask_left}), 1, 0, 5),
         b = slice(attn.forward(right, {.mask = mask_right}), 1, 3, 8);
  BOOST_TEST(max(abs(a - b), {0, 1, 2}).item() < 1e-12);
}

BOOST_AUTO_TEST_CASE(offsets_beyond_k_share_one_embedding) {
  // With k = 2, keys at distance >= 2 from position 0 all look alike to it apart from their
  // content: shuffling the tokens at positions 2..6 leaves position 0's output unchanged
  // (the average over them is order-free), while it does change position 3's output.
  Generator gen(11);
  MultiheadAttention attn(kRelativeTwo, gen);
  attn.to(Dtype::f64);
  Tensor x = randn64({1, 7, 8}, 12, false);
  Tensor shuffled = concat({slice(x, 1, 0, 2), slice(x, 1, 5, 7), slice(x, 1, 2, 5)}, 1);
  Tensor a = attn.forward(x), b = attn.forward(shuffled);
  BOOST_TEST(max(abs(slice(a, 1, 0, 1) - slice(b, 1, 0, 1)), {0, 1, 2}).item() < 1e-12);
  BOOST_TEST(max(abs(slice(a, 1, 3, 4) - slice(b, 1, 3, 4)), {0, 1, 2}).item() > 1e-6);
}

BOOST_AUTO_TEST_CASE(fully_masked_rows_stay_finite_through_the_module) {
  Generator gen(13);
  MultiheadAttention attn({.d_model = 4, .heads = 2}, gen);
  Tensor x = randn64({1, 3, 4}, 14, false).to(Dtype::f32).set_requires_grad();
  Mask none_for_row_1 = {{true, true, true}, {false, false, false}, {true, false, true}};
  Tape tape;
  TapeGuard recording(tape);
  Tensor y = attn.forward(x, {.mask = none_for_row_1});
  sum(y * y).backward();
  for (float v : y.data<float>()) BOOST_TEST(std::isfinite(v));
  for (float g : x.grad_data<float>()) BOOST_TEST(std::isfinite(g));
  for (const Tensor& p : attn.parameters())
    for (float g : p.grad_data<float>()) BOOST_TEST(std::isfinite(g));
}

BOOST_AUTO_TEST_CASE(bad_arguments_are_reported) {
  Generator gen(15);
  CHECK_THROWS_WITH(MultiheadAttention({.d_model = 6, .heads = 4}, gen),
                    "d_model 6 must be a positive multiple of heads 4");
  MultiheadAttention attn({.d_model = 4, .heads = 2}, gen);
  CHECK_THROWS_WITH(attn.forward(zeros({2, 3, 5})),
                    "x must be (B, T, C) with C = 4, got (2, 3, 5)");
  CHECK_THROWS_WITH(attn.forward(zeros({2, 3, 4}), {.mask = Mask(xt::ones<bool>({3, 2}))}),
                    "does not broadcast to the logits (B, H, T, S) = (2, 2, 3, 3)");
  CHECK_THROWS_WITH(attn.forward_cross(zeros({2, 3, 4}), zeros({3, 5, 4})),
                    "have different batch sizes");
  MultiheadAttention rel(
      {.d_model = 4, .heads = 2, .positions = PositionScheme::relative, .relative_k = 2}, gen);
  CHECK_THROWS_WITH(rel.forward_cross(zeros({2, 3, 4}), zeros({2, 5, 4})),
                    "relative positions are for self-attention");
}

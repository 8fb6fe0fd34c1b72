// Positions inside attention: RoPE, ALiBi and T5 biases, Transformer-XL's terms
// (nn/positions/in_attention.hpp, nn/attention/multihead_positions.cpp).  Each is
// gradient-checked, tested for the property that defines it, and for incremental decoding.
#define BOOST_TEST_MODULE attention_positions
#include <cmath>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using testing::randn64;
using Inputs = std::vector<Tensor>;
namespace tt = boost::test_tools;

namespace {

const PositionScheme kSchemes[] = {PositionScheme::rope, PositionScheme::alibi, PositionScheme::t5,
                                   PositionScheme::xl};

const char* name(PositionScheme p) { return enum_name(p); }

// Attention in float64, in evaluation mode, with its T5 table (if any) made non-zero so that it
// matters: T5 starts at zero.
std::unique_ptr<MultiheadAttention> make(PositionScheme p, Generator& gen, std::size_t heads = 2,
                                         std::size_t C = 8) {
  auto attn = std::make_unique<MultiheadAttention>(
      AttentionOptions{
          .d_model = C, .heads = heads, .positions = p, .t5_buckets = 8, .t5_max_distance = 16},
      gen);
  attn->to(Dtype::f64);
  attn->eval();
  if (attn->t5_bias.defined())
    attn->t5_bias.data<double>() = randn64(attn->t5_bias.shape(), 5, false).data<double>();
  if (attn->xl_u.defined()) {  // XL's u and v start at zero too
    attn->xl_u.data<double>() = randn64(attn->xl_u.shape(), 6, false).data<double>();
    attn->xl_v.data<double>() = randn64(attn->xl_v.shape(), 7, false).data<double>();
  }
  return attn;
}

double max_diff(const Tensor& a, const Tensor& b) {
  return xt::amax(xt::abs(a.data<double>() - b.data<double>()))();
}

// Calls check(attn, causal) on attention of every scheme, bidirectional and causal, each drawn
// afresh from Generator(seed).
template <class Check>
void for_every_scheme(std::uint64_t seed, Check check) {
  for (PositionScheme p : kSchemes)
    for (bool causal : {false, true}) BOOST_TEST_CONTEXT(name(p) << (causal ? ", causal" : "")) {
        Generator gen(seed);
        check(*make(p, gen), causal);
      }
}

}  // namespace

BOOST_AUTO_TEST_CASE(alibi_slopes_are_the_papers) {
  const auto m = alibi_slopes(8);
  BOOST_REQUIRE(m.size() == 8u);
  for (std::size_t h = 0; h < 8; ++h)
    BOOST_TEST(m[h] == std::pow(0.5, h + 1), tt::tolerance(1e-15));  // 1/2 ... 1/256
  const auto m4 = alibi_slopes(4);
  BOOST_TEST(m4[0] == 0.25, tt::tolerance(1e-15));  // 2^(-8/4)
  BOOST_TEST(m4[3] == 1.0 / 256, tt::tolerance(1e-15));
  // Not a power of two: the slopes of 4 heads, then every other slope of 8 (Press et al.).
  const std::vector<double> six = {1.0 / 4, 1.0 / 16, 1.0 / 64, 1.0 / 256, 1.0 / 2, 1.0 / 8};
  BOOST_TEST(alibi_slopes(6) == six, tt::per_element());
  const auto m12 = alibi_slopes(12);  // 8's, then 16's 1st, 3rd, 5th, 7th: 2^-0.5, 2^-1.5, ...
  BOOST_REQUIRE(m12.size() == 12u);
  for (std::size_t h = 0; h < 4; ++h)
    BOOST_TEST(m12[8 + h] == std::exp2(-0.5 - static_cast<double>(h)), tt::tolerance(1e-15));
  BOOST_TEST(alibi_slopes(1) == std::vector<double>{1.0 / 256}, tt::per_element());
  BOOST_CHECK_THROW(alibi_slopes(0), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(t5_refuses_a_max_distance_inside_the_exact_buckets) {
  // Causal, 16 buckets: offsets below 8 are exact, so max distance 8 leaves the logarithmic
  // buckets no room (log(8 / 8) = 0 divides); bidirectional, the exact ones end at 4.
  CHECK_THROWS_WITH(t5_bucket(-20, false, 16, 8), "t5_bucket: causal attention with 16 buckets");
  CHECK_THROWS_WITH(t5_bucket(-20, false, 16, 8), "must exceed 8, got 8");
  BOOST_TEST(t5_bucket(-20, true, 16, 8) == 7);  // the last of the past's half
  BOOST_TEST(t5_bucket(-20, false, 16, 9) == 15);
  Generator gen(3);
  MultiheadAttention attn({.d_model = 8,
                           .heads = 2,
                           .positions = PositionScheme::t5,
                           .t5_buckets = 16,
                           .t5_max_distance = 8},
                          gen);
  attn.to(Dtype::f64);
  const Tensor x = randn64({1, 20, 8}, 4, false);
  BOOST_CHECK_NO_THROW(attn.forward(x, {}));  // bidirectional: fine
  BOOST_CHECK_THROW(attn.forward(x, {.causal = true}), std::invalid_argument);  // causal: refused
}

BOOST_AUTO_TEST_CASE(t5_buckets_follow_the_formula) {
  // Bidirectional, 32 buckets, max distance 128: 16 per sign, exact below 8.
  BOOST_TEST(t5_bucket(0, true, 32, 128) == 0);
  BOOST_TEST(t5_bucket(-7, true, 32, 128) == 7);  // the past, exact
  BOOST_TEST(t5_bucket(7, true, 32, 128) == 23);  // the future: 16 + 7
  // 8 + floor(log(n / 8) / log(128 / 8) * 8): n = 8 -> 8, n = 16 -> 10, n = 127 -> 15
  BOOST_TEST(t5_bucket(-8, true, 32, 128) == 8);
  BOOST_TEST(t5_bucket(-16, true, 32, 128) == 10);
  BOOST_TEST(t5_bucket(-127, true, 32, 128) == 15);
  BOOST_TEST(t5_bucket(-1000, true, 32, 128) == 15);  // clipped to the last bucket of the half
  BOOST_TEST(t5_bucket(1000, true, 32, 128) == 31);
  // Causal: all 32 buckets for the past, exact below 16; the future shares bucket 0.
  BOOST_TEST(t5_bucket(-15, false, 32, 128) == 15);
  BOOST_TEST(t5_bucket(-32, false, 32, 128) ==
             16 + static_cast<std::int64_t>(std::log(2.0) / std::log(8.0) * 16));
  BOOST_TEST(t5_bucket(5, false, 32, 128) == 0);
  for (std::int64_t r = -300; r <= 300;
       ++r) {  // within range, and never closer buckets for farther offsets
    BOOST_TEST(t5_bucket(r, true, 32, 128) < 32);
    if (r < 0) BOOST_TEST(t5_bucket(r, true, 32, 128) >= t5_bucket(r + 1, true, 32, 128));
  }
}

// RoPE makes q.k a function of the offset between the two positions only.
BOOST_AUTO_TEST_CASE(rope_dot_products_depend_only_on_offsets) {
  const Tensor q = randn64({1, 1, 1, 8}, 1, false), k = randn64({1, 1, 1, 8}, 2, false);
  const auto dot = [&](std::size_t pq, std::size_t pk) {
    return sum(rope_rotate(q, pq) * rope_rotate(k, pk)).item();
  };
  for (std::size_t shift : {1, 7, 100})
    BOOST_TEST(dot(3 + shift, 5 + shift) == dot(3, 5), tt::tolerance(1e-12));
  BOOST_TEST(std::abs(dot(3, 5) - dot(3, 6)) > 1e-6);  // but it does depend on the offset
  // a rotation keeps lengths
  BOOST_TEST(sum(rope_rotate(q, 9) * rope_rotate(q, 9)).item() == sum(q * q).item(),
             tt::tolerance(1e-12));
  CHECK_THROWS_WITH(rope_rotate(randn64({1, 1, 2, 5}, 3, false), 0),
                    "rope_rotate: x must be (B, H, T, D) with D even");
}

// ALiBi adds exactly -m_h |i - j| to the logits: with q = 0 every logit is the bias alone, so
// the weights are softmax(-m_h |i - j|).
BOOST_AUTO_TEST_CASE(alibi_bias_values) {
  Generator gen(1);
  auto attn = make(PositionScheme::alibi, gen, 2, 4);
  attn->in_proj.weight.data<double>().fill(0.0);  // q = k = 0 (+ bias 0): logits are the bias
  attn->in_proj.bias.data<double>().fill(0.0);
  Tensor w;
  attn->forward(randn64({1, 5, 4}, 2, false), {.causal = true, .weights = &w});
  const auto m = alibi_slopes(2);
  const auto& a = w.data<double>();
  for (std::size_t h = 0; h < 2; ++h)
    for (std::size_t i = 0; i < 5; ++i) {
      double z = 0;
      for (std::size_t j = 0; j <= i; ++j) z += std::exp(-m[h] * (i - j));
      for (std::size_t j = 0; j < 5; ++j)
        BOOST_TEST(a(0, h, i, j) == (j <= i ? std::exp(-m[h] * (i - j)) / z : 0.0),
                   tt::tolerance(1e-12));
    }
}

// T5 adds the table's entry for the bucket of j - i and the head.
BOOST_AUTO_TEST_CASE(t5_bias_values) {
  Generator gen(2);
  auto attn = make(PositionScheme::t5, gen, 2, 4);
  attn->in_proj.weight.data<double>().fill(0.0);
  attn->in_proj.bias.data<double>().fill(0.0);
  Tensor w;
  attn->forward(randn64({1, 4, 4}, 3, false), {.weights = &w});  // bidirectional
  const auto& table = attn->t5_bias.data<double>();
  const auto& a = w.data<double>();
  for (std::size_t h = 0; h < 2; ++h)
    for (std::size_t i = 0; i < 4; ++i) {
      double z = 0;
      for (std::size_t j = 0; j < 4; ++j)
        z += std::exp(table(t5_bucket(std::int64_t(j) - std::int64_t(i), true, 8, 16), h));
      for (std::size_t j = 0; j < 4; ++j)
        BOOST_TEST(
            a(0, h, i, j) ==
                std::exp(table(t5_bucket(std::int64_t(j) - std::int64_t(i), true, 8, 16), h)) / z,
            tt::tolerance(1e-12));
    }
}

// XL's terms against the formula, element by element: (q_i + v).W_R R_(pos_i - j) + u.k_j.
BOOST_AUTO_TEST_CASE(xl_terms_follow_the_formula) {
  for (bool causal : {false, true}) BOOST_TEST_CONTEXT((causal ? "causal" : "bidirectional")) {
      Generator gen(8);
      auto attn = make(PositionScheme::xl, gen, 2, 8);
      const std::size_t H = 2, D = 4, T = 3, S = 5, C = 8;
      const Tensor q = randn64({1, H, T, D}, 9, false), k = randn64({1, H, S, D}, 10, false);
      const Array<double> got = attn->xl_logits(q, k, causal).data<double>();
      SinusoidalPositions sinusoid(C);
      const auto& W = attn->xl_proj->weight.data<double>();  // (C, C): x W
      const auto& u = attn->xl_u.data<double>();
      const auto& v = attn->xl_v.data<double>();
      for (std::size_t h = 0; h < H; ++h)
        for (std::size_t i = 0; i < T; ++i)
          for (std::size_t j = 0; j < S; ++j) {
            const std::size_t pos = i + S - T;
            if (causal && j > pos) continue;  // masked anyway
            const double offset = static_cast<double>(pos) - static_cast<double>(j);
            const Array<double> r =
                sinusoid.encode(full({1, 1}, offset, Dtype::f64)).data<double>();  // (1, C)
            double want = 0;
            for (std::size_t d = 0; d < D; ++d) {
              double wr = 0;  // (W_R R)[h D + d]
              for (std::size_t c = 0; c < C; ++c) wr += r(0, c) * W(c, h * D + d);
              want += (q.data<double>()(0, h, i, d) + v(h, d)) * wr +
                      u(h, d) * k.data<double>()(0, h, j, d);
            }
            BOOST_TEST(got(0, h, i, j) == want, tt::tolerance(1e-10));
          }
    }
}

BOOST_AUTO_TEST_CASE(gradients) {
  for_every_scheme(3, [](MultiheadAttention& attn, bool causal) {
    std::vector<Tensor> inputs = {randn64({2, 4, 8}, 4)};
    for (const Tensor& param : attn.parameters()) inputs.push_back(param);
    const Mask pad = padding_mask({4, 3}, 4);
    CHECK_GRAD(
        [&](const Inputs& in) { return attn.forward(in[0], {.mask = pad, .causal = causal}); },
        inputs);
  });
}

// Shift equivariance: a sequence that starts 5 positions later (after 5 cached keys it may not
// attend to) gives the same outputs.  True of every relative scheme.
BOOST_AUTO_TEST_CASE(relative_schemes_do_not_see_absolute_position) {
  for_every_scheme(4, [](MultiheadAttention& attn, bool causal) {
    const Tensor x = randn64({1, 4, 8}, 6, false);
    const Tensor alone = attn.forward(x, {.causal = causal});
    KvCache cache;
    attn.forward(randn64({1, 5, 8}, 7, false), {.cache = &cache});  // 5 earlier positions
    Mask later = Mask::from_shape({1, 1, 1, 9});
    for (std::size_t j = 0; j < 9; ++j)
      later(0, 0, 0, j) = j >= 5;  // ... that x does not attend to
    const Tensor shifted = attn.forward(x, {.mask = later, .causal = causal, .cache = &cache});
    BOOST_TEST(max_diff(alone, shifted) < 1e-12);
  });
}

// Decoding one position at a time with the cache gives the full causal pass.
BOOST_AUTO_TEST_CASE(incremental_decoding_equals_the_full_pass) {
  for (PositionScheme p : kSchemes) BOOST_TEST_CONTEXT(name(p)) {
      Generator gen(5);
      auto attn = make(p, gen);
      const Tensor x = randn64({2, 6, 8}, 8, false);
      const Tensor full = attn->forward(x, {.causal = true});
      KvCache cache;
      std::vector<Tensor> steps;
      for (std::int64_t t = 0; t < 6; ++t)
        steps.push_back(attn->forward(slice(x, 1, t, t + 1), {.causal = true, .cache = &cache}));
      BOOST_TEST(max_diff(full, concat(steps, 1)) < 1e-12);
    }
}

BOOST_AUTO_TEST_CASE(errors) {
  Generator gen(6);
  CHECK_THROWS_WITH(
      MultiheadAttention({.d_model = 6, .heads = 2, .positions = PositionScheme::rope}, gen),
      "rope turns pairs of dims: the head dim 3 must be even");
  CHECK_THROWS_WITH(
      MultiheadAttention({.d_model = 8, .heads = 2, .positions = PositionScheme::relative}, gen),
      "relative positions need relative_k > 0");
}

// Kernelized attention with relative positions (Luo et al. 2021; nn/attention/kernelized.hpp):
// the FFT evaluation against the formula written as loops, gradients, causality, shift and
// padding invariance, incremental decoding, and the random features against the softmax kernel.
#define BOOST_TEST_MODULE kernelized_attention
#include <cmath>
#include <cstdio>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using testing::randn64;
using Inputs = std::vector<Tensor>;

namespace {

// Kernelized self-attention in float64, in evaluation mode, with a non-zero bias b_r (it starts
// at zero, where every offset weighs the same).
std::unique_ptr<MultiheadAttention> make(Generator& gen, std::size_t features = 6,
                                         std::size_t distance = 3) {
  auto attn =
      std::make_unique<MultiheadAttention>(AttentionOptions{.d_model = 8,
                                                            .heads = 2,
                                                            .relative_k = distance,
                                                            .kind = AttentionKind::kernelized,
                                                            .kernel_features = features},
                                           gen);
  attn->to(Dtype::f64);
  attn->eval();
  attn->kernel_bias.data<double>() = randn64(attn->kernel_bias.shape(), 9, false).data<double>();
  return attn;
}

double max_diff(const Tensor& a, const Tensor& b) {
  return xt::amax(xt::abs(a.data<double>() - b.data<double>()))();
}

// The formula as loops, for queries at positions 0 .. n-1 over keys 0 .. n-1:
//   z_i = sum_j c_(j-i) (phi_q_i . phi_k_j) v_j / sum_j c_(j-i) (phi_q_i . phi_k_j)
// over the keys j < length[b] (and j <= i when causal).  c: (H, 2n - 1), offsets -(n-1) .. n-1.
Array<double> formula(const Array<double>& pq, const Array<double>& pk, const Array<double>& v,
                      const Array<double>& c, const std::vector<std::size_t>& length, bool causal) {
  const std::size_t B = pq.shape()[0], H = pq.shape()[1], n = pq.shape()[2], m = pq.shape()[3],
                    D = v.shape()[3];
  Array<double> z = xt::zeros<double>({B, H, n, D});
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < n; ++i) {
        double den = 0;
        std::vector<double> num(D, 0.0);
        for (std::size_t j = 0; j < length[b]; ++j) {
          if (causal && j > i) continue;
          double kernel = 0;
          for (std::size_t f = 0; f < m; ++f) kernel += pq(b, h, i, f) * pk(b, h, j, f);
          const double a = c(h, j + n - 1 - i) * kernel;
          den += a;
          for (std::size_t d = 0; d < D; ++d) num[d] += a * v(b, h, j, d);
        }
        for (std::size_t d = 0; d < D; ++d) z(b, h, i, d) = den == 0 ? 0 : num[d] / den;
      }
  return z;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fft_and_direct_evaluations_equal_the_formula) {
  const std::size_t B = 2, H = 2, n = 7, m = 5, D = 3;
  const Tensor pq = abs(randn64({B, H, n, m}, 1, false)) + 0.1,
               pk = abs(randn64({B, H, n, m}, 2, false)) + 0.1;
  const Tensor v = randn64({B, H, n, D}, 3, false), c = exp(randn64({H, 2 * n - 1}, 4, false));
  const std::vector<std::size_t> length = {7, 4};
  for (bool causal : {false, true})
    for (bool padded : {false, true})
      BOOST_TEST_CONTEXT((causal ? "causal" : "bidirectional") << (padded ? ", padded" : "")) {
        const std::vector<std::size_t> used = padded ? length : std::vector<std::size_t>{n, n};
        const std::optional<Mask> mask =
            padded ? std::optional<Mask>(padding_mask(length, n)) : std::nullopt;
        const Array<double> want = formula(pq.data<double>(), pk.data<double>(), v.data<double>(),
                                           c.data<double>(), used, causal);
        const Tensor by_fft = kernelized_attention(pq, pk, v, c, mask, causal);
        const Tensor direct = kernelized_attention(pq, pk, v, c, mask, causal, true);
        BOOST_TEST(double(xt::amax(xt::abs(by_fft.data<double>() - want))()) < 1e-10);
        BOOST_TEST(double(xt::amax(xt::abs(direct.data<double>() - want))()) < 1e-10);
      }
}

// With b = 0 (c = 1) and many features, phi(q) . phi(k) estimates exp(q . k / sqrt(D)): the
// layer approaches softmax attention, its error shrinking as 1 / sqrt(m).  The estimate has
// heavy tails (exponentials of Gaussians), so the error is averaged over 8 draws of features.
BOOST_AUTO_TEST_CASE(random_features_approach_softmax_attention) {
  const std::size_t B = 1, H = 1, n = 6, D = 4;
  const Tensor q = randn64({B, H, n, D}, 5, false) * 0.5, k = randn64({B, H, n, D}, 6, false) * 0.5;
  const Tensor v = randn64({B, H, n, D}, 7, false);
  const Array<double> softmax_out = scaled_dot_product_attention(q, k, v).data<double>();
  const Tensor c = ones({H, 2 * n - 1}, Dtype::f64);
  const auto mean_error = [&](std::size_t m) {
    double total = 0;
    for (std::uint64_t seed = 1; seed <= 8; ++seed) {
      Generator gen(seed);
      const Tensor omega(orthogonal_gaussian_features(m, D, gen));
      const Tensor z =
          kernelized_attention(favor_features(q, omega, true), favor_features(k, omega, false), v,
                               c, std::nullopt, false);
      total += xt::mean(xt::abs(z.data<double>() - softmax_out))() / 8;
    }
    return total;
  };
  const double few = mean_error(16), many = mean_error(4096);
  BOOST_TEST_MESSAGE("mean difference to softmax attention: m = 16 " << few << ", m = 4096 "
                                                                     << many);
  BOOST_TEST(many < 0.015);
  BOOST_TEST(many < few / 4);  // 1 / sqrt(m) predicts a 16th
}

BOOST_AUTO_TEST_CASE(orthogonal_features_are_orthogonal_within_a_block) {
  Generator gen(9);
  const Array<double> w = orthogonal_gaussian_features(10, 4, gen);  // blocks of 4, 4 and 2 rows
  BOOST_REQUIRE(w.shape() == (Shape{10, 4}));
  for (std::size_t block : {0, 4, 8})
    for (std::size_t r = block; r < std::min<std::size_t>(block + 4, 10); ++r)
      for (std::size_t p = block; p < r; ++p) {
        double dot = 0;
        for (std::size_t d = 0; d < 4; ++d) dot += w(r, d) * w(p, d);
        BOOST_TEST(std::abs(dot) < 1e-10);
      }
}

BOOST_AUTO_TEST_CASE(gradients) {
  for (bool causal : {false, true}) BOOST_TEST_CONTEXT((causal ? "causal" : "bidirectional")) {
      Generator gen(10);
      auto attn = make(gen);
      std::vector<Tensor> inputs = {randn64({2, 5, 8}, 11)};
      for (const Tensor& param : attn->parameters()) inputs.push_back(param);
      const Mask pad = padding_mask({5, 3}, 5);
      CHECK_GRAD(
          [&](const Inputs& in) { return attn->forward(in[0], {.mask = pad, .causal = causal}); },
          inputs);
      // The direct evaluation (a mask over query-key pairs takes it) too.
      CHECK_GRAD(
          [&](const Inputs& in) { return attn->forward(in[0], {.mask = causal_mask(5, 5)}); },
          inputs);
    }
}

BOOST_AUTO_TEST_CASE(causal_outputs_do_not_see_later_positions) {
  Generator gen(12);
  auto attn = make(gen);
  const Tensor x = randn64({1, 9, 8}, 13, false);
  Tensor changed = x.detach();
  for (std::size_t t = 5; t < 9; ++t)
    for (std::size_t d = 0; d < 8; ++d) changed.data<double>()(0, t, d) += 3.0;
  const Tensor a = attn->forward(x, {.causal = true}), b = attn->forward(changed, {.causal = true});
  BOOST_TEST(max_diff(slice(a, 1, 0, 5), slice(b, 1, 0, 5)) < 1e-12);
  BOOST_TEST(max_diff(slice(a, 1, 5, 9), slice(b, 1, 5, 9)) > 1e-3);  // the later ones do change
}

// Shift equivariance: a sequence that starts 5 positions later (after 5 cached keys it may not
// attend to) gives the same outputs; so does one followed by masked padding.
BOOST_AUTO_TEST_CASE(outputs_depend_on_offsets_not_positions_or_padding) {
  for (bool causal : {false, true}) BOOST_TEST_CONTEXT((causal ? "causal" : "bidirectional")) {
      Generator gen(14);
      auto attn = make(gen);
      const Tensor x = randn64({1, 4, 8}, 15, false);
      const Tensor alone = attn->forward(x, {.causal = causal});
      KvCache cache;
      attn->forward(randn64({1, 5, 8}, 16, false), {.cache = &cache});
      Mask later = Mask::from_shape({1, 1, 1, 9});
      for (std::size_t j = 0; j < 9; ++j) later(0, 0, 0, j) = j >= 5;
      BOOST_TEST(
          max_diff(alone, attn->forward(x, {.mask = later, .causal = causal, .cache = &cache})) <
          1e-12);
      const Tensor padded = concat({x, randn64({1, 3, 8}, 17, false)}, 1);
      const Tensor out = attn->forward(padded, {.mask = padding_mask({4}, 7), .causal = causal});
      BOOST_TEST(max_diff(alone, slice(out, 1, 0, 4)) < 1e-12);
    }
}

BOOST_AUTO_TEST_CASE(incremental_decoding_equals_the_full_pass) {
  Generator gen(18);
  auto attn = make(gen);
  const Tensor x = randn64({2, 6, 8}, 19, false);
  const Tensor full = attn->forward(x, {.causal = true});  // by FFT
  KvCache cache;
  std::vector<Tensor> steps;  // each step by the direct sum over the cached keys
  for (std::int64_t t = 0; t < 6; ++t)
    steps.push_back(attn->forward(slice(x, 1, t, t + 1), {.causal = true, .cache = &cache}));
  BOOST_TEST(max_diff(full, concat(steps, 1)) < 1e-12);
}

BOOST_AUTO_TEST_CASE(weights_are_a_distribution_over_visible_keys) {
  Generator gen(20);
  auto attn = make(gen);
  Tensor w;
  attn->forward(randn64({2, 5, 8}, 21, false),
                {.mask = padding_mask({5, 2}, 5), .causal = true, .weights = &w});
  BOOST_REQUIRE(w.shape() == (Shape{2, 2, 5, 5}));
  const Array<double>& a = w.data<double>();
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t i = 0; i < 5; ++i) {
      double total = 0;
      for (std::size_t j = 0; j < 5; ++j) {
        BOOST_TEST(a(b, 0, i, j) >= 0.0);
        if (j > i || (b == 1 && j >= 2)) BOOST_TEST(a(b, 0, i, j) == 0.0);
        total += a(b, 0, i, j);
      }
      BOOST_TEST(std::abs(total - 1) < 1e-12);
    }
}

// The random features are a buffer: not trained, but saved and loaded with the parameters, so a
// model read back computes what it computed before.
BOOST_AUTO_TEST_CASE(features_are_saved_and_loaded_as_a_buffer) {
  Generator gen_a(22), gen_b(23);
  auto a = make(gen_a), b = make(gen_b);
  for (const auto& [name, p] : a->named_parameters()) BOOST_TEST(name != "kernel_omega");
  BOOST_REQUIRE(a->named_buffers().size() == 1u);
  BOOST_TEST(a->named_buffers()[0].first == "kernel_omega");
  BOOST_TEST(!a->kernel_omega.requires_grad());
  const Tensor x = randn64({1, 5, 8}, 24, false);
  BOOST_TEST(max_diff(a->forward(x), b->forward(x)) > 1e-6);  // other features
  const std::string path = "test_kernelized_attention.npz";
  save_parameters(*a, path);
  load_parameters(*b, path);
  std::remove(path.c_str());
  BOOST_TEST(max_diff(a->forward(x), b->forward(x)) == 0.0);
}

BOOST_AUTO_TEST_CASE(errors) {
  Generator gen(25);
  CHECK_THROWS_WITH(MultiheadAttention({.d_model = 8,
                                        .heads = 2,
                                        .positions = PositionScheme::alibi,
                                        .relative_k = 2,
                                        .kind = AttentionKind::kernelized},
                                       gen),
                    "kernelized attention has its own relative positions");
  CHECK_THROWS_WITH(MultiheadAttention({.d_model = 8,
                                        .heads = 2,
                                        .positions = PositionScheme::rope,
                                        .kind = AttentionKind::kernelized},
                                       gen),
                    "it takes none, relative or an absolute scheme, not rope");
  CHECK_THROWS_WITH(
      MultiheadAttention(
          {.d_model = 8, .heads = 2, .kind = AttentionKind::kernelized, .kernel_features = 0}, gen),
      "kernelized attention needs kernel_features > 0");
  CHECK_THROWS_WITH(enum_from_name<AttentionKind>("linear"),
                    "unknown kind of attention 'linear' (known: softmax, kernelized)");
  const Tensor p = ones({1, 1, 4, 3}, Dtype::f64);
  CHECK_THROWS_WITH(kernelized_attention(p, p, ones({1, 1, 4, 2}, Dtype::f64),
                                         ones({1, 5}, Dtype::f64), std::nullopt, false),
                    "c " + std::string("(1, 5) (H, 2S - 1)"));
}

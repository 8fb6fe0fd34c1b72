#define BOOST_TEST_MODULE positional
#include <cmath>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using testing::randn64;
using Inputs = std::vector<Tensor>;
namespace tt = boost::test_tools;

namespace {

Tensor positions64(std::size_t T) { return reshape(arange(T, Dtype::f64), {-1, 1}); }

// Gradchecks pe.encode through every parameter (positions are data, not checked).
void check_encoding_grad(PositionalEncoding& pe, const Tensor& positions) {
  pe.to(Dtype::f64);
  CHECK_GRAD([&](const Inputs&) { return pe.encode(positions); }, pe.parameters());
}

}  // namespace

BOOST_AUTO_TEST_CASE(sinusoidal_values_equal_the_formula) {
  SinusoidalPositions pe(6);
  Tensor p = pe.encode(positions64(50));
  BOOST_TEST(p.shape() == (Shape{50, 6}));
  for (std::size_t t : {0u, 1u, 7u, 49u})
    for (std::size_t i = 0; i < 3; ++i) {
      const double angle = t / std::pow(10000.0, 2.0 * i / 6);
      BOOST_TEST(p.data<double>()(t, 2 * i) == std::sin(angle), tt::tolerance(1e-12));
      BOOST_TEST(p.data<double>()(t, 2 * i + 1) == std::cos(angle), tt::tolerance(1e-12));
    }
  BOOST_TEST(pe.parameter_count() == 0u);
  // forward adds the encodings of offset .. offset + T - 1 to every sequence of the batch
  Tensor x = zeros({2, 3, 6});
  Tensor y = pe.forward(x, 4);
  BOOST_TEST(y.data<float>()(1, 0, 0) == static_cast<float>(std::sin(4.0)), tt::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(learned_table_refuses_positions_beyond_its_length) {
  Generator gen(1);
  LearnedPositions pe(8, 4, gen);
  BOOST_TEST(pe.forward(zeros({2, 8, 4})).shape() == (Shape{2, 8, 4}));
  CHECK_THROWS_WITH(
      pe.forward(zeros({2, 9, 4})),
      "LearnedPositions: position 8 is beyond the table's maximum length 8 (positions 0 to 7)");
  CHECK_THROWS_WITH(pe.forward(zeros({1, 2, 4}), 7), "position 8 is beyond");
  check_encoding_grad(pe, positions64(5));
}

BOOST_AUTO_TEST_CASE(mlp_positions_work_at_any_length) {
  Generator gen(2);
  MlpPositions pe({.dim = 4, .hidden = 8, .scale = 16}, gen);
  BOOST_TEST(pe.forward(zeros({1, 1000, 4})).shape() == (Shape{1, 1000, 4}));
  BOOST_TEST(pe.parameter_count() == (1u * 8 + 8) + (8u * 4 + 4));
  check_encoding_grad(pe, positions64(6));
}

BOOST_AUTO_TEST_CASE(fourier_features_on_sequences_and_on_a_2d_grid) {
  Generator gen(3);
  FourierPositions seq({.dim = 8, .features = 6, .hidden = 5}, gen);
  BOOST_TEST(seq.forward(zeros({2, 7, 8})).shape() == (Shape{2, 7, 8}));
  BOOST_TEST(seq.parameter_count() == 3u + (6u * 5 + 5) + (5u * 8 + 8));
  check_encoding_grad(seq, positions64(4));
  // r(x) itself: with the MLP's input layer read off, |r| = 1 / sqrt(2) for each (cos, sin) pair.
  // A 3 x 3 grid of 2-d coordinates, two groups of (row, column).
  FourierPositions grid(
      {.dim = 8, .coords = 2, .groups = 2, .features = 4, .hidden = 6, .gamma = 2.0}, gen);
  std::vector<double> coords;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) coords.insert(coords.end(), {r * 0.5, c * 0.5, r * 0.5, c * 0.5});
  Tensor xy = from_vector(coords, {9, 4}, Dtype::f64);
  grid.to(Dtype::f64);
  Tensor p = grid.encode(xy);
  BOOST_TEST(p.shape() == (Shape{9, 8}));
  BOOST_TEST(max(abs(slice(p, 0, 1, 2) - slice(p, 0, 3, 4)), {0, 1}).item() >
             1e-6);  // (0, 1) vs (1, 0) differ
  check_encoding_grad(grid, xy);
  CHECK_THROWS_WITH(grid.encode(positions64(3)),
                    "FourierPositions: positions must be (T, 4), got (3, 1)");
  CHECK_THROWS_WITH(grid.forward(zeros({1, 3, 8}, Dtype::f64)), "takes 4-d positions: call encode");
  CHECK_THROWS_WITH(FourierPositions({.dim = 8, .groups = 3}, gen),
                    "dim (8) divisible by groups (3)");
}

BOOST_AUTO_TEST_CASE(fourier_weights_are_drawn_with_std_one_over_gamma) {
  Generator gen(4);
  FourierPositions pe({.dim = 4, .features = 4000, .hidden = 2, .gamma = 4.0}, gen);
  const double var = mean(pe.wr.weight * pe.wr.weight).item();
  BOOST_TEST(var == 1.0 / 16, tt::tolerance(0.05));
}

BOOST_AUTO_TEST_CASE(schemes_by_name_and_factory) {
  Generator gen(5);
  for (const auto& [scheme, name] : enum_table(PositionScheme{}).values) BOOST_TEST_CONTEXT(name) {
      BOOST_TEST((enum_from_name<PositionScheme>(name) == scheme));
      auto pe = make_positional_encoding({.scheme = scheme, .dim = 8}, gen);
      // a module for the absolute schemes; the others add nothing to the input
      BOOST_TEST((pe != nullptr) == (position_kind(scheme) == PositionKind::absolute));
      if (pe) BOOST_TEST(pe->forward(zeros({2, 5, 8})).shape() == (Shape{2, 5, 8}));
    }
  BOOST_TEST((position_kind(PositionScheme::sinusoidal) == PositionKind::absolute));
  BOOST_TEST((position_kind(PositionScheme::relative) == PositionKind::shaw));
  CHECK_THROWS_WITH(enum_from_name<PositionScheme>("bogus"),
                    "unknown position scheme 'bogus' (known: none, sinusoidal");
}

namespace {

// The positions CAPE used, read back from its lowest frequency: with C = 16 the last pair turns
// by p * 10000^(-14/16) = p * 3.2e-4, so sin is nearly linear and asin recovers p.
std::vector<std::vector<double>> cape_positions(CapePositions& cape, std::size_t B, std::size_t T) {
  const Tensor pe = cape.forward(zeros({B, T, 16}, Dtype::f64));
  const double f = std::pow(10000.0, -14.0 / 16);
  std::vector<std::vector<double>> p(B, std::vector<double>(T));
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < T; ++t) p[b][t] = std::asin(pe.data<double>()(b, t, 14)) / f;
  return p;
}

}  // namespace

BOOST_AUTO_TEST_CASE(cape_augments_in_training_only) {
  Generator gen(9);
  CapePositions cape({.dim = 16}, gen);
  SinusoidalPositions plain(16);
  const Tensor x = testing::randn64({3, 7, 16}, 1, false);
  cape.eval();
  BOOST_TEST(xt::amax(xt::abs(cape.forward(x, 4).data<double>() -
                              plain.forward(x, 4).data<double>()))() == 0.0);
  CHECK_GRAD([&](const std::vector<Tensor>& in) { return cape.forward(in[0]); },
             {testing::randn64({2, 3, 16}, 2)});
  cape.train();
  BOOST_TEST(xt::amax(xt::abs(cape.forward(x).data<double>() - plain.forward(x).data<double>()))() >
             1e-3);
  // In training each call draws new positions (no finite differences): the gradient is still
  // the identity, the encodings being constants added to x.
  Tensor leaf = testing::randn64({2, 3, 16}, 3);
  const Tensor g = testing::randn64({2, 3, 16}, 4, false);
  Tape tape;
  {
    TapeGuard recording(tape);
    sum(cape.forward(leaf) * g).backward();
  }
  BOOST_TEST(xt::amax(xt::abs(leaf.grad_data<double>() - g.data<double>()))() == 0.0);
}

BOOST_AUTO_TEST_CASE(cape_draws_within_its_ranges) {
  const std::size_t B = 4, T = 9;
  {  // a global shift only: one Delta per sequence, |Delta| <= 5, not the same for all
    Generator gen(1);
    CapePositions cape({.dim = 16, .global_shift = 5, .local_shift = 0, .max_scale = 1}, gen);
    const auto p = cape_positions(cape, B, T);
    for (std::size_t b = 0; b < B; ++b) {
      const double delta = p[b][0];
      BOOST_TEST(std::abs(delta) <= 5.0);
      for (std::size_t t = 0; t < T; ++t) BOOST_TEST(std::abs(p[b][t] - t - delta) < 1e-6);
    }
    BOOST_TEST(std::abs(p[0][0] - p[1][0]) > 1e-3);
  }
  {  // a local shift only: each token within 0.25 of its place
    Generator gen(2);
    CapePositions cape({.dim = 16, .global_shift = 0, .local_shift = 0.25, .max_scale = 1}, gen);
    const auto p = cape_positions(cape, B, T);
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < T; ++t) BOOST_TEST(std::abs(p[b][t] - t) <= 0.25 + 1e-6);
    BOOST_TEST(std::abs((p[0][3] - 3) - (p[0][4] - 4)) > 1e-4);
  }
  {  // a scale only: p' / p is one lambda per sequence in [1/1.03, 1.03]
    Generator gen(3);
    CapePositions cape({.dim = 16, .global_shift = 0, .local_shift = 0, .max_scale = 1.03}, gen);
    const auto p = cape_positions(cape, B, T);
    for (std::size_t b = 0; b < B; ++b) {
      const double lambda = p[b][1];
      BOOST_TEST((lambda >= 1 / 1.03 - 1e-6 && lambda <= 1.03 + 1e-6));
      for (std::size_t t = 1; t < T; ++t) BOOST_TEST(std::abs(p[b][t] / t - lambda) < 1e-6);
    }
  }
}

BOOST_AUTO_TEST_CASE(gaussian_basis_and_gradients) {
  Generator gen(10);
  GaussianPositions g({.dim = 8, .coords = 2, .centres = 5, .sigma = 0.2, .scale = 4}, gen);
  Array<double> points = {{0.0, 4.0}, {2.0, 1.0}, {3.0, 3.0}};
  const Array<double> psi = g.basis(points);
  BOOST_REQUIRE((psi.shape() == std::vector<std::size_t>{3, 10}));
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t m = 0; m < 2; ++m) {
      double norm = 0, best = -1;
      std::size_t argmax = 0;
      for (std::size_t k = 0; k < 5; ++k) {
        const double v = psi(t, m * 5 + k);
        norm += v * v;
        if (v > best) best = v, argmax = k;
      }
      BOOST_TEST(norm == 1.0, tt::tolerance(1e-12));  // each coordinate's K values have unit length
      BOOST_TEST(argmax == static_cast<std::size_t>(
                               std::lround(points(t, m))));  // the nearest centre k / 4 * scale
    }
  // psi_k proportional to exp(-(x - t_k)^2 / (2 sigma^2)): the ratio of two neighbours is known
  const double x = 2.0 / 4,
               ratio = std::exp((-(x - 0.75) * (x - 0.75) + (x - 0.5) * (x - 0.5)) / (2 * 0.04));
  BOOST_TEST(psi(1, 3) / psi(1, 2) == ratio, tt::tolerance(1e-12));
  g.to(Dtype::f64);
  std::vector<Tensor> inputs;
  for (const Tensor& p : g.parameters()) inputs.push_back(p);
  const Tensor positions = Tensor(points);
  CHECK_GRAD([&](const Inputs&) { return g.encode(positions); }, inputs);
  CHECK_THROWS_WITH(g.encode(zeros({1, 1}, Dtype::f64)),
                    "GaussianPositions: positions must be (T, 2)");
}

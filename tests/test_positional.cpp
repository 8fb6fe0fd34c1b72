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
  CHECK_THROWS_WITH(pe.forward(zeros({2, 9, 4})), "LearnedPositions: position 8 is beyond the table's maximum length 8 (positions 0 to 7)");
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
  FourierPositions grid({.dim = 8, .coords = 2, .groups = 2, .features = 4, .hidden = 6, .gamma = 2.0}, gen);
  std::vector<double> coords;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) coords.insert(coords.end(), {r * 0.5, c * 0.5, r * 0.5, c * 0.5});
  Tensor xy = from_vector(coords, {9, 4}, Dtype::f64);
  grid.to(Dtype::f64);
  Tensor p = grid.encode(xy);
  BOOST_TEST(p.shape() == (Shape{9, 8}));
  BOOST_TEST(max(abs(slice(p, 0, 1, 2) - slice(p, 0, 3, 4)), {0, 1}).item() > 1e-6);  // (0, 1) vs (1, 0) differ
  check_encoding_grad(grid, xy);
  CHECK_THROWS_WITH(grid.encode(positions64(3)), "FourierPositions: positions must be (T, 4), got (3, 1)");
  CHECK_THROWS_WITH(grid.forward(zeros({1, 3, 8}, Dtype::f64)), "takes 4-d positions: call encode");
  CHECK_THROWS_WITH(FourierPositions({.dim = 8, .groups = 3}, gen), "dim (8) divisible by groups (3)");
}

BOOST_AUTO_TEST_CASE(fourier_weights_are_drawn_with_std_one_over_gamma) {
  Generator gen(4);
  FourierPositions pe({.dim = 4, .features = 4000, .hidden = 2, .gamma = 4.0}, gen);
  const double var = mean(pe.wr.weight * pe.wr.weight).item();
  BOOST_TEST(var == 1.0 / 16, tt::tolerance(0.05));
}

BOOST_AUTO_TEST_CASE(schemes_by_name_and_factory) {
  Generator gen(5);
  for (auto scheme : {PositionScheme::sinusoidal, PositionScheme::learned, PositionScheme::mlp, PositionScheme::fourier}) {
    auto pe = make_positional_encoding({.scheme = scheme, .dim = 8}, gen);
    BOOST_REQUIRE(pe != nullptr);
    BOOST_TEST(pe->forward(zeros({2, 5, 8})).shape() == (Shape{2, 5, 8}));
    BOOST_TEST((position_scheme_from_name(position_scheme_name(scheme)) == scheme));
  }
  // the schemes inside attention add nothing to the input
  for (auto scheme : {PositionScheme::relative, PositionScheme::rope, PositionScheme::alibi, PositionScheme::t5}) {
    BOOST_TEST(make_positional_encoding({.scheme = scheme, .dim = 8}, gen) == nullptr);
    BOOST_TEST((position_scheme_from_name(position_scheme_name(scheme)) == scheme));
  }
  BOOST_TEST((attention_positions(PositionScheme::rope) == AttentionPositions::rope));
  BOOST_TEST((attention_positions(PositionScheme::relative) == AttentionPositions::none));
  CHECK_THROWS_WITH(position_scheme_from_name("xl"), "unknown scheme 'xl' (known: none, sinusoidal");
}

#define BOOST_TEST_MODULE ops_attention
#include <cmath>

#include "testing.hpp"

using namespace tg;
using testing::randn64;
using Inputs = std::vector<Tensor>;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_CASE(masked_softmax_equals_softmax_without_masked_entries) {
  Tensor x = randn64({2, 3, 5}, 1);
  Mask all = xt::ones<bool>({5});
  const Array<double> a = masked_softmax(x, all).data<double>(), b = softmax(x).data<double>();
  for (std::size_t i = 0; i < a.size(); ++i)
    BOOST_TEST(a.data()[i] == b.data()[i], tt::tolerance(1e-15));
  Mask some = {{true, false, true, true, false}};  // (1, 5), broadcast over rows
  Tensor y = masked_softmax(x, some);
  BOOST_TEST(y.data<double>()(1, 2, 1) == 0.0);
  BOOST_TEST(sum(y, {-1}).data<double>()(0, 0) == 1.0, tt::tolerance(1e-15));
  CHECK_GRAD([some](const Inputs& in) { return masked_softmax(in[0], some); }, {x});
}

BOOST_AUTO_TEST_CASE(a_fully_masked_row_gives_zeros_and_zero_gradients_not_nan) {
  Tensor x = randn64({2, 4}, 2);
  Mask m = {{true, true, false, true}, {false, false, false, false}};
  Tape tape;
  TapeGuard recording(tape);
  Tensor y = masked_softmax(x, m);
  BOOST_TEST(sum(abs(slice(y, 0, 1, 2))).item() == 0.0);
  sum(y * from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}, Dtype::f64)).backward();
  for (double g : x.grad_data<double>()) BOOST_TEST(std::isfinite(g));
  BOOST_TEST(sum(abs(slice(x.grad(), 0, 1, 2))).item() == 0.0);
  CHECK_GRAD([m](const Inputs& in) { return masked_softmax(in[0], m); }, {randn64({2, 4}, 3)});
  CHECK_THROWS_WITH(masked_softmax(x, Mask{true, false}),
                    "masked_softmax: shapes do not broadcast");
}

BOOST_AUTO_TEST_CASE(skew_follows_its_index_formula) {
  for (bool causal : {false, true}) {
    const std::size_t T = 3, S = 5, W = causal ? S : 2 * S - 1;
    Tensor x = randn64({2, T, W}, 4);
    Tensor y = rel_skew(x, causal);
    BOOST_TEST(y.shape() == (Shape{2, T, S}));
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < S; ++j) {
        const std::size_t c = j + T - 1 - i;  // distance j - (i + S - T), shifted by S - 1
        const double want = c < W ? x.data<double>()(1, i, c) : 0.0;
        BOOST_TEST(y.data<double>()(1, i, j) == want);
      }
    CHECK_GRAD([causal](const Inputs& in) { return rel_skew(in[0], causal); }, {x});
    CHECK_GRAD([causal](const Inputs& in) { return rel_unskew(in[0], causal); },
               {randn64({2, T, S}, 5)});
    // Adjoint: <skew(x), a> = <x, unskew(a)>
    Tensor a = randn64({2, T, S}, 6);
    BOOST_TEST(sum(rel_skew(x, causal) * a).item() == sum(x * rel_unskew(a, causal)).item(),
               tt::tolerance(1e-12));
  }
  CHECK_THROWS_WITH(rel_skew(randn64({3, 4}, 1), false),
                    "rel_skew: bidirectional distances need an odd width");
  CHECK_THROWS_WITH(rel_skew(randn64({6, 3}, 1), true), "more queries (6) than keys (3)");
}

// A broadcast mask is read in place: the same numbers as the mask expanded to x's shape, and
// the same bits on one thread and two (rows are computed independently, in parallel chunks).
BOOST_AUTO_TEST_CASE(masked_softmax_reads_broadcast_masks_in_place) {
  Generator gen(8);
  const std::size_t B = 4, H = 4, T = 24, S = 24;  // 9,216 rows x 24: several chunks
  const Tensor x = randn({B, H, T, S}, gen);
  Mask padding = Mask::from_shape({B, 1, 1, S});
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t s = 0; s < S; ++s) padding(b, 0, 0, s) = s < S - 3 * b;
  Mask causal = Mask::from_shape({T, S});
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t s = 0; s < S; ++s) causal(t, s) = s <= t;
  Mask per_row = Mask::from_shape({B, H, T, 1});  // one value per row: all or nothing
  for (std::size_t i = 0; i < per_row.size(); ++i) per_row.data()[i] = i % 5 != 0;
  for (const Mask& m : {padding, causal, per_row}) {
    const Mask expanded = xt::broadcast(m, x.shape());
    set_num_threads(1);
    const Array<float> one = masked_softmax(x, m).data<float>();
    set_num_threads(2);
    const Array<float> two = masked_softmax(x, m).data<float>();
    BOOST_TEST((one == two));
    BOOST_TEST((one == masked_softmax(x, expanded).data<float>()));
  }
  // Fully masked rows (per_row false) are zeros.
  const Array<float> y = masked_softmax(x, per_row).data<float>();
  BOOST_TEST(y(0, 0, 0, 3) == 0.0f);
  BOOST_TEST(y(0, 0, 1, 3) > 0.0f);
}

// ---- second order, reverse and forward ---------------------------------------------------

namespace {
const GradcheckOptions second_order{.order = 2, .modes = CheckModes::both};
}

BOOST_AUTO_TEST_CASE(masked_softmax_and_its_backward_pass_second_order_checks) {
  Mask m = {{true, false, true, true}, {false, false, false, false}, {true, true, true, false}};
  auto r = gradcheck([m](const Inputs& in) { return masked_softmax(in[0], m); },
                     {randn64({2, 3, 4}, 11)}, second_order);
  BOOST_CHECK_MESSAGE(r.ok, r.report);
  // As an op of its own, for any y (the rules hold for every y, not only softmax outputs).
  r = gradcheck([](const Inputs& in) { return masked_softmax_backward(in[0], in[1]); },
                {randn64({3, 4}, 12), randn64({3, 4}, 13)}, second_order);
  BOOST_CHECK_MESSAGE(r.ok, r.report);
  // Its first order is the kernel's: the same numbers as the formula y (v - <v, y>).
  const Tensor v = randn64({3, 4}, 14, false), y = randn64({3, 4}, 15, false);
  const Array<double> want = (y * (v - sum(v * y, {-1}, true))).data<double>();
  const Array<double> got = masked_softmax_backward(v, y).data<double>();
  for (std::size_t i = 0; i < got.size(); ++i)
    BOOST_TEST(got.data()[i] == want.data()[i], tt::tolerance(1e-14));
  CHECK_THROWS_WITH(masked_softmax_backward(v, randn64({4, 3}, 1)),
                    "masked_softmax_backward: v and y must have one shape");
}

BOOST_AUTO_TEST_CASE(skew_and_unskew_pass_second_order_checks) {
  for (bool causal : {false, true}) {
    BOOST_TEST_CONTEXT((causal ? "causal" : "bidirectional")) {
      const std::size_t T = 2, S = 3, W = causal ? S : 2 * S - 1;
      // Squared, so that the second derivative is not zero and the rules' rules are exercised.
      auto r = gradcheck([causal](const Inputs& in) { return rel_skew(in[0] * in[0], causal); },
                         {randn64({2, T, W}, 16)}, second_order);
      BOOST_CHECK_MESSAGE(r.ok, r.report);
      r = gradcheck([causal](const Inputs& in) { return rel_unskew(in[0] * in[0], causal); },
                    {randn64({2, T, S}, 17)}, second_order);
      BOOST_CHECK_MESSAGE(r.ok, r.report);
    }
  }
}

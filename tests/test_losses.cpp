#define BOOST_TEST_MODULE losses
#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using Inputs = std::vector<Tensor>;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_CASE(mse) {
  Tensor a = from_vector({1, 2, 3}, {3}), b = from_vector({1, 0, 0}, {3});
  BOOST_TEST(mse_loss(a, b).item() == (0 + 4 + 9) / 3.0, tt::tolerance(1e-6));
  CHECK_GRAD([](const Inputs& in) { return mse_loss(in[0], in[1]); },
             {testing::randn64({2, 3}, 1), testing::randn64({2, 3}, 2)});
  CHECK_THROWS_WITH(mse_loss(a, from_vector({1}, {1})),
                    "mse_loss: prediction and target must have one shape, got (3) and (1)");
}

namespace {

// The loss against a plain loop: for each row not ignored, with log-probabilities lp = log
// softmax(row), -(1 - e) lp[t] - (e / C) sum_j lp[j]; the mean over those rows.
double reference_cross_entropy(const Array<double>& z, const std::vector<std::int64_t>& targets,
                               double e) {
  double total = 0;
  std::size_t rows = 0;
  const std::size_t C = z.shape()[1];
  for (std::size_t r = 0; r < targets.size(); ++r) {
    if (targets[r] == -100) continue;
    double mx = z(r, 0), sum = 0, lp_sum = 0;
    for (std::size_t j = 1; j < C; ++j) mx = std::max(mx, z(r, j));
    for (std::size_t j = 0; j < C; ++j) sum += std::exp(z(r, j) - mx);
    const double log_norm = mx + std::log(sum);
    for (std::size_t j = 0; j < C; ++j) lp_sum += z(r, j) - log_norm;
    total += -(1 - e) * (z(r, targets[r]) - log_norm) - e / C * lp_sum;
    ++rows;
  }
  return total / rows;
}

}  // namespace

BOOST_AUTO_TEST_CASE(cross_entropy_and_bce) {
  Tensor logits = testing::randn64({3, 4}, 3);
  Ids targets = {0, 3, -100};
  const auto& z = logits.data<double>();
  for (double e : {0.0, 0.2}) {
    BOOST_TEST_CONTEXT("label smoothing " << e) {
      BOOST_TEST(cross_entropy_loss(logits, targets, {.ignore_index = -100, .label_smoothing = e})
                         .item() == reference_cross_entropy(z, {0, 3, -100}, e),
                 boost::test_tools::tolerance(1e-12));
    }
  }
  CHECK_GRAD(
      [targets](const Inputs& in) {
        return cross_entropy_loss(in[0], targets, {.ignore_index = -100, .label_smoothing = 0.2});
      },
      {logits});
  CHECK_GRAD([](const Inputs& in) { return bce_with_logits_loss(in[0], in[1]); },
             {testing::randn64({5}, 4), testing::uniform64({5}, 0, 1, 5)});
}

// Minimum risk training's loss against a case worked by hand: alpha 0.5,
//   example 0: log p = (-1, -2, -3), costs (0.2, 0.5, 1.0): Q ∝ (e^-0.5, e^-1, e^-1.5) =
//              (0.506480, 0.307196, 0.186324), risk 0.441218;
//   example 1: log p = (-1, -4, unused), costs (0.3, 0.9, -): Q ∝ (e^-0.5, e^-2) = (0.817574,
//              0.182426), risk 0.409455 (the missing candidate's cost 5 must not count);
// mean 0.425336.
BOOST_AUTO_TEST_CASE(minimum_risk_by_hand) {
  Tensor logp = testing::randn64({2, 3}, 1);
  Array<double>& lp = logp.data<double>();
  lp(0, 0) = -1, lp(0, 1) = -2, lp(0, 2) = -3, lp(1, 0) = -1, lp(1, 1) = -4, lp(1, 2) = -7;
  Array<double> costs = {{0.2, 0.5, 1.0}, {0.3, 0.9, 5.0}};
  Mask valid = {{true, true, true}, {true, true, false}};
  const Tensor risk = minimum_risk_loss(logp, costs, valid, 0.5);
  BOOST_TEST(risk.data<double>()() == (0.44121774429622757 + 0.40945531428381376) / 2,
             boost::test_tools::tolerance(1e-12));
  CHECK_GRAD([&](const Inputs& in) { return minimum_risk_loss(in[0], costs, valid, 0.5); }, {logp});
  // Lowering the cost of the likeliest candidate lowers the risk; making a costly one likelier
  // raises it.
  Array<double> cheaper = costs;
  cheaper(0, 0) = 0.0;
  BOOST_TEST(minimum_risk_loss(logp, cheaper, valid, 0.5).data<double>()() < risk.data<double>()());
  Mask none = valid;
  none(1, 0) = none(1, 1) = false;
  CHECK_THROWS_WITH(minimum_risk_loss(logp, costs, none, 0.5),
                    "minimum_risk_loss: example 1 has no candidate");
  CHECK_THROWS_WITH(minimum_risk_loss(logp, costs, valid, 0.0), "alpha must be positive");
  const Array<double> one_cost = xt::ones<double>({1, 1});
  CHECK_THROWS_WITH(minimum_risk_loss(logp, one_cost, valid, 0.5),
                    "costs (1, 1) and valid (2, 3) must match");
}

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
  CHECK_THROWS_WITH(mse_loss(a, from_vector({1}, {1})), "mse_loss: prediction and target must have one shape, got (3) and (1)");
}

namespace {

// The loss against a plain loop: for each row not ignored, with log-probabilities lp = log
// softmax(row), -(1 - e) lp[t] - (e / C) sum_j lp[j]; the mean over those rows.
double reference_cross_entropy(const Array<double>& z, const std::vector<std::int64_t>& targets, double e) {
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
      BOOST_TEST(cross_entropy_loss(logits, targets, {.ignore_index = -100, .label_smoothing = e}).item() ==
                     reference_cross_entropy(z, {0, 3, -100}, e),
                 boost::test_tools::tolerance(1e-12));
    }
  }
  CHECK_GRAD([targets](const Inputs& in) {
    return cross_entropy_loss(in[0], targets, {.ignore_index = -100, .label_smoothing = 0.2});
  }, {logits});
  CHECK_GRAD([](const Inputs& in) { return bce_with_logits_loss(in[0], in[1]); },
             {testing::randn64({5}, 4), testing::uniform64({5}, 0, 1, 5)});
}

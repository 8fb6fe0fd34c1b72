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

BOOST_AUTO_TEST_CASE(cross_entropy_and_bce) {
  Tensor logits = testing::randn64({3, 4}, 3);
  Ids targets = {0, 3, -100};
  BOOST_TEST(cross_entropy_loss(logits, targets).item() == cross_entropy(logits, targets).item());
  CHECK_GRAD([targets](const Inputs& in) {
    return cross_entropy_loss(in[0], targets, {.ignore_index = -100, .label_smoothing = 0.2});
  }, {logits});
  CHECK_GRAD([](const Inputs& in) { return bce_with_logits_loss(in[0], in[1]); },
             {testing::randn64({5}, 4), testing::uniform64({5}, 0, 1, 5)});
}

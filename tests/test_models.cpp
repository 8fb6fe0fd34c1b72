#define BOOST_TEST_MODULE models
#include "testing.hpp"

using namespace tg;
using models::Pooling;

namespace {

models::ClassifierOptions tiny_classifier(Pooling pooling) {
  return {.vocab = 10, .classes = 3, .d_model = 8, .heads = 2, .ff = 12, .layers = 1, .dropout = 0.0,
          .positions = nn::PositionScheme::relative, .relative_k = 2, .pooling = pooling};
}

Ids make_ids(const std::vector<std::vector<std::int64_t>>& rows, std::size_t T) {
  Ids ids = xt::zeros<std::int64_t>({rows.size(), T});
  for (std::size_t b = 0; b < rows.size(); ++b)
    for (std::size_t t = 0; t < rows[b].size(); ++t) ids(b, t) = rows[b][t];
  return ids;
}

}  // namespace

BOOST_AUTO_TEST_CASE(classifier_pooling_gradcheck) {
  for (Pooling pooling : {Pooling::mean, Pooling::max, Pooling::mean_max}) {
    BOOST_TEST_CONTEXT("pooling " << models::pooling_name(pooling)) {
      Generator gen(5);
      models::Classifier c(tiny_classifier(pooling), gen);
      c.to(Dtype::f64);
      const Ids ids = make_ids({{2, 3, 4, 5}, {6, 7}}, 4);  // the second sentence padded
      CHECK_GRAD([&](const std::vector<Tensor>&) { return c.forward(ids); }, c.parameters());
    }
  }
}

// A sentence gets the same logits alone as padded inside a batch: padding is never pooled
// (for max pooling, a padded position never wins even though its encoder output is finite).
BOOST_AUTO_TEST_CASE(classifier_pooling_ignores_padding) {
  for (Pooling pooling : {Pooling::mean, Pooling::max, Pooling::mean_max}) {
    BOOST_TEST_CONTEXT("pooling " << models::pooling_name(pooling)) {
      Generator gen(6);
      models::Classifier c(tiny_classifier(pooling), gen);
      c.eval();
      NoGradGuard no_grad;
      const Tensor batch = c.forward(make_ids({{2, 3, 4, 5, 6, 7}, {8, 9, 2}}, 6));
      const Tensor alone = c.forward(make_ids({{8, 9, 2}}, 3));
      for (std::size_t k = 0; k < 3; ++k)
        BOOST_TEST(batch.data<float>()(1, k) == alone.data<float>()(0, k), boost::test_tools::tolerance(1e-5f));
      // An empty sentence pools to zeros: its logits are the head's bias.
      const Tensor empty = c.forward(make_ids({{}, {2}}, 1));
      for (std::size_t k = 0; k < 3; ++k)
        BOOST_TEST(empty.data<float>()(0, k) == c.head.bias.data<float>()(k));
    }
  }
}

BOOST_AUTO_TEST_CASE(pooling_names_round_trip_and_refuse_unknown) {
  for (Pooling p : {Pooling::mean, Pooling::max, Pooling::mean_max})
    BOOST_TEST((models::pooling_from_name(models::pooling_name(p)) == p));
  BOOST_CHECK_EXCEPTION(models::pooling_from_name("median"), std::exception, [](const std::exception& e) {
    return testing::contains(e.what(), "unknown pooling 'median' (mean, max or mean-max)");
  });
}

BOOST_AUTO_TEST_CASE(ensemble_members_are_distinct_and_named) {
  Generator gen(7);
  models::Ensemble<models::Classifier> one(1, tiny_classifier(Pooling::mean), gen);
  BOOST_TEST(one.size() == 1u);
  BOOST_TEST(one.module().named_parameters().front().first == "embed.weight");  // the model itself

  models::Ensemble<models::Classifier> three(3, tiny_classifier(Pooling::mean), gen);
  BOOST_TEST(three.size() == 3u);
  const auto named = three.module().named_parameters();
  BOOST_TEST(named.size() == 3 * one.module().named_parameters().size());
  BOOST_TEST(named.front().first == "0.embed.weight");
  BOOST_TEST(named.back().first == "2.head.bias");
  // Each member draws its own initial weights.
  const auto& a = three.members()[0]->embed.weight.data<float>();
  const auto& b = three.members()[1]->embed.weight.data<float>();
  BOOST_TEST(!(a == b));
  BOOST_CHECK_THROW(models::Ensemble<models::Classifier>(0, tiny_classifier(Pooling::mean), gen), std::exception);
}

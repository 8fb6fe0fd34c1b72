#define BOOST_TEST_MODULE models
#include <limits>

#include "fixtures.hpp"
#include "same_bits.hpp"
#include "testing.hpp"

using namespace tg;
using fixtures::make_ids;
using models::Pooling;

namespace {

models::ClassifierOptions tiny_classifier(Pooling pooling, std::size_t conv_width = 0) {
  return {.encoder = {.vocab = 10,
                      .d_model = 8,
                      .heads = 2,
                      .ff = 12,
                      .layers = 1,
                      .dropout = 0.0,
                      .positions = nn::PositionScheme::relative,
                      .relative_k = 2,
                      .subword_buckets = 0,
                      .subword_groups = {},
                      .conv_width = conv_width},
          .classes = 3,
          .pooling = pooling};
}

// Calls check(c) on a tiny classifier of every pooling, with and without the convolution, each
// drawn afresh from Generator(seed).
template <class Check>
void for_every_pooling(std::uint64_t seed, Check check) {
  for (Pooling pooling : {Pooling::mean, Pooling::max, Pooling::mean_max})
    for (std::size_t conv : {0, 3})
      BOOST_TEST_CONTEXT("pooling " << enum_name(pooling) << ", conv width " << conv) {
        Generator gen(seed);
        models::Classifier c(tiny_classifier(pooling, conv), gen);
        check(c);
      }
}

}  // namespace

BOOST_AUTO_TEST_CASE(classifier_pooling_gradcheck) {
  for_every_pooling(5, [](models::Classifier& c) {
    c.to(Dtype::f64);
    const Ids ids = make_ids({{2, 3, 4, 5}, {6, 7}});  // the second sentence padded
    CHECK_GRAD([&](const std::vector<Tensor>&) { return c.forward(ids); }, c.parameters());
  });
}

// A sentence gets the same logits alone as padded inside a batch: padding is never pooled
// (for max pooling, a padded position never wins even though its encoder output is finite),
// and the convolution reads zeros, not padding, past a sentence's end.  The padding row of the
// embedding is made non-zero here, so that a convolution reading padding would show.
BOOST_AUTO_TEST_CASE(classifier_pooling_ignores_padding) {
  for_every_pooling(6, [](models::Classifier& c) {
    c.eval();
    for (std::size_t k = 0; k < 8; ++k) c.encoder.embed.weight.data<float>()(0, k) = 0.5f;
    NoGradGuard no_grad;
    const Tensor batch = c.forward(make_ids({{2, 3, 4, 5, 6, 7}, {8, 9, 2}}));
    const Tensor alone = c.forward(make_ids({{8, 9, 2}}));
    // Not bit for bit: the batch's products have other row and key counts (12 vs 3, 6 vs 3),
    // which oneDNN may block differently.  The logits are O(1), their float32 rounding about
    // 1e-7; padding that leaked would move them by about 0.1.
    for (std::size_t k = 0; k < 3; ++k)
      BOOST_TEST(
          testing::close_to(batch.data<float>()(1, k), alone.data<float>()(0, k), 1e-5, 1e-5),
          batch.data<float>()(1, k) << " against " << alone.data<float>()(0, k));
    // An empty sentence pools to zeros: its logits are the head's bias.
    const Tensor empty = c.forward(make_ids({{}, {2}}));
    for (std::size_t k = 0; k < 3; ++k)
      BOOST_TEST(empty.data<float>()(0, k) == c.head.bias.data<float>()(k));
  });
  Generator gen(6);
  models::Classifier c(tiny_classifier(Pooling::mean, 3), gen);
  CHECK_THROWS_WITH(c.forward(Ids(xt::ones<std::int64_t>({std::size_t(4)}))),
                    "key_padding_mask: ids must be (B, T), got (4)");
}

// The sentence encoder skips padding by default (SentenceEncoderOptions::skip_padding): the same
// logits, to the bit, as the padded pass, in training (dropout on) and in evaluation, for every
// pooling, with and without the convolution; and a batch with no real token at all.
BOOST_AUTO_TEST_CASE(skipping_padding_gives_the_padded_logits_bit_for_bit) {
  for (Pooling pooling : {Pooling::mean, Pooling::max, Pooling::mean_max})
    for (std::size_t conv : {0, 3})
      BOOST_TEST_CONTEXT("pooling " << enum_name(pooling) << ", conv width " << conv) {
        models::ClassifierOptions o = tiny_classifier(pooling, conv);
        o.encoder.dropout = 0.2;
        Generator gen_packed(7), gen_padded(7);
        models::Classifier packed(o, gen_packed);
        o.encoder.skip_padding = false;
        models::Classifier padded(o, gen_padded);
        const Ids ids = make_ids({{2, 3, 4, 5, 6, 7}, {8, 9, 2}, {4}});
        for (bool training : {true, false}) {
          packed.train(training), padded.train(training);
          NoGradGuard no_grad;
          const Tensor a = packed.forward(ids), b = padded.forward(ids);
          BOOST_TEST(testing::same_bits_or_close(a, b), "training " << training);
        }
        NoGradGuard no_grad;
        const Ids empty = make_ids({{}, {}});
        BOOST_TEST(testing::same_bits_or_close(packed.forward(empty), padded.forward(empty)));
      }
  // Kernelized attention runs padded (its key stabiliser reads every key).
  models::ClassifierOptions o = tiny_classifier(Pooling::mean);
  o.encoder.attention = nn::AttentionKind::kernelized;
  Generator gen(8);
  models::Classifier kernelized(o, gen);
  BOOST_TEST(!kernelized.encoder.skips_padding());
  BOOST_TEST(models::Classifier(tiny_classifier(Pooling::mean), gen).encoder.skips_padding());
}

// The mean over real tokens, by hand: row 0 has tokens at 0 and 2, row 1 none.
BOOST_AUTO_TEST_CASE(mean_over_tokens_by_hand) {
  const Tensor h =
      from_vector({1, 2, 10, 20, 3, 4, /* row 1 */ 5, 6, 7, 8, 9, 10}, {2, 3, 2}, Dtype::f64);
  const Array<double> mean = models::mean_over_tokens(h, make_ids({{4, 0, 7}, {}})).data<double>();
  BOOST_TEST(mean(0, 0) == 2.0);  // (1 + 3) / 2
  BOOST_TEST(mean(0, 1) == 3.0);  // (2 + 4) / 2
  BOOST_TEST(mean(1, 0) == 0.0);  // padding alone
  BOOST_TEST(mean(1, 1) == 0.0);
  CHECK_GRAD(
      [](const std::vector<Tensor>& in) {
        return models::mean_over_tokens(in[0], make_ids({{4, 0, 7}, {1}}));
      },
      {testing::randn64({2, 3, 2}, 3)});
  CHECK_THROWS_WITH(models::mean_over_tokens(h, make_ids({{1, 2}})),
                    "mean_over_tokens: h is (2, 3, 2) and ids (1, 2) (want (B, T, C) and (B, T))");
}

BOOST_AUTO_TEST_CASE(pooling_names_round_trip_and_refuse_unknown) {
  for (Pooling p : {Pooling::mean, Pooling::max, Pooling::mean_max})
    BOOST_TEST((enum_from_name<models::Pooling>(enum_name(p)) == p));
  BOOST_CHECK_EXCEPTION(
      enum_from_name<models::Pooling>("median"), std::exception, [](const std::exception& e) {
        return testing::contains(e.what(), "unknown pooling 'median' (known: mean, max, mean-max)");
      });
}

BOOST_AUTO_TEST_CASE(ensemble_members_are_distinct_and_named) {
  Generator gen(7);
  models::Ensemble<models::Classifier> one(1, tiny_classifier(Pooling::mean), gen);
  BOOST_TEST(one.size() == 1u);
  BOOST_TEST(one.named_parameters().front().first == "embed.weight");  // the model itself

  models::Ensemble<models::Classifier> three(3, tiny_classifier(Pooling::mean), gen);
  BOOST_TEST(three.size() == 3u);
  const auto named = three.named_parameters();
  BOOST_TEST(named.size() == 3 * one.named_parameters().size());
  BOOST_TEST(named.front().first == "0.embed.weight");
  BOOST_TEST(named.back().first == "2.head.bias");
  // Each member draws its own initial weights.
  const auto& a = three.members()[0]->encoder.embed.weight.data<float>();
  const auto& b = three.members()[1]->encoder.embed.weight.data<float>();
  BOOST_TEST(!(a == b));
  BOOST_CHECK_THROW(models::Ensemble<models::Classifier>(0, tiny_classifier(Pooling::mean), gen),
                    std::exception);
}

// The tagger's subword pooling: each group of slots is averaged over its real features and the
// groups are added.
BOOST_AUTO_TEST_CASE(tagger_subword_groups_gradcheck_and_pooling) {
  Generator gen(8);
  models::TaggerOptions options = fixtures::small_tagger(6, 3);
  options.encoder.d_model = 4, options.encoder.heads = 1, options.encoder.ff = 6;
  options.encoder.subword_buckets = 9;
  options.encoder.subword_groups = {1, 2, 3};
  models::Tagger t(options, gen);
  t.to(Dtype::f64);
  const Ids ids = make_ids({{2, 3, 4}, {5, 1}});
  Ids subs = xt::zeros<std::int64_t>({2, 3, 6});
  const std::int64_t rows[5][6] = {{1, 2, 3, 4, 5, 6},
                                   {2, 0, 0, 7, 8, 0},
                                   {3, 4, 5, 0, 0, 0},
                                   {8, 1, 2, 3, 4, 5},
                                   {6, 7, 0, 0, 0, 0}};
  for (std::size_t w = 0; w < 5; ++w)
    for (std::size_t k = 0; k < 6; ++k) subs(w / 3, w % 3, k) = rows[w][k];
  // The word table has a padding row 0 that the lookup returns but never trains, so finite
  // differences disagree there by design: with padding in the batch, every parameter but that
  // table is checked; without padding (row 0 unused), all of them.
  std::vector<Tensor> checked;
  for (const auto& [name, p] : t.named_parameters())
    if (name != "embed.weight") checked.push_back(p);
  BOOST_TEST(checked.size() + 1 == t.parameters().size());
  CHECK_GRAD([&](const std::vector<Tensor>&) { return t.forward(ids, &subs); }, checked);
  const Ids full_ids = make_ids({{2, 3, 4}, {5, 1, 2}});
  Ids full_subs = subs;
  for (auto& f : full_subs) f = f == 0 ? 4 : f;
  CHECK_GRAD([&](const std::vector<Tensor>&) { return t.forward(full_ids, &full_subs); },
             t.parameters());

  // Each group is a mean over its real features: order inside a group does not matter, padding
  // slots are not counted ({7, 7, 0} pools like {7, 0, 0}), and the groups are kept apart.
  NoGradGuard no_grad;
  const auto output = [&](std::vector<std::int64_t> word) {
    Ids one = xt::zeros<std::int64_t>({1, 1, 6});
    for (std::size_t k = 0; k < 6; ++k) one(0, 0, k) = word[k];
    return t.forward(make_ids({{2}}), &one).data<double>();
  };
  const auto base = output({1, 2, 3, 7, 7, 0});
  BOOST_TEST(xt::allclose(base, output({1, 3, 2, 0, 7, 7}), 1e-12, 1e-12));
  BOOST_TEST(xt::allclose(base, output({1, 2, 3, 7, 0, 0}), 1e-12, 1e-12));
  // E3 + (E7 + E8) / 2 against E7 + (E3 + E8) / 2: 3 and 7 trade groups.
  BOOST_TEST(!xt::allclose(output({1, 3, 0, 7, 8, 0}), output({1, 7, 0, 3, 8, 0}), 1e-9, 1e-9));
  const Ids five = xt::zeros<std::int64_t>({2, 3, 5});
  BOOST_CHECK_EXCEPTION(t.forward(ids, &five), std::exception, [](const std::exception& e) {
    return testing::contains(e.what(), "ids have 5 slots per bag, the groups 6");
  });
}

// The tagger with a convolution before its encoder: gradients, and each word's tags the same
// alone as padded in a batch (the convolution reads zeros past the end, not the padding row,
// which is made non-zero here so that reading it would show).
BOOST_AUTO_TEST_CASE(tagger_convolution_gradcheck_and_padding) {
  Generator gen(9);
  models::TaggerOptions options = fixtures::small_tagger(10, 4);
  options.encoder.conv_width = 3;
  models::Tagger t(options, gen);
  t.to(Dtype::f64);
  BOOST_TEST(t.encoder.conv->options().width == 3u);
  // A padded step whose whole window is padding gets conv = bias exactly; a zero bias would put
  // relu on its kink there, where finite differences cannot agree with either side.
  for (std::size_t k = 0; k < 8; ++k) t.encoder.conv->bias.data<double>()(k) = 0.1 * (k + 1);
  // As above: the padding row is returned but never trained, so it is left out of the check.
  std::vector<Tensor> checked;
  for (const auto& [name, p] : t.named_parameters())
    if (name != "embed.weight") checked.push_back(p);
  const Ids ids = make_ids({{2, 3, 4, 5}, {6, 7}});
  CHECK_GRAD([&](const std::vector<Tensor>&) { return t.forward(ids); }, checked);
  CHECK_GRAD(
      [&](const std::vector<Tensor>&) {
        return t.forward(make_ids({{2, 3, 4}, {5, 6, 7}}));
      },
      t.parameters());

  NoGradGuard no_grad;
  for (std::size_t k = 0; k < 8; ++k) t.encoder.embed.weight.data<double>()(0, k) = 0.5;
  const Tensor batch = t.forward(make_ids({{2, 3, 4, 5, 8, 9}, {6, 7, 2}}));
  const Tensor alone = t.forward(make_ids({{6, 7, 2}}));
  for (std::size_t w = 0; w < 3; ++w)
    for (std::size_t k = 0; k < 4; ++k)
      BOOST_TEST(batch.data<double>()(1, w, k) == alone.data<double>()(0, w, k),
                 boost::test_tools::tolerance(1e-12));
}

// Bagging: each member keeps its own random fraction of the examples, the same on every call.
BOOST_AUTO_TEST_CASE(bags_keep_their_fraction_and_differ_between_members) {
  std::size_t kept0 = 0, kept1 = 0, both = 0;
  const std::size_t n = 20000;
  for (std::size_t e = 0; e < n; ++e) {
    const bool a = models::in_bag(1, 0, e, 0.7), b = models::in_bag(1, 1, e, 0.7);
    BOOST_TEST(a == models::in_bag(1, 0, e, 0.7));  // deterministic
    kept0 += a, kept1 += b, both += a && b;
  }
  BOOST_TEST(kept0 > 0.68 * n);
  BOOST_TEST(kept0 < 0.72 * n);
  BOOST_TEST(kept1 > 0.68 * n);
  BOOST_TEST(kept1 < 0.72 * n);
  BOOST_TEST(both > 0.47 * n);  // independent bags: about 0.49 n in both
  BOOST_TEST(both < 0.51 * n);
  BOOST_TEST(models::in_bag(1, 3, 17, 1.0));  // fraction 1: everything
}

// A line chart (models/plots.hpp): a polyline a line, a point a value with NaN left out (a
// scheme that cannot read a context), the y axis spanning the values.
BOOST_AUTO_TEST_CASE(lines_chart) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  models::write_lines_svg("lines.svg", {"128", "256", "512"}, {"rope", "learned"},
                          {{1.5, 1.6, 1.7}, {1.4, nan, 2.0}}, "loss by context");
  const std::string svg = testing::read_file("lines.svg");
  const auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = svg.find(what); at != std::string::npos; at = svg.find(what, at + 1)) ++n;
    return n;
  };
  BOOST_TEST(count("<polyline") == 2u);
  BOOST_TEST(count("<circle") == 5u);
  BOOST_TEST(testing::contains(svg, ">1.4<"));  // the axis's bottom and top
  BOOST_TEST(testing::contains(svg, ">2<"));
  BOOST_TEST(testing::contains(svg, "learned at 512: 2<"));
}

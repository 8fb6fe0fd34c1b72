#define BOOST_TEST_MODULE nat
// The non-autoregressive translator: its decoder without the causal mask, the length
// classifier, the conditional masked language model's inputs and loss, and mask-predict.
#include <set>

#include "fixtures.hpp"
#include "testing.hpp"

using namespace tg;
using namespace tg::models;
using fixtures::make_ids;

namespace {

constexpr std::int64_t kBos = 2, kEos = 3, kMask = 4,
                       kFirst = 5;  // symbols are kFirst, kFirst + 1, ...

TranslatorOptions small_options(bool non_autoregressive = true) {
  TranslatorOptions o = fixtures::small_translator();
  o.mlp_scale = 4;
  o.max_len = 32;
  o.non_autoregressive = non_autoregressive;
  o.length_offsets = 3;
  o.length_weight = 0.5;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_decoder_sees_later_positions_only_without_the_causal_mask) {
  for (bool nat : {false, true}) {
    BOOST_TEST_CONTEXT("non-autoregressive " << nat) {
      Generator gen(3);
      Translator model(small_options(nat), gen);
      model.eval();
      NoGradGuard no_grad;
      const Ids src = make_ids({{5, 6, 7}});
      const Tensor memory = model.encode(src);
      const Tensor a = model.decode(make_ids({{5, 6, 7, 8}}), memory, key_padding_mask(src));
      const Tensor b = model.decode(make_ids({{5, 6, 7, 9}}), memory,
                                    key_padding_mask(src));  // only the last differs
      double first_change = 0;                               // at position 0
      for (std::size_t v = 0; v < 12; ++v)
        first_change = std::max(
            first_change, double(std::abs(a.data<float>()(0, 0, v) - b.data<float>()(0, 0, v))));
      if (nat) BOOST_TEST(first_change > 1e-4);  // position 0 reads position 3
      else BOOST_TEST(first_change == 0.0);      // causal: position 0 never does
    }
  }
  Generator gen(3);
  nn::Decoder decoder({.d_model = 8, .heads = 2, .ff = 8, .layers = 1}, gen);
  nn::DecoderCache cache;
  CHECK_THROWS_WITH(
      decoder.forward(randn({1, 1, 8}, gen), randn({1, 2, 8}, gen),
                      {.cache = &cache, .causal = false}),
      "Decoder: a cache decodes one position after another, which needs the causal mask");
}

BOOST_AUTO_TEST_CASE(length_classes_are_clipped_offsets_from_the_source_length) {
  Generator gen(3);
  Translator model(small_options(), gen);  // R = 3: classes 0..6 stand for offsets -3..3
  BOOST_TEST(model.length_class(5, 5) == 3);
  BOOST_TEST(model.length_class(5, 7) == 5);
  BOOST_TEST(model.length_class(5, 20) == 6);  // clipped to +3
  BOOST_TEST(model.length_class(5, 0) == 0);   // clipped to -3
  BOOST_TEST(model.class_length(5, 3) == 5u);
  BOOST_TEST(model.class_length(5, 6) == 8u);
  BOOST_TEST(model.class_length(2, 0) == 1u);    // never below one token
  BOOST_TEST(model.class_length(30, 6) == 31u);  // nor past max_len - 1
  // length_logits: (B, 2R + 1), from the real source positions only (padding changes nothing).
  NoGradGuard no_grad;
  model.eval();
  const Ids batch = make_ids({{5, 6, 7, 8, 9}, {7, 8}});
  const Tensor both = model.length_logits(model.encode(batch), batch);
  BOOST_TEST(both.shape() == Shape({2, 7}), boost::test_tools::per_element());
  const Ids alone = make_ids({{7, 8}});
  const Tensor one = model.length_logits(model.encode(alone), alone);
  for (std::size_t k = 0; k < 7; ++k)
    BOOST_TEST(testing::close_to(one.data<float>()(0, k), both.data<float>()(1, k), 1e-5, 1e-5));
  // The autoregressive model has no length classifier.
  Translator ar(small_options(false), gen);
  CHECK_THROWS_WITH(ar.length_logits(model.encode(batch), batch),
                    "Translator::length_logits: needs a non-autoregressive model");
  CHECK_THROWS_WITH(model.loss(batch, batch, batch),
                    "Translator::loss: needs an autoregressive model");
}

BOOST_AUTO_TEST_CASE(masked_targets_hide_one_to_all_tokens) {
  Generator gen(7);
  const Ids tgt = make_ids({{5, 6, 7, 8, 9, 10}, {11, 5}, {}, {6}});
  std::vector<std::size_t> counts(7, 0);  // how often row 0 had n masked
  for (int draw = 0; draw < 3000; ++draw) {
    const MaskedTargets m = mask_targets(tgt, kMask, gen);
    for (std::size_t b = 0; b < tgt.shape()[0]; ++b) {
      std::size_t masked = 0, length = 0;
      for (std::size_t t = 0; t < tgt.shape()[1]; ++t) {
        length += tgt(b, t) != 0;
        if (m.input(b, t) == kMask) {
          ++masked;
          BOOST_TEST(m.gold(b, t) == tgt(b, t));  // the loss's target is the hidden token
        } else {
          BOOST_TEST(m.input(b, t) == tgt(b, t));  // the rest, padding included, as it was
          BOOST_TEST(m.gold(b, t) == 0);
        }
      }
      BOOST_TEST(masked <= length);
      if (length > 0) BOOST_TEST(masked >= 1u);
      if (b == 0) ++counts[masked];
    }
  }
  // n is uniform on 1..6: each count about 500 of 3000 (chi-square, 5 degrees of freedom; the
  // 0.1% critical value is 20.5).
  BOOST_TEST(counts[0] == 0u);
  double chi2 = 0;
  for (std::size_t n = 1; n <= 6; ++n) chi2 += (counts[n] - 500.0) * (counts[n] - 500.0) / 500.0;
  BOOST_TEST(chi2 < 20.5);
  // Every position of a row is masked equally often over many draws.
  std::vector<std::size_t> at(6, 0);
  for (int draw = 0; draw < 3000; ++draw) {
    const MaskedTargets m = mask_targets(tgt, kMask, gen);
    for (std::size_t t = 0; t < 6; ++t) at[t] += m.input(0, t) == kMask;
  }
  for (std::size_t t = 0; t < 6; ++t)
    BOOST_TEST(testing::close_to(at[t], 3000 * 3.5 / 6, 0.1, 0.0),
               "position " << t << ": " << at[t]);
}

BOOST_AUTO_TEST_CASE(nat_loss_is_the_masked_tokens_loss_plus_the_weighted_length_loss) {
  Generator gen(5);
  Translator model(small_options(), gen);
  const Ids src = make_ids({{5, 6, 7, 8}, {9, 10}});
  const Ids tgt = make_ids({{kMask, 7, kMask, 9, 6}, {kMask, 11}});
  const Ids gold = make_ids({{5, 0, 8, 0, 0}, {10, 0}});
  Tensor loss;
  {
    NoGradGuard no_grad;
    loss = model.nat_loss(src, tgt, gold);
  }
  // The same from the parts: the logits of every position, the cross-entropy at the masked ones
  // (gold 0 is ignored), and the length classes of offsets 5 - 4 = +1 and 2 - 2 = 0 (R = 3).
  NoGradGuard no_grad;
  const Tensor memory = model.encode(src);
  const Tensor tokens = cross_entropy(model.decode(tgt, memory, key_padding_mask(src)), gold,
                                      {.ignore_index = 0, .label_smoothing = 0.1});
  Ids classes = Ids::from_shape({2});
  classes(0) = 4, classes(1) = 3;
  const Tensor lengths = cross_entropy(model.length_logits(memory, src), classes);
  BOOST_TEST(testing::close_to(loss.item(), tokens.item() + 0.5 * lengths.item(), 1e-5, 1e-6));
  CHECK_THROWS_WITH(model.nat_loss(src, tgt, make_ids({{1}})),
                    "Translator::nat_loss: src is (2, 4), tgt (2, 5) and gold (1, 1)");
}

BOOST_AUTO_TEST_CASE(nat_loss_gradcheck) {
  Generator gen(9);
  Translator model(small_options(), gen);
  model.to(Dtype::f64);
  const Ids src = make_ids({{5, 6, 7}, {9, 10, 11}});
  const Ids tgt = make_ids({{kMask, 7, kMask, 9}, {kMask, 11}});
  const Ids gold = make_ids({{5, 0, 8, 0}, {10, 0}});
  CHECK_GRAD([&](const std::vector<Tensor>&) { return model.nat_loss(src, tgt, gold); },
             model.parameters());
}

BOOST_AUTO_TEST_CASE(least_confident_positions) {
  BOOST_TEST(least_confident({-0.1, -2.0, -0.5, -3.0}, 2) == std::vector<std::size_t>({1, 3}),
             boost::test_tools::per_element());
  BOOST_TEST(least_confident({-1.0, -1.0, -1.0}, 2) == std::vector<std::size_t>({0, 1}),
             boost::test_tools::per_element());
  BOOST_TEST(least_confident({-1.0, -2.0}, 5) == std::vector<std::size_t>({0, 1}),
             boost::test_tools::per_element());
  BOOST_TEST(least_confident({-1.0, -2.0}, 0).empty());
}

namespace {

// The most likely token that is not padding, BOS, EOS or the mask, and its log-probability.
std::pair<std::int64_t, double> best_token(const Tensor& logits, std::size_t row, std::size_t t) {
  const std::size_t V = logits.shape()[2];
  std::vector<double> z(V);
  for (std::size_t v = 0; v < V; ++v) z[v] = logits.data<float>()(row, t, v);
  const double m = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (double x : z) sum += std::exp(x - m);
  std::int64_t best = -1;
  for (std::size_t v = 0; v < V; ++v)
    if (v != 0 && std::int64_t(v) != kBos && std::int64_t(v) != kEos && std::int64_t(v) != kMask &&
        (best < 0 || z[v] > z[best]))
      best = std::int64_t(v);
  return {best, z[best] - m - std::log(sum)};
}

}  // namespace

BOOST_AUTO_TEST_CASE(mask_predict_predicts_all_then_masks_again_the_least_confident) {
  Generator gen(13);
  Translator model(small_options(), gen);
  model.eval();
  const std::vector<std::int64_t> source = {5, 6, 7, 8, 9};
  const SearchOptions one_pass{.beam = 1, .bos = kBos, .eos = kEos, .mask = kMask, .refine = 1};
  const auto once = mask_predict(model, {source}, one_pass);
  // By hand: the most likely length, every position masked, one pass, the best token at each.
  NoGradGuard no_grad;
  const Ids src = make_ids({source});
  const Tensor memory = model.encode(src);
  const Tensor classes = model.length_logits(memory, src);
  std::int64_t best_class = 0;
  for (std::size_t k = 1; k < classes.shape()[1]; ++k)
    if (classes.data<float>()(0, k) > classes.data<float>()(0, best_class)) best_class = k;
  const std::size_t L = model.class_length(source.size(), best_class);
  Ids tokens = xt::full_like(Ids::from_shape({1, L}), kMask);
  const Tensor first = model.decode(tokens, memory, key_padding_mask(src));
  std::vector<double> confidence(L);
  double total = 0;
  for (std::size_t t = 0; t < L; ++t) {
    const auto [token, logp] = best_token(first, 0, t);
    tokens(0, t) = token, confidence[t] = logp, total += logp;
  }
  BOOST_TEST(once[0].tokens == std::vector<std::int64_t>(tokens.begin(), tokens.end()),
             boost::test_tools::per_element());
  BOOST_TEST(testing::close_to(once[0].log_prob, total, 1e-6, 1e-6));
  // Two iterations: the second masks the L / 2 least confident tokens again and re-predicts only
  // them, reading the kept ones; the kept tokens stay as the first pass chose them.
  SearchOptions two = one_pass;
  two.refine = 2;
  const auto twice = mask_predict(model, {source}, two);
  const auto again = least_confident(confidence, L / 2);
  Ids second = tokens;
  for (std::size_t t : again) second(0, t) = kMask;
  const Tensor logits = model.decode(second, memory, key_padding_mask(src));
  for (std::size_t t : again) second(0, t) = best_token(logits, 0, t).first;
  BOOST_TEST(twice[0].tokens == std::vector<std::int64_t>(second.begin(), second.end()),
             boost::test_tools::per_element());
  for (std::size_t t = 0; t < L; ++t)
    if (std::find(again.begin(), again.end(), t) == again.end())
      BOOST_TEST(twice[0].tokens[t] == once[0].tokens[t]);
  // A length beam tries several lengths and keeps the best by mean log-probability: never
  // worse than the single most likely length's candidate, by that measure.
  SearchOptions beam = two;
  beam.beam = 4;
  const auto wide = mask_predict(model, {source}, beam);
  // (Four rows decode in other product shapes than one: equal candidates agree to rounding.)
  BOOST_TEST(wide[0].log_prob / wide[0].tokens.size() >=
             twice[0].log_prob / twice[0].tokens.size() - 1e-4);
  // Errors: the other kind of model, or of search.
  Translator ar(small_options(false), gen);
  CHECK_THROWS_WITH(mask_predict(ar, {source}, one_pass),
                    "mask_predict: needs a non-autoregressive model");
  CHECK_THROWS_WITH(greedy_search(model, {source}, one_pass),
                    "greedy_search: a non-autoregressive model decodes with mask_predict");
  SearchOptions bad = one_pass;
  bad.refine = 0;
  CHECK_THROWS_WITH(mask_predict(model, {source}, bad), "mask_predict: refine must be at least 1");
  bad = one_pass;
  bad.mask = 12;
  CHECK_THROWS_WITH(mask_predict(model, {source}, bad),
                    "mask_predict: the mask token 12 is not a target id");
}

BOOST_AUTO_TEST_CASE(a_nat_translator_learns_to_reverse) {
  // Sequences of 2-6 symbols, reversed: the target is as long as the source (offset 0).
  Generator gen(17);
  const auto random_sequence = [&] {
    std::vector<std::int64_t> s(2 + gen.below(5));
    for (auto& x : s) x = kFirst + static_cast<std::int64_t>(gen.below(7));
    return s;
  };
  TranslatorOptions options = fixtures::reverser_translator(12);
  options.non_autoregressive = true;
  options.length_offsets = 4;
  Translator model(options, gen);
  nn::Adam opt(model.named_parameters(), {.lr = 2e-3});
  Tape tape;
  for (int step = 0; step < 1000; ++step) {
    if (step == 700) opt.set_lr(5e-4);  // settle
    std::vector<std::vector<std::int64_t>> xs, ys;
    for (int b = 0; b < 64; ++b) {
      xs.push_back(random_sequence());
      ys.emplace_back(xs.back().rbegin(), xs.back().rend());
    }
    const MaskedTargets m = mask_targets(make_ids(ys), kMask, gen);
    tape.clear();
    TapeGuard recording(tape);
    Tensor loss = model.nat_loss(make_ids(xs), m.input, m.gold);
    loss.backward();
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    opt.zero_grad();
    if (step % 100 == 0) BOOST_TEST_MESSAGE("step " << step << " loss " << loss.item());
  }
  model.eval();
  std::vector<std::vector<std::int64_t>> sources;
  for (int i = 0; i < 100; ++i) sources.push_back(random_sequence());
  std::size_t exact[2] = {0, 0};
  const std::size_t refines[2] = {1, 4};
  for (int k = 0; k < 2; ++k) {
    // One length, the most likely: this toy model is so sure of its tokens at any length that
    // a second length can win on mean log-probability.
    const auto found = mask_predict(
        model, sources, {.beam = 1, .bos = kBos, .eos = kEos, .mask = kMask, .refine = refines[k]});
    for (std::size_t i = 0; i < sources.size(); ++i)
      exact[k] +=
          found[i].tokens == std::vector<std::int64_t>(sources[i].rbegin(), sources[i].rend());
  }
  BOOST_TEST_MESSAGE("reversed exactly: " << exact[0] << " in one pass, " << exact[1]
                                          << " with 4 iterations");
  BOOST_TEST(exact[0] >= 90u);
  BOOST_TEST(exact[1] >= 90u);
}

BOOST_AUTO_TEST_CASE(a_nat_pipeline_trains_and_translates_alike_after_loading) {
  using Words = std::vector<std::string>;
  const std::vector<Words> de = {{"ein", "hund", "läuft"}, {"zwei", "katzen", "schlafen"}};
  const std::vector<Words> en = {{"a", "dog", "runs"}, {"two", "cats", "sleep", "now"}};
  TranslatorOptions options = fixtures::small_translator();
  options.src_vocab = options.tgt_vocab = 0;  // the pipeline's vocabularies give them
  options.max_len = 32;
  options.non_autoregressive = true;
  options.length_offsets = 4;
  TranslationPipeline t(Vocab::build(de, 1, false),
                        Vocab::build(en, 1, false, {"<s>", "</s>", "<mask>"}), true, options, 3);
  // The pipeline's loss masks the targets (no BOS, no EOS) and trains the length classifier too.
  {
    Tape tape;
    TapeGuard recording(tape);
    Tensor loss = t.loss({&de[0], &de[1]}, {&en[0], &en[1]});
    BOOST_TEST(std::isfinite(loss.item()));
    loss.backward();
    BOOST_REQUIRE(t.model().length_head->weight.grad().defined());
    BOOST_TEST(double(xt::amax(xt::abs(t.model().length_head->weight.grad().data<float>()))()) >
               0.0);
  }
  // Saved as a format-3 file (a format-2 reader would misread it), loaded as it is.
  t.save("nat-translator.npz");
  BOOST_TEST(nn::ModelFile::read("nat-translator.npz", "translator").format() == 3);
  const auto back = TranslationPipeline::load("nat-translator.npz");
  BOOST_TEST(back->model().options().non_autoregressive);
  t.model().eval();
  const std::vector<std::string> lines = {"Ein Hund schläft.", "Zwei Katzen."};
  BOOST_TEST(back->translate_lines(lines, {.beam = 2, .refine = 3}) ==
                 t.translate_lines(lines, {.beam = 2, .refine = 3}),
             boost::test_tools::per_element());
  // A non-autoregressive model needs the mask token in its target vocabulary.
  CHECK_THROWS_WITH(
      TranslationPipeline(Vocab::build(de, 1, false), Vocab::build(en, 1, false, {"<s>", "</s>"}),
                          true, options, 3),
      "a non-autoregressive model's target vocabulary must start with <pad> <unk> <s> </s> <mask>");
  // Neither scheduled sampling nor minimum risk training applies to it.
  CHECK_THROWS_WITH(t.loss({&de[0]}, {&en[0]}, 0, 0.5),
                    "scheduled sampling: needs an autoregressive model");
  CHECK_THROWS_WITH(t.mrt_loss({&de[0]}, {&en[0]}, {}), "mrt_loss: needs an autoregressive model");
}

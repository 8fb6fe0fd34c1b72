#define BOOST_TEST_MODULE translation
#include <fstream>

#include "fixtures.hpp"
#include "testing.hpp"

using namespace tg;
using namespace tg::models;
using Words = std::vector<std::string>;

// ---- tokenisation ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(tokenize_splits_punctuation_and_lowercases) {
  BOOST_TEST(tokenize("Zwei Männer, (lachend) tragen T-Shirts für 3,50 €.", true) ==
             (Words{"zwei", "männer", ",", "(", "lachend", ")", "tragen", "t-shirts", "für", "3,50",
                    "€", "."}));
  BOOST_TEST(tokenize("„Ein Hund!“ sagte er…", false) ==
             (Words{"„", "Ein", "Hund", "!", "“", "sagte", "er", "…"}));
  BOOST_TEST(tokenize("A man's hat - e.g. red.", false) ==
             (Words{"A", "man", "'s", "hat", "-", "e", ".", "g", ".", "red", "."}));
  BOOST_TEST(tokenize("  ÄÖÜ ß  ", true) == (Words{"äöü", "ß"}));
  BOOST_TEST(tokenize("", true).empty());
  CHECK_THROWS_WITH(tokenize("ok \xff", true), "not UTF-8 text (invalid byte at offset 3)");
}

BOOST_AUTO_TEST_CASE(detokenize_attaches_punctuation) {
  BOOST_TEST(detokenize({"a", "man", "(", "left", ")", "said", "\"", "hi", "\"", "."}) ==
             "a man (left) said \"hi\".");
  BOOST_TEST(detokenize({"the", "dog", "'s", "ball", ",", "red", "!"}) == "the dog's ball, red!");
  BOOST_TEST(detokenize({}) == "");
  BOOST_TEST(capitalize_first("a dog runs.") == "A dog runs.");
  BOOST_TEST(capitalize_first("\"über alles\"") == "\"Über alles\"");
  BOOST_TEST(capitalize_first("3 dogs") == "3 dogs");  // a digit is the first word character
  BOOST_TEST(capitalize_first("") == "");
  // Tokenising the text again gives the tokens back.
  const Words tokens = tokenize("Two men, (one in red) are talking: \"hi!\"", true);
  BOOST_TEST(tokenize(detokenize(tokens), true) == tokens);
}

// ---- BLEU -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(tokenize_13a_like_mteval) {
  BOOST_TEST(tokenize_13a("Hello, world.") == "Hello , world .");
  BOOST_TEST(tokenize_13a("It costs $3.50, ok?") == "It costs $ 3.50 , ok ?");
  BOOST_TEST(tokenize_13a("a-b 1990-2000") == "a-b 1990 - 2000");
  BOOST_TEST(tokenize_13a("x&amp;y &quot;q&quot;") == "x & y \" q \"");
  BOOST_TEST(tokenize_13a("don't  (stop)") == "don't ( stop )");
  BOOST_TEST(tokenize_13a("   ") == "");
}

// Each expected value is worked out by hand in the comment above it.
BOOST_AUTO_TEST_CASE(bleu_hand_worked_cases) {
  // Identical: every precision 100, no brevity penalty.
  BOOST_TEST(
      corpus_bleu({"the cat sat on the mat"}, {"the cat sat on the mat"}, false).score == 100.0,
      boost::test_tools::tolerance(1e-9));
  // 1-grams 5/6 ("the" twice, clipped to the reference's one), 2-grams 3/5, 3-grams 2/4,
  // 4-grams 1/3; same length: BLEU = (5/6 * 3/5 * 2/4 * 1/3)^(1/4) = (1/12)^(1/4) = 53.728...
  const Bleu b = corpus_bleu({"the cat sat on the mat"}, {"the cat sat on a mat"}, false);
  BOOST_TEST(b.score == 53.7284965911771, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(b.matches == (std::array<std::size_t, 4>{5, 3, 2, 1}));
  BOOST_TEST(b.totals == (std::array<std::size_t, 4>{6, 5, 4, 3}));
  // Short hypothesis: precisions 100, BP = exp(1 - 6/4) -> 60.653...
  BOOST_TEST(corpus_bleu({"the cat sat on"}, {"the cat sat on the mat"}, false).score ==
                 60.653065971263345,
             boost::test_tools::tolerance(1e-9));
  // "the the the the": 1-grams 2/4 (clipped), no 2-, 3-, 4-gram match: "exp" smoothing gives
  // 100/(2*3), 100/(4*2), 100/(8*1); BP = exp(1 - 6/4):
  // exp(-0.5) * (50 * 16.67 * 12.5 * 12.5)^(1/4) = 11.5216...
  BOOST_TEST(corpus_bleu({"the the the the"}, {"the cat is on the mat"}, false).score ==
                 11.521590992286539,
             boost::test_tools::tolerance(1e-9));
  // 13a splits the punctuation; lowercased, the sentences are equal; cased, "Hello" misses:
  // 3/4, 2/3, 1/2, and 4-grams 0/1 smoothed to 100/2: (75 * 66.67 * 50 * 50)^(1/4) = 59.46...
  BOOST_TEST(corpus_bleu({"Hello, world."}, {"hello , world ."}, true).score == 100.0,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(corpus_bleu({"Hello, world."}, {"hello , world ."}, false).score == 59.46035575013605,
             boost::test_tools::tolerance(1e-9));
  // Fewer than four tokens in the whole corpus: no 4-grams, BLEU 0; likewise no unigram match.
  BOOST_TEST(corpus_bleu({"the cat"}, {"the cat"}, false).score == 0.0);
  BOOST_TEST(corpus_bleu({"a b c d"}, {"e f g h"}, false).score == 0.0);
  BOOST_TEST(corpus_bleu({""}, {"a b c d"}, false).score == 0.0);
  // Corpus level: counts are summed over sentences before the precisions are taken.
  const Bleu two = corpus_bleu({"the cat sat on the mat", "the cat sat on"},
                               {"the cat sat on a mat", "the cat sat on"}, false);
  BOOST_TEST(two.matches == (std::array<std::size_t, 4>{9, 6, 4, 2}));
  BOOST_TEST(two.totals == (std::array<std::size_t, 4>{10, 8, 6, 4}));
  BOOST_TEST(two.score == 100 * std::pow(0.9 * 0.75 * (4.0 / 6) * 0.5, 0.25),
             boost::test_tools::tolerance(1e-9));
  CHECK_THROWS_WITH(corpus_bleu({"a"}, {"a", "b"}, false),
                    "corpus_bleu: 1 hypotheses but 2 references");
}

// ---- reading aligned files --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(read_parallel_names_file_and_line) {
  std::ofstream("par.de") << "Ein Hund.\nZwei Katzen!\n";
  std::ofstream("par.en") << "A dog.\nTwo cats!\n";
  const auto pairs = read_parallel("par.de", "par.en", true);
  BOOST_TEST(pairs.size() == 2u);
  BOOST_TEST(pairs[1].source == (Words{"zwei", "katzen", "!"}));
  BOOST_TEST(pairs[0].target == (Words{"a", "dog", "."}));
  const auto fails_with = [](const std::string& src, const std::string& tgt,
                             const std::string& text) {
    try {
      read_parallel(src, tgt, true);
    } catch (const DataError& e) {
      BOOST_TEST_MESSAGE(e.what());
      return testing::contains(e.what(), text);
    }
    return false;
  };
  std::ofstream("short.en") << "A dog.\n";
  BOOST_TEST(
      fails_with("par.de", "short.en", "short.en:2: the file ends here, but par.de has 2 lines"));
  std::ofstream("empty.en") << "A dog.\n\n";
  BOOST_TEST(fails_with("par.de", "empty.en", "empty.en:2: empty line"));
  std::ofstream("bad.en") << "A dog.\nTwo \xc3\x28 cats\n";
  BOOST_TEST(fails_with("par.de", "bad.en", "bad.en:2: not UTF-8 text (invalid byte at offset 4)"));
  BOOST_TEST(fails_with("missing.de", "par.en",
                        "missing.de: cannot open the file: No such file or directory"));
}

// ---- a translator that learns, and its searches
// ---------------------------------------------------

namespace {

constexpr std::int64_t kBos = 2, kEos = 3, kFirst = 4, kSymbols = 8;

std::vector<std::int64_t> random_sequence(Generator& gen) {
  std::vector<std::int64_t> s(2 + gen.below(5));
  for (auto& x : s) x = kFirst + static_cast<std::int64_t>(gen.below(kSymbols));
  return s;
}

// Trains a small translator (800 Adam steps) to reverse sequences of 2-6 symbols.
std::unique_ptr<Translator> train_reverser(Generator& gen) {
  auto model = std::make_unique<Translator>(fixtures::reverser_translator(kFirst + kSymbols), gen);
  nn::Adam opt(model->named_parameters(), {.lr = 2e-3});
  Tape tape;
  const std::size_t B = 64, T = 6;
  for (int step = 0; step < 800; ++step) {
    if (step == 500) opt.set_lr(5e-4);  // settle: the last steps polish the rare cases
    Ids src = xt::zeros<std::int64_t>({B, T}), tgt_in = xt::zeros<std::int64_t>({B, T + 1}),
        tgt_out = tgt_in;
    for (std::size_t b = 0; b < B; ++b) {
      const auto s = random_sequence(gen);
      tgt_in(b, 0) = kBos;
      for (std::size_t j = 0; j < s.size(); ++j) {
        src(b, j) = s[j];
        tgt_in(b, j + 1) = tgt_out(b, j) = s[s.size() - 1 - j];
      }
      tgt_out(b, s.size()) = kEos;
    }
    tape.clear();
    TapeGuard recording(tape);
    Tensor loss = model->loss(src, tgt_in, tgt_out);
    loss.backward();
    nn::clip_grad_norm(model->parameters(), 1.0);
    opt.step();
    opt.zero_grad();
    if (step % 100 == 0) BOOST_TEST_MESSAGE("step " << step << " loss " << loss.item());
  }
  model->eval();
  return model;
}

}  // namespace

// Greedy search keeps finished sentences in its batch and beam search drops them, so their
// products run with other row counts, which BLAS kernels may block differently: the same
// tokens' log-probabilities agree to float32 rounding (about 1e-6 per token), not to the bit.
namespace {
bool same_log_prob(const Translation& a, const Translation& b) {
  return testing::close_to(a.log_prob, b.log_prob, 0.0,
                           1e-5 * static_cast<double>(1 + b.tokens.size()));
}
}  // namespace

BOOST_AUTO_TEST_CASE(translator_learns_to_reverse_and_beam_one_is_greedy) {
  Generator gen(11);
  auto model = train_reverser(gen);
  std::vector<std::vector<std::int64_t>> sources;
  for (int i = 0; i < 60; ++i) sources.push_back(random_sequence(gen));
  const SearchOptions options{.beam = 1, .bos = kBos, .eos = kEos, .batch_sentences = 16};
  const auto greedy = greedy_search(*model, sources, options);
  std::size_t exact = 0;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const std::vector<std::int64_t> reversed(sources[i].rbegin(), sources[i].rend());
    exact += greedy[i].finished && greedy[i].tokens == reversed;
  }
  BOOST_TEST_MESSAGE(exact << " of " << sources.size() << " reversed exactly");
  BOOST_TEST(exact == sources.size());

  // Beam search with beam 1 is greedy search: same tokens, same log-probabilities.
  const auto beam1 = beam_search(*model, sources, options);
  for (std::size_t i = 0; i < sources.size(); ++i) {
    BOOST_TEST(beam1[i].tokens == greedy[i].tokens);
    BOOST_TEST(same_log_prob(beam1[i], greedy[i]),
               beam1[i].log_prob << " against " << greedy[i].log_prob);
    BOOST_TEST(beam1[i].finished == greedy[i].finished);
  }
  // The log-probability of a whole sequence, scored in one teacher-forced pass, is the one the
  // search summed token by token.
  {
    NoGradGuard no_grad;
    const std::size_t B = 8, S = 6, T = 8;
    Ids src = xt::zeros<std::int64_t>({B, S}), tgt_in = xt::zeros<std::int64_t>({B, T}),
        tgt_out = tgt_in;
    for (std::size_t b = 0; b < B; ++b) {
      for (std::size_t j = 0; j < sources[b].size(); ++j) src(b, j) = sources[b][j];
      tgt_in(b, 0) = kBos;
      for (std::size_t j = 0; j < greedy[b].tokens.size(); ++j)
        tgt_in(b, j + 1) = tgt_out(b, j) = greedy[b].tokens[j];
      tgt_out(b, greedy[b].tokens.size()) = kEos;
    }
    const Tensor scored = model->sequence_log_probs(src, tgt_in, tgt_out);
    for (std::size_t b = 0; b < B; ++b)
      BOOST_TEST(testing::close_to(scored.data<float>()(b), greedy[b].log_prob, 0.0,
                                   1e-5 * (2 + greedy[b].tokens.size())),
                 scored.data<float>()(b) << " against " << greedy[b].log_prob);
  }
  // A wider beam finds the same confident answers, in other batchings too.
  SearchOptions wide = options;
  wide.beam = 4;
  wide.batch_sentences = 7;
  const auto beam4 = beam_search(*model, sources, wide);
  for (std::size_t i = 0; i < sources.size(); ++i) BOOST_TEST(beam4[i].tokens == greedy[i].tokens);

  // Sampling: a very cold temperature, or a nucleus of one token, is greedy search; samples are
  // reproducible from the seed, and do not depend on the batching.
  for (const SamplingOptions& near_greedy :
       {SamplingOptions{.temperature = 1e-4}, SamplingOptions{.top_p = 1e-9}}) {
    const auto sampled = sample_search(*model, sources, options, near_greedy);
    for (std::size_t i = 0; i < sources.size(); ++i)
      BOOST_TEST(sampled[i].tokens == greedy[i].tokens);
  }
  const SamplingOptions warm{.temperature = 3.0, .seed = 5};
  const auto a = sample_search(*model, sources, options, warm);
  SearchOptions batched = options;
  batched.batch_sentences = 5;
  const auto b = sample_search(*model, sources, batched, warm);
  std::size_t differ_from_greedy = 0;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    BOOST_TEST(a[i].tokens == b[i].tokens);
    differ_from_greedy += a[i].tokens != greedy[i].tokens;
  }
  BOOST_TEST(differ_from_greedy > 0u);  // a warm temperature does explore
}

BOOST_AUTO_TEST_CASE(searches_agree_on_an_untrained_model_and_respect_the_length_limit) {
  // An untrained model rarely says EOS: translations run to the limit, 1.5 * length + 2 here.
  Generator gen(5);
  TranslatorOptions wide = fixtures::small_translator();
  wide.d_model = 32, wide.ff = 64, wide.layers = 2, wide.max_len = 64;
  Translator model(wide, gen);
  model.eval();
  std::vector<std::vector<std::int64_t>> sources;
  for (int i = 0; i < 10; ++i) sources.push_back(random_sequence(gen));
  const SearchOptions options{
      .beam = 1, .bos = kBos, .eos = kEos, .max_len_extra = 2, .batch_sentences = 3};
  const auto greedy = greedy_search(model, sources, options);
  const auto beam1 = beam_search(model, sources, options);
  for (std::size_t i = 0; i < sources.size(); ++i) {
    BOOST_TEST(beam1[i].tokens == greedy[i].tokens);
    BOOST_TEST(same_log_prob(beam1[i], greedy[i]),
               beam1[i].log_prob << " against " << greedy[i].log_prob);
    BOOST_TEST(greedy[i].tokens.size() <= static_cast<std::size_t>(1.5 * sources[i].size()) + 2);
    if (!greedy[i].finished)
      BOOST_TEST(greedy[i].tokens.size() == static_cast<std::size_t>(1.5 * sources[i].size()) + 2);
  }
  SearchOptions bad = options;
  bad.beam = 0;
  CHECK_THROWS_WITH(beam_search(model, sources, bad),
                    "beam_search: the beam size must be at least 1");
  bad = options;
  bad.eos = 12;
  CHECK_THROWS_WITH(greedy_search(model, sources, bad),
                    "greedy_search: BOS 2 or EOS 12 is not a target id (vocabulary of 12)");
  CHECK_THROWS_WITH(greedy_search(model, {std::vector<std::int64_t>(64, 4)}, options),
                    "greedy_search: source 0 has 64 tokens, more than the model's max_len 64");
}

BOOST_AUTO_TEST_CASE(loss_on_real_positions_equals_the_loss_over_all_logits) {
  // loss() runs the output layer on the real target positions only; it must equal the
  // cross-entropy of every position's logits with padding ignored, gradients included.
  Generator gen(17);
  Translator model(fixtures::small_translator(), gen);
  model.to(Dtype::f64);
  const Ids src = {{3, 4, 5, 0}, {6, 7, 0, 0}};
  const Ids tgt_in = {{2, 8, 9, 10}, {2, 11, 0, 0}}, tgt_out = {{8, 9, 10, 1}, {11, 1, 0, 0}};
  std::vector<Tensor> grads[2];
  double losses[2];
  for (int full = 0; full < 2; ++full) {
    for (Tensor& p : model.parameters()) p.zero_grad();
    Tape tape;
    TapeGuard recording(tape);
    Tensor loss =
        full ? cross_entropy(model.decode(tgt_in, model.encode(src), nn::padding_mask({3, 2}, 4)),
                             tgt_out, {.ignore_index = 0, .label_smoothing = 0.1})
             : model.loss(src, tgt_in, tgt_out);
    loss.backward();
    losses[full] = loss.item();
    for (const Tensor& p : model.parameters()) grads[full].push_back(p.grad());
  }
  BOOST_TEST(losses[0] == losses[1], boost::test_tools::tolerance(1e-12));
  for (std::size_t i = 0; i < grads[0].size(); ++i)
    BOOST_TEST(sum(abs(grads[0][i] - grads[1][i])).item() <=
               1e-10 * (1.0 + sum(abs(grads[1][i])).item()));
}

BOOST_AUTO_TEST_CASE(scheduled_sampling_mixes_gold_and_predicted_inputs) {
  BOOST_TEST(gold_share(0, 100) == 100.0 / 101, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(gold_share(1000, 100) == 100 / (100 + std::exp(10.0)),
             boost::test_tools::tolerance(1e-12));
  BOOST_TEST(gold_share(100000, 100) < 1e-6);  // decays to predicted inputs only
  BOOST_CHECK_THROW(gold_share(0, 0.5), std::invalid_argument);
  // (B, T) = (2, 5): BOS, gold tokens, padding
  Ids tgt_in = {{kBos, 7, 8, 9, 10}, {kBos, 11, 12, 0, 0}};
  Ids predicted = {{20, 21, 22, 23, 24}, {25, 26, 27, 28, 29}};
  Generator gen(1);
  BOOST_TEST(mix_inputs(tgt_in, predicted, 1.0, gen) == tgt_in);
  const Ids all_predicted = mix_inputs(tgt_in, predicted, 0.0, gen);
  const Ids want = {{kBos, 20, 21, 22, 23},
                    {kBos, 25, 26, 0, 0}};  // position t reads the guess of t
  BOOST_TEST(all_predicted == want);
  std::size_t gold = 0, total = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const Ids m = mix_inputs(tgt_in, predicted, 0.3, gen);
    for (std::size_t t = 1; t < 5; ++t, ++total) gold += m(0, t) == tgt_in(0, t);
  }
  BOOST_TEST(double(gold) / total == 0.3,
             boost::test_tools::tolerance(0.1));  // within 10% of the share
}

// ---- minimum risk training ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(sentence_bleu_plus_one_by_hand) {
  // "a b c d" against "a b c e": precisions 3/4, (2+1)/(3+1), (1+1)/(2+1), (0+1)/(1+1), no
  // brevity penalty: (3/4 * 3/4 * 2/3 * 1/2)^(1/4) = 0.1875^(1/4).
  BOOST_TEST(sentence_bleu({"a", "b", "c", "d"}, {"a", "b", "c", "e"}) == std::pow(0.1875, 0.25),
             boost::test_tools::tolerance(1e-12));
  // "a b" against "a b c d": every precision 1 (no 3- or 4-grams: (0+1)/(0+1)), brevity
  // penalty exp(1 - 4/2).
  BOOST_TEST(sentence_bleu({"a", "b"}, {"a", "b", "c", "d"}) == std::exp(-1.0),
             boost::test_tools::tolerance(1e-12));
  BOOST_TEST(sentence_bleu({"x", "y"}, {"a", "b"}) == 0.0);  // no unigram match
  BOOST_TEST(sentence_bleu({}, {"a"}) == 0.0);
  BOOST_TEST(sentence_bleu({"a", "b", "c", "d", "e"}, {"a", "b", "c", "d", "e"}) == 1.0);
}

namespace {
TranslationPipeline small_pipeline() {
  const std::vector<Words> de = {
      {"ein", "hund", "läuft"}, {"zwei", "katzen", "schlafen"}, {"ein", "mann", "liest"}};
  const std::vector<Words> en = {
      {"a", "dog", "runs"}, {"two", "cats", "sleep"}, {"a", "man", "reads"}};
  return TranslationPipeline(
      Vocab::build(de, 1, false), Vocab::build(en, 1, false, {"<s>", "</s>"}), true,
      {.d_model = 16, .heads = 2, .ff = 32, .layers = 1, .dropout = 0.0, .max_len = 32}, 3);
}
}  // namespace

BOOST_AUTO_TEST_CASE(minimum_risk_training_loss) {
  auto t = small_pipeline();
  const Words x0 = {"ein", "hund", "läuft"}, x1 = {"zwei", "katzen", "schlafen"};
  const Words y0 = {"a", "dog", "runs"}, y1 = {"two", "cats", "sleep"};
  Tape tape;
  TapeGuard recording(tape);
  // One candidate per sentence: Q = 1, so the risk is that candidate's cost, and nothing can
  // lower it by moving probability: every gradient is zero.
  Tensor one = t.mrt_loss({&x0, &x1}, {&y0, &y1}, {.samples = 1});
  BOOST_TEST(one.item() >= 0.0);
  BOOST_TEST(one.item() <= 1.0);
  one.backward();
  double largest = 0;
  for (const Tensor& p : t.model().parameters())
    if (p.grad().defined())
      largest = std::max(largest, double(xt::amax(xt::abs(p.grad().data<float>()))()));
  BOOST_TEST(largest < 1e-6);
  // Several candidates with different costs: the risk is a mean of costs in [0, 1], and moving
  // probability between candidates changes it.
  t.model().zero_grad();
  tape.clear();
  Tensor many = t.mrt_loss({&x0, &x1}, {&y0, &y1}, {.samples = 16, .alpha = 1.0});
  BOOST_TEST(many.item() >= 0.0);
  BOOST_TEST(many.item() <= 1.0);
  many.backward();
  largest = 0;
  for (const Tensor& p : t.model().parameters())
    if (p.grad().defined())
      largest = std::max(largest, double(xt::amax(xt::abs(p.grad().data<float>()))()));
  BOOST_TEST(largest > 1e-6);
  const Words empty;
  CHECK_THROWS_WITH(t.mrt_loss({&empty}, {&y0}, {}),
                    "mrt_loss: no sentence of the batch has a source and a reference");
  CHECK_THROWS_WITH(t.mrt_loss({&x0}, {&y0, &y1}, {}), "mrt_loss: 1 sources but 2 references");
}

BOOST_AUTO_TEST_CASE(a_loaded_translator_keeps_its_dropout_for_further_training) {
  const std::vector<Words> de = {{"ein", "hund", "läuft"}, {"zwei", "katzen", "schlafen"}};
  const std::vector<Words> en = {{"a", "dog", "runs"}, {"two", "cats", "sleep"}};
  const TranslationPipeline t(
      Vocab::build(de, 1, false), Vocab::build(en, 1, false, {"<s>", "</s>"}), true,
      {.d_model = 16, .heads = 2, .ff = 32, .layers = 1, .dropout = 0.5, .max_len = 32}, 3);
  t.save("dropout-translator.npz");
  const auto back = TranslationPipeline::load("dropout-translator.npz");
  BOOST_TEST(back->model().options().dropout == 0.5);
  BOOST_TEST(!back->model().is_training());  // loaded for use: dropout does not act
  const auto loss = [&] {
    NoGradGuard no_grad;
    return back->loss({&de[0], &de[1]}, {&en[0], &en[1]}).item();
  };
  BOOST_TEST(loss() == loss());
  back->model().train();  // train --init: training goes on with the model's dropout
  BOOST_TEST(loss() != loss());
}

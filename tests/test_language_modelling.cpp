// The language model's pipeline (models/language_modelling.hpp): evaluation against a hand
// computation from the model's own forward pass, sliding windows, the same figures on 1 and 2
// threads, seeded samples with and without the cache, training windows, a small model that
// learns a small text through the training loop, its model file, and bad input.
#define BOOST_TEST_MODULE language_modelling
#include <cmath>
#include <filesystem>
#include <map>
#include <numbers>

#include <unistd.h>

#include "testing.hpp"

using namespace tg;
using models::CharVocab;
using models::LanguageModelOptions;
using models::LanguageModelPipeline;
using nn::PositionScheme;
namespace fs = std::filesystem;

namespace {

const std::u32string kAlphabet = U"\nabcdefgh ";

LanguageModelOptions tiny(PositionScheme p = PositionScheme::rope, std::size_t max_len = 64) {
  return {.d_model = 16,
          .heads = 2,
          .ff = 32,
          .layers = 2,
          .positions = p,
          .max_len = max_len,
          .context = 8};
}

// A tiny untrained model of kAlphabet, in evaluation mode.
std::unique_ptr<LanguageModelPipeline> make(PositionScheme p = PositionScheme::rope,
                                            std::size_t max_len = 64) {
  auto lm =
      std::make_unique<LanguageModelPipeline>(CharVocab::build(kAlphabet), tiny(p, max_len), 1);
  lm->model().eval();
  return lm;
}

std::vector<std::int64_t> random_text(std::size_t n, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<std::int64_t> ids(n);
  for (auto& id : ids) id = static_cast<std::int64_t>(gen.below(kAlphabet.size()));
  return ids;
}

// -ln p(ids[to] | ids[from .. to - 1]) from one forward pass over those tokens, the softmax
// worked out here in double.
double surprise(LanguageModelPipeline& lm, const std::vector<std::int64_t>& ids, std::size_t from,
                std::size_t to) {
  Ids window = Ids::from_shape({1, to - from});
  for (std::size_t t = from; t < to; ++t) window(0, t - from) = ids[t];
  NoGradGuard no_grad;
  const Tensor logits = lm.model().forward(window);  // (1, T, V)
  const std::size_t last = to - from - 1, V = kAlphabet.size();
  double m = -1e300, sum = 0;
  for (std::size_t v = 0; v < V; ++v) m = std::max(m, double(logits.data<float>()(0, last, v)));
  for (std::size_t v = 0; v < V; ++v) sum += std::exp(logits.data<float>()(0, last, v) - m);
  return -(logits.data<float>()(0, last, static_cast<std::size_t>(ids[to])) - m - std::log(sum));
}

// A folder of its own under the system's temporary folder, removed at the end.
struct TempFolder {
  fs::path path = fs::temp_directory_path() /
                  ("tapegrad-test-language-modelling-" + std::to_string(::getpid()));
  TempFolder() { fs::create_directories(path); }
  ~TempFolder() { fs::remove_all(path); }
};

}  // namespace

// Windows that do not overlap: 25 tokens, context 8, so 3 windows score the 24 targets, each
// from the tokens before it in its own window.  Bits per character: -mean ln p / ln 2.
BOOST_AUTO_TEST_CASE(bits_per_character_by_hand) {
  auto lm = make();
  const auto ids = random_text(25, 2);
  double nats = 0;
  for (std::size_t j = 1; j < ids.size(); ++j) {
    const std::size_t start = (j - 1) / 8 * 8;  // the window holding position j - 1
    nats += surprise(*lm, ids, start, j);
  }
  const models::Evaluation e = lm->evaluate(ids, {});
  BOOST_TEST(e.tokens == 24u);
  BOOST_TEST(e.windows == 3u);
  BOOST_TEST(e.context == 8u);
  BOOST_TEST(e.nats_per_token == nats / 24, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(e.bits_per_char == nats / 24 / std::log(2.0), boost::test_tools::tolerance(1e-6));
}

// Sliding windows, context 8 and stride 3: each target j after the first window is read from
// the window that ends at the first multiple of the stride past 8 at or after j (or the text's
// end), so with at least 8 - 3 = 5 tokens before it.
BOOST_AUTO_TEST_CASE(sliding_windows_score_each_token_once) {
  auto lm = make();
  const auto ids = random_text(30, 3);  // 29 targets: windows end at 8, 11, ..., 26, 29
  double nats = 0;
  for (std::size_t j = 1; j < ids.size(); ++j) {
    std::size_t end = 8;
    while (end < j) end = std::min<std::size_t>(end + 3, 29);
    BOOST_TEST_REQUIRE(j - (end - 8) >= (j <= 8 ? 1u : 5u));  // the context j has
    nats += surprise(*lm, ids, end - 8, j);
  }
  const models::Evaluation e = lm->evaluate(ids, {.context = 8, .stride = 3});
  BOOST_TEST(e.windows == 8u);
  BOOST_TEST(e.nats_per_token == nats / 29, boost::test_tools::tolerance(1e-6));
  // A text shorter than the context is one window.
  const auto short_ids = random_text(5, 4);
  double short_nats = 0;
  for (std::size_t j = 1; j < 5; ++j) short_nats += surprise(*lm, short_ids, 0, j);
  BOOST_TEST(lm->evaluate(short_ids, {.context = 8}).nats_per_token == short_nats / 4,
             boost::test_tools::tolerance(1e-6));
}

// Evaluation and generation run in evaluation mode (no dropout) and leave the model's mode as
// it was: a model in training, with dropout, gives the figures of the same model in evaluation.
BOOST_AUTO_TEST_CASE(evaluation_and_generation_turn_dropout_off) {
  LanguageModelOptions o = tiny();
  o.dropout = 0.5;
  LanguageModelPipeline lm(CharVocab::build(kAlphabet), o, 1);
  const auto ids = random_text(30, 11);
  BOOST_TEST_REQUIRE(lm.model().is_training());
  const double training = lm.evaluate(ids, {}).nats_per_token;
  const auto text = lm.generate(U"ab", {.tokens = 20}).text;
  BOOST_TEST(lm.model().is_training());
  lm.model().eval();
  BOOST_TEST(lm.evaluate(ids, {}).nats_per_token == training);
  BOOST_TEST((lm.generate(U"ab", {.tokens = 20}).text == text));
}

BOOST_AUTO_TEST_CASE(evaluation_is_the_same_on_one_and_two_threads) {
  LanguageModelPipeline lm(CharVocab::build(kAlphabet),
                           {.d_model = 64, .heads = 4, .ff = 128, .layers = 2, .context = 48}, 5);
  lm.model().eval();
  const auto ids = random_text(3000, 6);
  const std::size_t before = num_threads();
  set_num_threads(1);
  const models::Evaluation one = lm.evaluate(ids, {.stride = 16});
  set_num_threads(2);
  const models::Evaluation two = lm.evaluate(ids, {.stride = 16});
  set_num_threads(before);
  BOOST_TEST(one.nats_per_token == two.nats_per_token);  // the same to the last bit
  BOOST_TEST(one.windows == two.windows);
}

// The same seed writes the same text, with and without the cache; another seed another text.
// A learned table of 8 positions goes on past its end from its last 4 tokens.
BOOST_AUTO_TEST_CASE(a_seeded_sample_repeats) {
  for (PositionScheme p : {PositionScheme::rope, PositionScheme::learned})
    BOOST_TEST_CONTEXT(enum_name(p)) {
      auto lm = make(p, 8);
      const models::GenerateOptions o{.tokens = 40, .sampling = {.top_k = 5, .seed = 7}};
      const auto a = lm->generate(U"abc", o), b = lm->generate(U"abc", o);
      BOOST_TEST(a.text.size() == 40u);
      BOOST_TEST((a.text == b.text));
      models::GenerateOptions no_cache = o;
      no_cache.cache = false;
      BOOST_TEST((lm->generate(U"abc", no_cache).text == a.text));
      models::GenerateOptions other = o;
      other.sampling.seed = 8;
      BOOST_TEST((lm->generate(U"abc", other).text != a.text));
      for (char32_t c : a.text) BOOST_TEST(CharVocab::build(kAlphabet).contains(c));
    }
}

// Generation reads at most the trained context (8) unless told otherwise: a rope model, which
// could read on, writes the same text with window 8 as by default, and another with window 64.
BOOST_AUTO_TEST_CASE(generation_reads_the_trained_context_unless_told_otherwise) {
  auto lm = make(PositionScheme::rope);
  const models::GenerateOptions o{.tokens = 40, .sampling = {.seed = 7}};
  models::GenerateOptions eight = o, long_window = o;
  eight.window = 8;
  long_window.window = 64;
  const auto text = lm->generate(U"abc", o).text;
  BOOST_TEST((lm->generate(U"abc", eight).text == text));
  BOOST_TEST((lm->generate(U"abc", long_window).text != text));
  models::GenerateOptions uncached = long_window;  // the cache changes nothing here either
  uncached.cache = false;
  BOOST_TEST((lm->generate(U"abc", uncached).text == lm->generate(U"abc", long_window).text));
  // A learned table of 8 positions reads no more than 8, whatever the window.
  auto learned = make(PositionScheme::learned, 8);
  BOOST_TEST((learned->generate(U"abc", long_window).text == learned->generate(U"abc", o).text));
}

BOOST_AUTO_TEST_CASE(training_windows_are_random_and_repeat_by_epoch) {
  const models::WindowBatches w{.context = 8, .batch = 4, .steps = 50, .seed = 3};
  const auto a = models::random_windows(20, w, 0);
  BOOST_TEST(a.size() == 50u);
  std::map<std::size_t, int> seen;
  for (const auto& batch : a) {
    BOOST_TEST(batch.size() == 4u);
    for (std::size_t s : batch) ++seen[s];
  }
  BOOST_TEST(seen.size() == 12u);  // every start 0 .. 20 - 8 - 1 appears, none past it
  BOOST_TEST(seen.rbegin()->first == 11u);
  BOOST_TEST((models::random_windows(20, w, 0) == a));
  BOOST_TEST((models::random_windows(20, w, 1) != a));
  CHECK_THROWS_WITH(models::random_windows(8, w, 0),
                    "a text of 8 tokens has no window of context 8 + 1 (needs at least 9)");
  for (const auto& batch : models::random_windows(9, w, 0))  // one window fits: at 0
    for (std::size_t s : batch) BOOST_TEST(s == 0u);
}

// A periodic text: a model that reads 8 characters back knows what comes next, so its loss falls
// far below the entropy of the characters' frequencies.  Trained by the loop, the best model
// saved and read back.
BOOST_AUTO_TEST_CASE(a_small_model_learns_a_small_text) {
  std::u32string text;
  for (int i = 0; i < 150; ++i) text += U"a bad cafe\n";
  const auto [train_text, valid_text] = models::split_text(text, 0.9);
  std::map<char32_t, double> counts;
  for (char32_t c : train_text) counts[c] += 1;
  double unigram = 0;  // nats per character
  for (const auto& [c, n] : counts)
    unigram -= n / train_text.size() * std::log(n / train_text.size());
  LanguageModelPipeline lm(CharVocab::build(train_text),
                           {.d_model = 32,
                            .heads = 2,
                            .ff = 64,
                            .layers = 1,
                            .positions = PositionScheme::rope,
                            .context = 16},
                           1);
  const auto train = lm.encode(train_text, "train"), valid = lm.encode(valid_text, "valid");
  const double before = lm.evaluate(valid, {}).nats_per_token;
  TempFolder tmp;
  const std::string out = (tmp.path / "lm.npz").string();
  nn::Task task = models::language_model_task(
      lm, train, valid, {.context = 16, .batch = 8, .steps = 60, .seed = 2}, "test");
  const auto result = nn::train(task, {.epochs = 3,
                                       .lr = 3e-3,
                                       .warmup = 20,
                                       .out = out,
                                       .metric_name = "loss",
                                       .metric_is_loss = true});
  BOOST_TEST(result.history.size() == 3u);
  const auto back = LanguageModelPipeline::load(out);
  const double after = back->evaluate(valid, {}).nats_per_token;
  BOOST_TEST_MESSAGE("unigram " << unigram << ", before " << before << ", after " << after);
  BOOST_TEST(after < 0.3 * unigram);
  BOOST_TEST(before > unigram);
  double best = 1e9;
  for (const auto& r : result.history) best = std::min(best, r.dev_metric);
  BOOST_TEST(after == best, boost::test_tools::tolerance(1e-9));  // the file holds the best epoch
}

BOOST_AUTO_TEST_CASE(a_model_file_gives_the_same_figures) {
  auto lm = make(PositionScheme::alibi);
  TempFolder tmp;
  const std::string path = (tmp.path / "alibi.npz").string();
  lm->save(path, "tapegrad-lm train --test");
  const auto back = LanguageModelPipeline::load(path);
  const auto ids = random_text(40, 9);
  BOOST_TEST(back->evaluate(ids, {}).nats_per_token == lm->evaluate(ids, {}).nats_per_token);
  BOOST_TEST((back->model().options().positions == PositionScheme::alibi));
  BOOST_TEST(back->model().options().context == 8u);
  BOOST_TEST((back->vocab().characters_text() == lm->vocab().characters_text()));
  BOOST_TEST(nn::ModelFile::read(path, "language_model").command() == "tapegrad-lm train --test");
}

// A model of SentencePiece pieces: bits per character divide the nats by the characters scored
// (the text's less the first token's), its samples repeat by seed with and without the cache and
// spell text of its characters, and its file keeps the pieces.
BOOST_AUTO_TEST_CASE(a_model_of_pieces_counts_characters_and_keeps_its_pieces) {
  std::u32string text;
  for (int i = 0; i < 60; ++i) text += U"a bad cafe fed the bee\n  each dead bee had a face\n";
  auto lm = std::make_unique<LanguageModelPipeline>(models::TextVocab::pieces(text, 16), tiny(), 1);
  lm->model().eval();
  BOOST_TEST(lm->model().options().vocab == 17u);
  const std::u32string head = text.substr(0, 200);
  const auto ids = lm->encode(head, "the text");
  BOOST_TEST_REQUIRE(ids.size() < 150u);
  const models::Evaluation e = lm->evaluate(ids, {});
  BOOST_TEST(e.tokens == ids.size() - 1);
  BOOST_TEST(e.characters == 200 - lm->vocab().token(ids[0]).size());
  BOOST_TEST(
      e.bits_per_char == e.nats_per_token * double(e.tokens) / double(e.characters) / std::log(2.0),
      boost::test_tools::tolerance(1e-9));
  const models::GenerateOptions o{.tokens = 300, .sampling = {.seed = 3}};
  const auto a = lm->generate(U"a bad", o);
  BOOST_TEST(a.text.size() >= 300u);  // 300 tokens of a character or more
  // An untrained model gives <unk> about 1/17 of the mass: without its mask, 300 draws would
  // write it about 18 times.
  BOOST_TEST(a.text.find(U'\uFFFD') == std::u32string::npos);
  BOOST_TEST((lm->generate(U"a bad", o).text == a.text));
  models::GenerateOptions no_cache = o;
  no_cache.cache = false;
  BOOST_TEST((lm->generate(U"a bad", no_cache).text == a.text));
  BOOST_CHECK_NO_THROW(lm->encode(a.text, "the sample"));  // made of the text's characters
  TempFolder tmp;
  const std::string path = (tmp.path / "pieces.npz").string();
  lm->save(path);
  const auto back = LanguageModelPipeline::load(path);
  BOOST_TEST((back->vocab().pieces_bytes() == lm->vocab().pieces_bytes()));
  BOOST_TEST((back->encode(text, "the text") == lm->encode(text, "the text")));
  BOOST_TEST(back->evaluate(ids, {}).nats_per_token == e.nats_per_token);
}

BOOST_AUTO_TEST_CASE(bad_input_gets_a_clear_message) {
  auto learned = make(PositionScheme::learned, 8);
  const auto ids = random_text(40, 10);
  CHECK_THROWS_WITH(learned->evaluate(ids, {.context = 16}),
                    "evaluate at context 16: positions 'learned' are a table of 8 positions");
  CHECK_THROWS_WITH(learned->evaluate(ids, {.context = 8, .stride = 9}),
                    "the stride 9 is longer than the context 8");
  CHECK_THROWS_WITH(learned->evaluate({3}, {}), "the text has 1 tokens; scoring needs at least 2");
  CHECK_THROWS_WITH(learned->generate(U"bad zebra", {.tokens = 3}),
                    "the prompt: the character 'z' (U+007A) (character 4) is not in the "
                    "vocabulary of 10 characters");
  LanguageModelPipeline no_newline(CharVocab::build(U"ab"), tiny(), 1);
  CHECK_THROWS_WITH(no_newline.generate(U"", {.tokens = 3}),
                    "an empty prompt starts from a newline");
  BOOST_TEST(learned->generate(U"", {.tokens = 3}).text.size() == 3u);
  CHECK_THROWS_WITH(
      learned->loss(ids, {35}, 8),
      "the window of 9 tokens (context 8 + 1) at 35 runs past the text's end (40 tokens)");
  CHECK_THROWS_WITH(models::language_model_task(*learned, ids, ids, {.context = 9}),
                    "train at context 9: positions 'learned' are a table of 8 positions");
}

#define BOOST_TEST_MODULE subword_vocab
#include <set>

#include "testing.hpp"

using namespace tg;
using namespace tg::models;
using Words = std::vector<std::string>;

namespace {

// A small text whose words share stems and endings, so that a subword model has pieces to find:
// "walk walked walking walks talk talked ...", in sentences of four words.
std::vector<Words> corpus() {
  const Words stems = {"walk", "talk", "jump", "play", "work", "look", "call", "help"};
  const Words endings = {"", "ed", "ing", "s"};
  std::vector<Words> sentences;
  for (std::size_t i = 0; i < 200; ++i) {
    Words s;
    for (std::size_t j = 0; j < 4; ++j)
      s.push_back(stems[(i + 3 * j) % stems.size()] + endings[(i / 3 + j) % endings.size()]);
    sentences.push_back(s);
  }
  return sentences;
}

const std::string kWordStart = "\xE2\x96\x81";

}  // namespace

BOOST_AUTO_TEST_CASE(pieces_join_back_into_the_words) {
  const SubwordVocab sp = SubwordVocab::train(corpus(), 40);
  BOOST_TEST(sp.size() == 40u);
  // Seen words, an unseen word built of seen pieces, and one with letters never seen.
  const Words words = {"walking", "talks", "helped", "worksing", "zebra", "ü"};
  const Words pieces = sp.encode(words);
  BOOST_TEST(pieces.size() > words.size());  // 40 pieces cannot hold 32 words whole and all letters
  std::size_t starts = 0;
  for (const auto& p : pieces) starts += p.compare(0, kWordStart.size(), kWordStart) == 0;
  BOOST_TEST(starts == words.size());  // every word's first piece, and only it, starts with "▁"
  BOOST_TEST(SubwordVocab::decode(pieces) == words, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(more_pieces_cut_words_into_fewer) {
  // A small model has room for little more than the letters; a larger one keeps frequent
  // words whole: the training text then takes fewer pieces.
  const SubwordVocab small = SubwordVocab::train(corpus(), 28),
                     large = SubwordVocab::train(corpus(), 44);
  std::size_t small_pieces = 0, large_pieces = 0;
  for (const auto& s : corpus())
    small_pieces += small.encode(s).size(), large_pieces += large.encode(s).size();
  BOOST_TEST_MESSAGE("the text in pieces: " << small_pieces << " with 28, " << large_pieces
                                            << " with 44");
  BOOST_TEST(large_pieces < small_pieces);
  BOOST_TEST(large.encode({"walking"}).size() < small.encode({"walking"}).size());
}

BOOST_AUTO_TEST_CASE(decode_starts_a_word_at_an_unmarked_first_piece) {
  BOOST_TEST(SubwordVocab::decode({"ing", kWordStart + "a", kWordStart + "dog", "s", kWordStart}) ==
                 Words({"ing", "a", "dogs"}),
             boost::test_tools::per_element());
  BOOST_TEST(SubwordVocab::decode({kWordStart + "a", "<unk>", "s", kWordStart + "dog"}) ==
                 Words({"a", "<unk>", "s", "dog"}),
             boost::test_tools::per_element());  // an unknown piece is a word of its own
  BOOST_TEST(SubwordVocab::decode({}).empty());
}

BOOST_AUTO_TEST_CASE(a_model_read_back_from_bytes_splits_the_same) {
  const SubwordVocab sp = SubwordVocab::train(corpus(), 40);
  const SubwordVocab back = SubwordVocab::from_bytes(sp.bytes(), "test");
  const Words words = {"walked", "calling", "helpless"};
  BOOST_TEST(back.encode(words) == sp.encode(words), boost::test_tools::per_element());
  BOOST_TEST(back.size() == sp.size());
  // Training is repeatable: the same text and size give the same model.
  BOOST_TEST(SubwordVocab::train(corpus(), 40).bytes() == sp.bytes());
}

BOOST_AUTO_TEST_CASE(bad_sizes_and_bytes_are_named) {
  CHECK_THROWS_WITH(SubwordVocab::train(corpus(), 4),
                    "subword vocabulary: size 4 is below 8 pieces");
  // 200 sentences of 32 distinct words cannot fill 5,000 pieces: SentencePiece's own message
  // says how many they can.
  BOOST_TEST(testing::contains(testing::error_of([] { SubwordVocab::train(corpus(), 5000); }),
                               "subword vocabulary of 5000 pieces: SentencePiece: "));
  BOOST_TEST(testing::contains(testing::error_of([] { SubwordVocab::train(corpus(), 5000); }),
                               "Please set it to a value <="));
  CHECK_THROWS_WITH(SubwordVocab::train({{}, {}}, 40), "subword vocabulary: no words to train on");
  BOOST_TEST(testing::contains(
      testing::error_of([] { SubwordVocab::from_bytes("not a model", "m.npz: 'subwords/model'"); }),
      "m.npz: 'subwords/model': not a SentencePiece model"));
}

BOOST_AUTO_TEST_CASE(a_subword_translator_reads_pieces_and_writes_words) {
  std::vector<Words> de = {
      {"ein", "hund", "läuft"}, {"zwei", "hunde", "laufen"}, {"ein", "mann", "läuft"}};
  std::vector<Words> en = {{"a", "dog", "runs"}, {"two", "dogs", "run"}, {"a", "man", "runs"}};
  std::vector<Words> both = de;
  both.insert(both.end(), en.begin(), en.end());
  const SubwordVocab sp = SubwordVocab::train(both, 24);
  for (auto& s : de) s = sp.encode(s);
  for (auto& s : en) s = sp.encode(s);
  TranslationPipeline t(
      Vocab::build(de, 1, false), Vocab::build(en, 1, false, {"<s>", "</s>"}), true,
      {.d_model = 16, .heads = 2, .ff = 32, .layers = 1, .dropout = 0.0, .max_len = 32}, 3, sp);
  // A line is tokenised into words (lowercased), then into pieces that the vocabulary knows.
  const Words tokens = t.tokenize("Zwei Hunde laufen.");
  BOOST_TEST(tokens == sp.encode({"zwei", "hunde", "laufen", "."}),
             boost::test_tools::per_element());
  BOOST_TEST(t.words_of(tokens) == Words({"zwei", "hunde", "laufen", "."}),
             boost::test_tools::per_element());
  // Output pieces become text of whole words.
  BOOST_TEST(t.text_of(sp.encode({"two", "dogs", "run", "."})) == "Two dogs run.");
  // The subword model travels in the model file: the loaded pipeline splits and translates alike.
  t.save("subword-translator.npz");
  const auto back = TranslationPipeline::load("subword-translator.npz");
  BOOST_REQUIRE(back->subwords().has_value());
  BOOST_TEST(back->tokenize("Ein Mann läuft.") == t.tokenize("Ein Mann läuft."),
             boost::test_tools::per_element());
  t.model().eval();
  const auto lines = std::vector<std::string>{"Ein Hund läuft.", "Zwei Männer."};
  BOOST_TEST(back->translate_lines(lines, {.beam = 2, .max_len_extra = 4}) ==
                 t.translate_lines(lines, {.beam = 2, .max_len_extra = 4}),
             boost::test_tools::per_element());
  // A word translator's file has no subword model.
  const TranslationPipeline words(
      Vocab::build({{"ein"}}, 1, false), Vocab::build({{"a"}}, 1, false, {"<s>", "</s>"}), true,
      {.d_model = 8, .heads = 2, .ff = 8, .layers = 1, .max_len = 8}, 1);
  words.save("word-translator.npz");
  BOOST_TEST(!TranslationPipeline::load("word-translator.npz")->subwords().has_value());
}

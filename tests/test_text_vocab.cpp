// The tokens a language model reads (models/data/text_vocab.hpp): characters, and SentencePiece
// pieces that spell any text of the training text's characters back exactly, never cross a line
// or a word, repeat from one training to the next, and survive a model file; bad input named.
#define BOOST_TEST_MODULE text_vocab
#include "testing.hpp"

using namespace tg;
using models::CharVocab;
using models::TextVocab;

namespace {

// Verse of a few words: speakers' names, indents, empty lines, commas and full stops.
std::u32string verse() {
  const std::vector<std::u32string> words = {U"the", U"king",  U"shall", U"speak",
                                             U"and", U"queen", U"thee",  U"thou",
                                             U"art", U"my",    U"lord",  U"good"};
  Generator gen(1);
  std::u32string text;
  for (int line = 0; line < 300; ++line) {
    if (line % 7 == 0) text += U"KING:\n";
    if (line % 11 == 0) text += U"  ";  // an indent
    for (int w = 0; w < 6; ++w) text += (w ? U" " : U"") + words[gen.below(words.size())];
    text += line % 5 == 0 ? U",\n" : U".\n";
    if (line % 13 == 0) text += U"\n";
  }
  return text;
}

}  // namespace

BOOST_AUTO_TEST_CASE(characters_are_the_tokens_of_a_char_vocab) {
  const TextVocab v = CharVocab::build(U"ba\n");
  BOOST_TEST(v.size() == 3u);
  BOOST_TEST(!v.has_pieces());
  const auto ids = v.encode(U"ab\nb", "the text");
  BOOST_TEST((ids == std::vector<std::int64_t>{1, 2, 0, 2}));  // '\n' < 'a' < 'b'
  BOOST_TEST((v.decode(ids) == U"ab\nb"));
  BOOST_TEST(v.characters_in(ids, 1) == 3u);
  BOOST_TEST(v.pieces_bytes().empty());
}

BOOST_AUTO_TEST_CASE(pieces_spell_any_text_of_its_characters_back_exactly) {
  const std::u32string text = verse();
  const TextVocab v = TextVocab::pieces(text, 48);
  BOOST_TEST(v.has_pieces());
  BOOST_TEST(v.size() == 49u);  // the pieces and the newline
  BOOST_TEST((v.token(48) == U"\n"));
  BOOST_TEST((v.token(v.unknown_id()) == U"\uFFFD"));
  BOOST_TEST(models::TextVocab(CharVocab::build(U"ab")).unknown_id() == -1);
  const auto ids = v.encode(text, "the verse");
  BOOST_TEST((v.decode(ids) == text));
  BOOST_TEST(v.characters_in(ids) == text.size());
  BOOST_TEST_MESSAGE(text.size() << " characters, " << ids.size() << " pieces");
  BOOST_TEST(ids.size() < text.size() / 2);  // the frequent words are pieces of their own
  for (std::int64_t id : ids) BOOST_TEST(id != v.unknown_id());
  for (const std::u32string odd :
       {U"\n\nthe  king\n", U"   thou", U"", U"\n", U"king \n ", U"KING:the,lord.", U"ekil", U"k"})
    BOOST_TEST_CONTEXT(models::encode_utf8(odd)) {
      BOOST_TEST((v.decode(v.encode(odd, "odd")) == odd));
    }
}

// A piece is the newline alone, or a run of spaces and then, at most, characters that are not
// spaces: pieces never join two lines or two words.
BOOST_AUTO_TEST_CASE(pieces_never_cross_a_line_or_a_word) {
  const TextVocab v = TextVocab::pieces(verse(), 48);
  for (std::size_t id = 0; id < v.size(); ++id) {
    const std::u32string& piece = v.token(static_cast<std::int64_t>(id));
    BOOST_TEST_CONTEXT(models::encode_utf8(piece)) {
      BOOST_TEST(!piece.empty());
      BOOST_TEST((piece == U"\n" || piece.find(U'\n') == std::u32string::npos));
      const std::size_t word = piece.find_first_not_of(U' ');
      BOOST_TEST((word == std::u32string::npos || piece.find(U' ', word) == std::u32string::npos));
    }
  }
}

BOOST_AUTO_TEST_CASE(pieces_repeat_and_survive_their_bytes) {
  const std::u32string text = verse();
  const TextVocab a = TextVocab::pieces(text, 40), b = TextVocab::pieces(text, 40);
  BOOST_TEST((a.pieces_bytes() == b.pieces_bytes()));
  const TextVocab back = TextVocab::from_saved(a.characters_text(), a.pieces_bytes(), "m.npz");
  BOOST_TEST(back.size() == a.size());
  BOOST_TEST((back.encode(text, "the verse") == a.encode(text, "the verse")));
  const TextVocab chars = TextVocab::from_saved(a.characters_text(), "", "m.npz");
  BOOST_TEST(!chars.has_pieces());
  BOOST_TEST(chars.size() == a.characters().size());
  BOOST_TEST(testing::contains(testing::error_of([&] {
                                 TextVocab::from_saved(a.characters_text(), "not a model", "m.npz");
                               }),
                               "m.npz: not a SentencePiece model"));
}

BOOST_AUTO_TEST_CASE(bad_input_gets_a_clear_message) {
  const TextVocab v = TextVocab::pieces(verse(), 40);
  CHECK_THROWS_WITH(v.encode(U"the zebra", "the prompt"),
                    "the prompt: the character 'z' (U+007A) (character 4) is not in the "
                    "vocabulary of");
  CHECK_THROWS_WITH(v.token(41), "TextVocab::token: id 41 is outside the vocabulary of 41 tokens");
  CHECK_THROWS_WITH(TextVocab::pieces(verse(), 7),
                    "TextVocab::pieces (7 pieces): a vocabulary needs at least 8 pieces");
  CHECK_THROWS_WITH(TextVocab::pieces(verse(), 5000),
                    "TextVocab::pieces (5000 pieces): SentencePiece: ");
  CHECK_THROWS_WITH(TextVocab::pieces(U"", 40), "TextVocab::pieces (40 pieces): the text is empty");
  CHECK_THROWS_WITH(TextVocab::pieces(U"ab\n" + std::u32string(1000001, U'a'), 40),
                    "line 2 is 1000001 bytes long; SentencePiece trains on lines of at most "
                    "1000000");
  CHECK_THROWS_WITH(TextVocab::pieces(U"\n\n", 40), "the text has no characters but newlines");
  CHECK_THROWS_WITH(TextVocab::pieces(U"a\u2581b", 40),
                    "the text holds '\u2581' (U+2581), which SentencePiece reserves for a space");
}

// Text as characters (models/data/characters.hpp): reading a UTF-8 file, the split, the
// character vocabulary, and the messages for bad text.
#define BOOST_TEST_MODULE characters
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "testing.hpp"

using namespace tg;
using models::CharVocab;
namespace fs = std::filesystem;

namespace {

// A folder of its own under the system's temporary folder, removed at the end.
struct TempFolder {
  fs::path path =
      fs::temp_directory_path() / ("tapegrad-test-characters-" + std::to_string(::getpid()));
  TempFolder() { fs::create_directories(path); }
  ~TempFolder() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return (path / name).string();
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_file_reads_as_code_points) {
  TempFolder tmp;
  const std::string path = tmp.write("text.txt", "Grüß\ndich, 世界!\n");
  const std::u32string text = models::read_text(path);
  BOOST_TEST(text.size() == 15u);  // G r ü ß \n d i c h , space 世 界 ! \n
  BOOST_TEST((text.substr(0, 5) == U"Grüß\n"));
  BOOST_TEST((text.substr(11, 3) == U"世界!"));
  BOOST_TEST(models::encode_utf8(text) == "Grüß\ndich, 世界!\n");
}

BOOST_AUTO_TEST_CASE(the_split_takes_the_first_share_of_the_characters) {
  for (std::size_t n : {10u, 11u, 19u, 1000u}) BOOST_TEST_CONTEXT("N = " << n) {
      std::u32string text;
      for (std::size_t i = 0; i < n; ++i) text.push_back(U'a' + i % 26);
      const auto [train, valid] = models::split_text(text, 0.9);
      // floor(0.9 N) characters first (nanoGPT's split of Tiny Shakespeare: 1,003,854 of
      // 1,115,394), the rest after them, nothing lost
      BOOST_TEST(train.size() == n * 9 / 10);
      BOOST_TEST(valid.size() == n - n * 9 / 10);
      BOOST_TEST((train + valid == text));
    }
  CHECK_THROWS_WITH(models::split_text(U"abc", 1.0), "the share must be in (0, 1)");
}

BOOST_AUTO_TEST_CASE(the_vocabulary_holds_each_character_once_in_order) {
  const CharVocab v = CharVocab::build(U"hello, wörld\n");
  BOOST_TEST(v.size() == 11u);  // \n space , d e h l o r w ö
  BOOST_TEST((v.character(0) == U'\n'));
  BOOST_TEST((v.character(10) == U'ö'));
  const auto ids = v.encode(U"hold", "test");
  BOOST_TEST((v.decode(ids) == U"hold"));
  BOOST_TEST(ids[0] == 5);  // h after \n, space, comma, d, e
  const CharVocab back = CharVocab::from_text(v.to_text(), "test");
  BOOST_TEST((back.decode(ids) == U"hold"));
  BOOST_TEST(back.size() == v.size());
}

BOOST_AUTO_TEST_CASE(bad_text_gets_a_clear_message) {
  TempFolder tmp;
  const std::string empty = tmp.write("empty.txt", "");
  BOOST_CHECK_THROW(models::read_text(empty), models::DataError);  // a problem of the data file
  BOOST_TEST(testing::contains(testing::error_of([&] { models::read_text(empty); }),
                               empty + ": the file is empty"));
  const std::string latin1 = tmp.write("latin1.txt", "first line\nGr\xfc\xdf");  // not UTF-8
  BOOST_TEST(testing::contains(testing::error_of([&] { models::read_text(latin1); }),
                               latin1 + ":2: not UTF-8 text (invalid byte at offset 13)"));
  BOOST_TEST(testing::contains(testing::error_of([&] { models::read_text(tmp.path / "none.txt"); }),
                               "none.txt: cannot open the file"));
  const CharVocab v = CharVocab::build(U"abc\n");
  CHECK_THROWS_WITH(v.encode(U"cab!", "the prompt"),
                    "the prompt: the character '!' (U+0021) (character 3) is not in the "
                    "vocabulary of 4 characters");
  CHECK_THROWS_WITH(v.encode(U"a\tb", "the prompt"), "the character '\\t'");
  CHECK_THROWS_WITH(v.character(4), "id 4 is outside the vocabulary of 4 characters");
  CHECK_THROWS_WITH(CharVocab::build(U""), "the text is empty");
  BOOST_CHECK_THROW(CharVocab::from_text("ba", "model.npz"), std::runtime_error);
  BOOST_CHECK_THROW(CharVocab::from_text("a\xff", "model.npz"), std::runtime_error);
}

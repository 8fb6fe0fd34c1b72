#define BOOST_TEST_MODULE data
#include <fstream>

#include "testing.hpp"

using namespace tg;
using namespace tg::models;

namespace {

std::string write(const std::string& name, const std::string& text) {
  std::ofstream(name) << text;
  return name;
}

// `expr` must throw a DataError whose message holds `text`.
#define CHECK_DATA_ERROR(expr, text)                               \
  BOOST_CHECK_EXCEPTION(expr, DataError, [&](const DataError& e) { \
    BOOST_TEST_MESSAGE(e.what());                                  \
    return testing::contains(e.what(), text);                      \
  })

}  // namespace

BOOST_AUTO_TEST_CASE(conllu_skips_comments_multiword_ranges_and_empty_nodes) {
  const std::string path = write("tiny.conllu",
                                 "# sent_id = 1\n# text = I don't know\n"
                                 "1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_\n"
                                 "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
                                 "2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_\n"
                                 "3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_\n"
                                 "3.1\tknow\tknow\tVERB\tVB\t_\t_\t_\t_\t_\n"
                                 "4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_\n"
                                 "\n\n"
                                 "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n");
  const auto s = read_conllu(path);
  BOOST_REQUIRE(s.size() == 2u);
  const std::vector<std::string> words = {"I", "do", "n't", "know"},
                                 tags = {"PRON", "AUX", "PART", "VERB"};
  BOOST_TEST(s[0].words == words, boost::test_tools::per_element());
  BOOST_TEST(s[0].tags == tags, boost::test_tools::per_element());
  BOOST_TEST(s[1].words.size() == 1u);
}

BOOST_AUTO_TEST_CASE(malformed_lines_are_reported_with_file_and_line) {
  using Read = void (*)(const std::string& path);
  const Read conllu = [](const std::string& path) { read_conllu(path); };
  const Read tsv = [](const std::string& path) { read_tsv(path); };
  const Read label_first = [](const std::string& path) { read_label_first(path); };
  const struct {
    const char* file;
    const char* text;  // nullptr: no such file
    Read read;
    const char* message;
  } cases[] = {
      {"bad.conllu", "1\tI\tI\tPRON\tPRP\t_\t0\troot\t_\t_\n2\tam\tbe\tAUX\n", conllu,
       "bad.conllu:2: expected 10 tab-separated columns (CoNLL-U), found 4"},
      {"badid.conllu", "x\tI\tI\tPRON\tPRP\t_\t0\troot\t_\t_\n", conllu,
       "badid.conllu:1: the token id 'x' is not a number"},
      {"bad.tsv", "sentence\tlabel\ngood film\t1\nno label here\n", tsv,
       "bad.tsv:3: expected 'sentence<TAB>label', found 1 columns"},
      {"noheader.tsv", "good film\t1\n", tsv, "noheader.tsv:1: expected the header"},
      {"empty.tsv", "sentence\tlabel\n \t1\n", tsv, "empty.tsv:2: the sentence is empty"},
      {"bad.stsa", "1 fine\n0\n", label_first,
       "bad.stsa:2: expected '<label> <sentence>', found no sentence"},
      {"missing.conllu", nullptr, conllu,
       "missing.conllu: cannot open the file: No such file or directory"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.file) {
      if (c.text != nullptr) write(c.file, c.text);
      CHECK_DATA_ERROR(c.read(c.file), c.message);
    }
  }
}

BOOST_AUTO_TEST_CASE(invalid_utf8_and_sentences_without_tokens) {
  write("latin1.tsv", "sentence\tlabel\nein sch\xf6ner Film\t1\n");
  CHECK_DATA_ERROR(read_tsv("latin1.tsv"),
                   "latin1.tsv:2: not UTF-8 text (invalid byte at offset 7)");
  write("notokens.conllu",
        "# sent_id = 1\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n# sent_id = 2\n# text = \n\n");
  CHECK_DATA_ERROR(read_conllu("notokens.conllu"),
                   "notokens.conllu:6: the sentence ending here has no tokens");
}

// With BadLines::skip, a malformed line is counted and dropped with its sentence; the rest is read.
BOOST_AUTO_TEST_CASE(bad_lines_can_be_skipped_and_counted) {
  write("mixed.conllu",
        "1\tA\ta\tDET\t_\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
        "1\tbroken\tline\n2\tcat\tcat\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
        "1\tHi\thi\tINTJ\t_\t_\t0\troot\t_\t_\n");
  BadLines bad{.skip = true};
  const auto s = read_conllu("mixed.conllu", &bad);
  BOOST_REQUIRE(s.size() == 2u);  // the sentence with the broken line is gone, whole
  BOOST_TEST(s[0].words == (std::vector<std::string>{"A", "dog"}));
  BOOST_TEST(s[1].words == (std::vector<std::string>{"Hi"}));
  BOOST_TEST(bad.skipped == 1u);
  BOOST_REQUIRE(bad.first.size() == 1u);
  BOOST_TEST(testing::contains(bad.first[0], "mixed.conllu:4: expected 10 tab-separated columns"));
  // The same file stops the reader by default, or with skip off.
  BadLines stop;
  CHECK_DATA_ERROR(read_conllu("mixed.conllu", &stop), "mixed.conllu:4:");

  write("mixed.tsv", "sentence\tlabel\ngood\t1\nno label\n\xff\t0\nbad\t0\n");
  BadLines tsv{.skip = true};
  const auto t = read_labeled("mixed.tsv", &tsv);
  BOOST_TEST(t.size() == 2u);
  BOOST_TEST(tsv.skipped == 2u);

  write("p.de", "Ein Hund.\n\nDrei \xff Katzen.\nVier.\n");
  write("p.en", "A dog.\nTwo.\nThree cats.\n\n");
  BadLines pairs_bad{.skip = true};
  const auto pairs = read_parallel("p.de", "p.en", true, &pairs_bad);
  BOOST_REQUIRE(pairs.size() == 1u);  // lines 2, 3 and 4 each have a bad side: their pairs go
  BOOST_TEST(pairs[0].target == (std::vector<std::string>{"a", "dog", "."}));
  BOOST_TEST(pairs_bad.skipped == 3u);
  BOOST_TEST(testing::contains(pairs_bad.first[1], "p.de:3: not UTF-8 text"));
  BOOST_TEST(testing::contains(pairs_bad.first[2], "p.en:4: empty line"));
}

BOOST_AUTO_TEST_CASE(sentiment_formats) {
  write("s.tsv", "sentence\tlabel\nit 's a charming journey . \t1\nbleak \t0\n");
  const auto a = read_labeled("s.tsv");
  BOOST_REQUIRE(a.size() == 2u);
  BOOST_TEST(a[0].words.size() == 6u);
  BOOST_TEST(a[1].label == "0");
  write("s.stsa", "3 a fine film\n0 awful\n");
  const auto b = read_labeled("s.stsa");
  BOOST_REQUIRE(b.size() == 2u);
  BOOST_TEST(b[0].label == "3");
  BOOST_TEST(b[0].words.size() == 3u);
}

BOOST_AUTO_TEST_CASE(vocabularies) {
  const std::vector<std::vector<std::string>> s = {{"The", "cat", "the"}, {"the", "dog"}};
  Vocab lower = Vocab::build(s, 2, true);
  BOOST_TEST(lower.size() == 3u);  // <pad>, <unk>, the
  BOOST_TEST(lower.id("THE") == 2);
  BOOST_TEST(lower.id("cat") == Vocab::kUnk);
  Vocab cased = Vocab::build(s, 1, false);
  BOOST_TEST(cased.id("The") != cased.id("the"));
  const Vocab back = Vocab::from_text(cased.to_text(), "test");
  BOOST_TEST(back.id("dog") == cased.id("dog"));
  BOOST_TEST(back.size() == cased.size());
  Vocab tags = Vocab::closed({"NOUN", "DET", "NOUN"});
  BOOST_TEST(tags.size() == 2u);
  CHECK_THROWS_WITH(tags.id("VERB"), "unknown label 'VERB' (known: DET, NOUN)");
  BOOST_CHECK_THROW(Vocab::from_text("garbage", "f"), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(subword_features_share_suffixes) {
  const SubwordOptions o{.buckets = 1000, .max_features = 40};
  const auto a = subword_ids("walking", o), b = subword_ids("talking", o),
             c = subword_ids("Walking", o);
  int shared = 0;
  for (auto x : a) shared += std::count(b.begin(), b.end(), x) > 0;
  BOOST_TEST(shared >= 5);   // "ing>", "ng>", "king", ...
  BOOST_TEST(a[0] != c[0]);  // the shape differs: "x" vs "Xx"
  BOOST_TEST(a.size() == c.size());
  for (auto x : a) BOOST_TEST((x >= 1 && x < 1000));
  BOOST_TEST(subword_ids("a", {.buckets = 1000, .max_features = 3, .grouped = false}).size() == 3u);
}

BOOST_AUTO_TEST_CASE(grouped_subword_features_keep_their_slots) {
  const SubwordOptions o{.buckets = 1000, .max_features = 12};
  BOOST_TEST((o.groups() == std::vector<std::size_t>{1, 4, 7}));
  const auto walking = subword_ids("walking", o), talking = subword_ids("talking", o);
  const auto Walking = subword_ids("Walking", o), a = subword_ids("a", o);
  BOOST_TEST(walking.size() == 12u);
  BOOST_TEST(walking[0] == talking[0]);  // shape "x"
  BOOST_TEST(walking[0] != Walking[0]);  // "Xx"
  for (std::size_t k = 1; k <= 4; ++k) {
    BOOST_TEST(walking[k] == talking[k]);  // "g", "ng", "ing", "king"
    BOOST_TEST(walking[k] == Walking[k]);  // lowercased
  }
  BOOST_TEST(walking[5] != talking[5]);  // the first bigram: "<w" vs "<t"
  BOOST_TEST(a[1] != 0);                 // "a" has a one-letter ending only
  BOOST_TEST((a[2] == 0 && a[3] == 0 && a[4] == 0));
  // Endings and n-grams hash apart even for the same letters ("ing>" in both groups).
  const auto all = subword_ids("walking", {.buckets = 1000, .max_features = 40});
  BOOST_TEST(all.size() == 5u + 8 + 7 + 6 + 5);  // "<walking>": 8 bigrams, 7 trigrams, ...
  BOOST_TEST(std::count(all.begin() + 5, all.end(), all[3]) == 0);
  BOOST_CHECK_THROW(subword_ids("a", {.buckets = 1000, .max_features = 5}), std::invalid_argument);
  BOOST_TEST((SubwordOptions{.max_features = 9, .grouped = false}.groups() ==
              std::vector<std::size_t>{9}));
}

BOOST_AUTO_TEST_CASE(batches_cover_every_sentence_once_and_respect_the_budget) {
  std::vector<std::size_t> lengths;
  Generator gen(1);
  for (int i = 0; i < 500; ++i) lengths.push_back(1 + gen.below(40));
  Generator shuffle(7);
  const auto batches = make_batches(lengths, 200, 16, &shuffle);
  std::vector<int> seen(lengths.size(), 0);
  for (const auto& b : batches) {
    BOOST_TEST(b.size() <= 16u);
    std::size_t longest = 0;
    for (auto i : b) longest = std::max(longest, lengths[i]), ++seen[i];
    BOOST_TEST((longest * b.size() <= 200 || b.size() == 1));
  }
  for (int s : seen) BOOST_TEST(s == 1);
  Generator again(7);
  BOOST_TEST((make_batches(lengths, 200, 16, &again) == batches));  // the same seed, the same order
}

BOOST_AUTO_TEST_CASE(vocab_counts_and_rare_word_dropout) {
  std::vector<std::vector<std::string>> sentences(1000, std::vector<std::string>{"the"});
  sentences.push_back({"aardvark"});
  const Vocab v = Vocab::build(sentences, 1, false);
  BOOST_TEST(v.count(v.id("the")) == 1000u);
  BOOST_TEST(v.count(v.id("aardvark")) == 1u);
  BOOST_TEST(v.count(Vocab::kUnk) == 0u);
  BOOST_CHECK_THROW(v.count(99), std::out_of_range);
  BOOST_TEST(Vocab::from_text(v.to_text(), "t").count(2) == 0u);  // counts are not saved
  // alpha 1: "aardvark" (seen once) is dropped with probability 1/2, "the" with 1/1001.
  Ids ids = Ids::from_shape({2, 20000});
  for (std::size_t i = 0; i < 20000; ++i) ids(0, i) = v.id("aardvark"), ids(1, i) = v.id("the");
  ids(0, 0) = Vocab::kPad;
  Generator gen(4);
  drop_rare_words(ids, v, 1.0, gen);
  std::size_t rare = 0, frequent = 0;
  for (std::size_t i = 0; i < 20000; ++i)
    rare += ids(0, i) == Vocab::kUnk, frequent += ids(1, i) == Vocab::kUnk;
  BOOST_TEST(ids(0, 0) == Vocab::kPad);  // padding stays padding
  BOOST_TEST(rare > 9700u);
  BOOST_TEST(rare < 10300u);
  BOOST_TEST(frequent < 50u);  // about 20
  BOOST_TEST(frequent > 2u);
  BOOST_CHECK_THROW(drop_rare_words(ids, v, -1.0, gen), std::invalid_argument);
  const Vocab read_back = Vocab::from_text(v.to_text(), "t");
  CHECK_THROWS_WITH(drop_rare_words(ids, read_back, 1.0, gen),
                    "drop_rare_words: the vocabulary has no counts");
  // Specials have no count and are never dropped.
  const Vocab with_specials = Vocab::build(sentences, 1, false, {"<s>"});
  Ids starts = xt::full_like(ids, with_specials.id("<s>"));
  drop_rare_words(starts, with_specials, 1.0, gen);
  BOOST_TEST(xt::all(xt::equal(starts, with_specials.id("<s>"))));
}

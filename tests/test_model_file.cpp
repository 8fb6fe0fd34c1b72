#define BOOST_TEST_MODULE model_file
#include <cstdio>

#include "testing.hpp"

using namespace tg;
using nn::ModelFile;

namespace {

// A tiny tagging pipeline on four words and three tags, without training.
std::unique_ptr<models::TaggingPipeline> tiny_tagger(std::size_t members, std::size_t buckets) {
  models::WordInput input{models::Vocab::build({{"the", "dog", "runs", "."}}, 1, false),
                          models::SubwordOptions{.buckets = buckets}};
  models::TaggerOptions o{
      .encoder = {
          .d_model = 8, .heads = 2, .ff = 12, .layers = 1, .relative_k = 2, .conv_width = 3}};
  return std::make_unique<models::TaggingPipeline>(
      std::move(input), models::Vocab::closed({"DET", "NOUN", "VERB"}), o, members, 7);
}

const std::vector<models::Words> kSentences = {
    {"the", "dog", "runs", "."}, {"a", "cat"}, {}, {"runs"}};

}  // namespace

BOOST_AUTO_TEST_CASE(options_round_trip_through_text) {
  models::TranslatorOptions o{.src_vocab = 11,
                              .tgt_vocab = 13,
                              .d_model = 24,
                              .dropout = 0.123456789012345,
                              .positions = nn::PositionScheme::fourier,
                              .mlp_scale = 1.0 / 3};
  ModelFile file("translator");
  file.set_options(o);
  models::TranslatorOptions back;
  file.get_options(back);
  BOOST_TEST(back.src_vocab == 11u);
  BOOST_TEST(back.tgt_vocab == 13u);
  BOOST_TEST(back.d_model == 24u);
  BOOST_TEST(back.dropout == o.dropout);  // %.17g reads back to the same double
  BOOST_TEST(back.mlp_scale == o.mlp_scale);
  BOOST_TEST((back.positions == nn::PositionScheme::fourier));
  models::ClassifierOptions c{.pooling = models::Pooling::mean_max};
  file.set_options(c);
  models::ClassifierOptions c_back;
  file.get_options(c_back);
  BOOST_TEST((c_back.pooling == models::Pooling::mean_max));
}

BOOST_AUTO_TEST_CASE(a_saved_pipeline_predicts_the_same_after_loading) {
  for (std::size_t members : {1, 2}) {
    BOOST_TEST_CONTEXT("members " << members) {
      auto t = tiny_tagger(members, 64);
      t->net().eval();
      t->save("pipeline.npz", "tapegrad-tagger train --test");
      const auto back = models::TaggingPipeline::load("pipeline.npz");
      BOOST_TEST(back->net().size() == members);
      BOOST_TEST(back->tags().size() == 3u);
      BOOST_TEST(back->net().front().options().encoder.conv_width == 3u);
      const auto a = t->predict(kSentences), b = back->predict(kSentences);
      BOOST_TEST(a == b);        // the same weights through the same code: the same bits
      BOOST_TEST(b[2].empty());  // an empty sentence has no tags
      const ModelFile file = ModelFile::read("pipeline.npz", "tagger");
      BOOST_TEST(file.format() == 2);  // nothing a format-2 reader would misread
      BOOST_TEST(file.command() == "tapegrad-tagger train --test");
    }
  }
}

// A file written by tapegrad 0.1's programs: no "format", one "settings" text holding the kind
// and the options, and nothing said about settings that did not exist then.
BOOST_AUTO_TEST_CASE(files_of_format_1_still_load) {
  auto t = tiny_tagger(1, 64);
  t->net().eval();
  // format 1 knew no convolution option: a model without one
  models::WordInput input{t->input().words,
                          models::SubwordOptions{.buckets = 64, .grouped = false}};
  models::TaggingPipeline old(
      std::move(input), t->tags(),
      {.encoder =
           {.d_model = 8, .heads = 2, .ff = 12, .layers = 1, .relative_k = 2, .conv_width = 0}},
      1, 7);
  old.net().eval();
  nn::NpzEntries entries = nn::parameter_entries(old.net(), "param/");
  entries.emplace_back("vocab/words", nn::text_to_npy(old.input().words.to_text()));
  entries.emplace_back("vocab/tags", nn::text_to_npy(old.tags().to_text()));
  entries.emplace_back(
      "settings", nn::text_to_npy("d_model=8\nff=12\nheads=2\nkind=tagger\nlayers=1\nmax_len=512\n"
                                  "positions=relative\nrelative_k=2\nsubword_buckets=64\n"
                                  "subword_features=24\n"));
  nn::write_npz("format1.npz", entries);
  const auto back = models::TaggingPipeline::load("format1.npz");
  BOOST_TEST(ModelFile::read("format1.npz", "tagger").format() == 1);
  BOOST_TEST(back->net().front().options().encoder.conv_width == 0u);  // absent meant none
  BOOST_TEST(!back->input().subwords.grouped);  // absent meant one pool (tagger)
  BOOST_TEST(back->predict(kSentences) == old.predict(kSentences));
}

BOOST_AUTO_TEST_CASE(bad_files_are_refused_with_their_name_and_reason) {
  auto t = tiny_tagger(1, 0);
  t->save("kind.npz");
  BOOST_TEST(
      testing::contains(testing::error_of([] { models::SentimentPipeline::load("kind.npz"); }),
                        "kind.npz: a tagger model, not a sentiment model"));
  BOOST_TEST(testing::contains(
      testing::error_of([] { models::TaggingPipeline::load("no-such-file.npz"); }),
      "no-such-file.npz: cannot open: No such file or directory"));
  // a newer format than this tapegrad reads
  nn::NpzEntries entries{{"format", nn::text_to_npy("99")}, {"kind", nn::text_to_npy("tagger")}};
  nn::write_npz("newer.npz", entries);
  BOOST_TEST(
      testing::contains(testing::error_of([] { models::TaggingPipeline::load("newer.npz"); }),
                        "newer.npz: a model file of format 99; this tapegrad reads up to 3"));
  // a plain checkpoint is not a model file
  nn::save_parameters(t->net(), "params.npz");
  BOOST_TEST(
      testing::contains(testing::error_of([] { models::TaggingPipeline::load("params.npz"); }),
                        "params.npz: not a tapegrad model file"));
  // a damaged option
  ModelFile f("tagger");
  f.set_text("vocab/words", t->input().words.to_text());
  f.set_text("vocab/tags", t->tags().to_text());
  f.set_options(t->net().front().options());
  f.set_option("d_model", std::string("eight"));
  f.save("damaged.npz", t->net());
  BOOST_TEST(
      testing::contains(testing::error_of([] { models::TaggingPipeline::load("damaged.npz"); }),
                        "damaged.npz: option 'd_model' is 'eight', not a count"));
  std::remove("kind.npz"), std::remove("newer.npz"), std::remove("params.npz"),
      std::remove("damaged.npz");
}

BOOST_AUTO_TEST_CASE(command_lines_are_quoted_for_a_shell) {
  char a0[] = "prog", a1[] = "train", a2[] = "--plot", a3[] = "", a4[] = "it's here";
  char* argv[] = {a0, a1, a2, a3, a4};
  BOOST_TEST(nn::command_line(5, argv) == "prog train --plot '' 'it'\\''s here'");
}

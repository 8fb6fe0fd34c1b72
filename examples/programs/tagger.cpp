// tapegrad-tagger: part-of-speech tagging (UPOS) with a convolution over neighbouring words, a
// transformer encoder with relative-position attention, and subword features for unseen words.
// The model, its files and the training loop are the library's (models/pipelines.hpp,
// nn/training/loop.hpp); this file is the command line, CoNLL-U in and out, and the scores.
//
//   tapegrad-tagger train --data data/ud-english-ewt          (any *train*.conllu / *dev*.conllu)
//   tapegrad-tagger eval --model tagger.npz data/ud-english-ewt/en_ewt-ud-dev.conllu
//   tapegrad-tagger predict --model tagger.npz "The old man the boat."       (or lines on stdin)
//   tapegrad-tagger predict --model tagger.npz --format conllu < untagged.conllu > tagged.conllu
#include <cstdio>
#include <iostream>

#include "cli.hpp"

using namespace tg;

namespace {

const char* const kNameThem = "name the files with --train and --dev";

// Accuracy, accuracy on words the vocabulary lacks, and the per-tag report.
struct Scores {
  examples::ClassReport report;
  std::size_t unknown = 0, unknown_right = 0;
};

Scores score(const models::TaggingPipeline& t, const std::vector<models::TaggedSentence>& data) {
  const auto predicted = t.predict(models::words_of(data));
  std::vector<std::string> names;
  for (std::size_t i = 0; i < t.tags().size(); ++i) names.push_back(t.tags().word(i));
  Scores s{examples::ClassReport(names)};
  for (std::size_t i = 0; i < data.size(); ++i)
    for (std::size_t j = 0; j < data[i].words.size(); ++j) {
      const auto gold = static_cast<std::size_t>(t.tags().id(data[i].tags[j]));
      const auto guess = static_cast<std::size_t>(predicted[i][j]);
      s.report.add(gold, guess);
      if (t.input().words.id(data[i].words[j]) == models::Vocab::kUnk)
        ++s.unknown, s.unknown_right += gold == guess;
    }
  return s;
}

// The words of CoNLL-U lines, a sentence at a time, and the line of each word.  Comments,
// multiword ranges (3-4) and empty nodes (8.1) are not words.
struct ConlluWords {
  std::vector<models::Words> sentences{1};
  std::vector<std::vector<std::size_t>> lines{1};  // for each sentence, the lines of its words
};

ConlluWords words_of_conllu(const std::vector<std::string>& lines) {
  ConlluWords w;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.empty()) {
      if (!w.sentences.back().empty()) w.sentences.emplace_back(), w.lines.emplace_back();
      continue;
    }
    if (line[0] == '#') continue;
    const auto id_end = line.find('\t');
    const std::string id = line.substr(0, id_end);
    if (id.find_first_not_of("0123456789") != std::string::npos) continue;  // 3-4 or 8.1
    const auto form_end = id_end == std::string::npos ? id_end : line.find('\t', id_end + 1);
    if (id_end == std::string::npos || form_end == std::string::npos)
      throw models::DataError("standard input", i + 1,
                              "a word line needs at least ID, FORM and a tab after them");
    w.sentences.back().push_back(line.substr(id_end + 1, form_end - id_end - 1));
    w.lines.back().push_back(i);
  }
  return w;
}

// A CoNLL-U word line with `tag` in its UPOS column (the 4th; missing columns become "_").
std::string with_upos(const std::string& line, const std::string& tag) {
  std::vector<std::string> cols;
  std::size_t start = 0;
  for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
    cols.push_back(line.substr(start, tab - start));
  cols.push_back(line.substr(start));
  while (cols.size() < 10) cols.push_back("_");
  cols[3] = tag;
  std::string out;
  for (std::size_t c = 0; c < cols.size(); ++c) out += (c ? "\t" : "") + cols[c];
  return out;
}

// CoNLL-U in and out: every line is kept as it is, except the UPOS column of word lines, which
// gets the predicted tag.
void tag_conllu(const models::TaggingPipeline& t, std::istream& in) {
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const ConlluWords words = words_of_conllu(lines);
  const auto tags = t.predict(words.sentences);
  for (std::size_t s = 0; s < words.sentences.size(); ++s)
    for (std::size_t w = 0; w < words.sentences[s].size(); ++w) {
      std::string& line = lines[words.lines[s][w]];
      line = with_upos(line, t.tags().word(tags[s][w]));
    }
  for (const auto& line : lines) std::printf("%s\n", line.c_str());
}

// ---- train ----------------------------------------------------------------------------------

// `train`'s choices, with the program's defaults.
struct TrainChoice {
  std::string data_dir, train_file, dev_file;
  nn::TrainOptions to{
      .epochs = 12, .time_limit_minutes = 14, .out = "tagger.npz", .plot = "tagger-curve.svg"};
  models::TaggerOptions options;  // its defaults are the program's
  models::SubwordOptions subwords;
  examples::DataChoice data{.word_dropout = 0.1, .batch_tokens = 1500};
  std::size_t members = 3;
  double rare_word_dropout = 1;
};

CLI::App* add_train_command(examples::Program& program, TrainChoice& c) {
  CLI::App* cmd = program.subcommand("train", "train a tagger on CoNLL-U data");
  cmd->add_option("--data", c.data_dir, "folder with *train*.conllu and *dev*.conllu")
      ->check(examples::readable_folder("a folder with *train*.conllu and *dev*.conllu"));
  cmd->add_option("--train", c.train_file, "training file (CoNLL-U)")
      ->check(examples::readable("a CoNLL-U file"));
  cmd->add_option("--dev", c.dev_file, "development file (CoNLL-U)")
      ->check(examples::readable("a CoNLL-U file"));
  examples::add_encoder_options(*cmd, c.options.encoder);
  examples::add_word_model_options(*cmd, c.options.encoder, c.subwords, c.members, "taggers");
  cmd->add_option("--rare-word-dropout", c.rare_word_dropout,
                  "in training, replace a word seen n times by the unknown word with probability a "
                  "/ (a + n)")
      ->check(examples::non_negative);
  examples::add_train_options(*cmd, c.to, c.data);
  return cmd;
}

int train(TrainChoice& c, const examples::Program& program) {
  if (!c.data_dir.empty()) {
    if (c.train_file.empty())
      c.train_file = examples::find_file(c.data_dir, "train", ".conllu", kNameThem);
    if (c.dev_file.empty())
      c.dev_file = examples::find_file(c.data_dir, "dev", ".conllu", kNameThem);
  }
  if (c.train_file.empty() || c.dev_file.empty())
    throw CLI::RequiredError("--data, or --train and --dev");
  const auto [train_data, dev_data] =
      examples::read_train_and_dev(models::read_conllu, c.train_file, c.dev_file, c.data.bad_lines);
  const auto train_words = models::words_of(train_data);
  const auto lengths = models::lengths_of(train_words);
  std::vector<std::string> all_tags;
  for (const auto& s : train_data) all_tags.insert(all_tags.end(), s.tags.begin(), s.tags.end());
  models::WordInput input{models::Vocab::build(train_words, c.data.min_count, false), c.subwords};
  models::TaggingPipeline t(std::move(input), models::Vocab::closed(all_tags), c.options, c.members,
                            c.to.seed);
  std::printf(
      "tagger: %zu train and %zu dev sentences, %zu words in the vocabulary, %zu tags, %zu "
      "parameters%s\n",
      train_data.size(), dev_data.size(), t.input().words.size(), t.tags().size(),
      t.net().parameter_count(),
      c.members > 1 ? (" in " + std::to_string(c.members) + " taggers").c_str() : "");
  examples::announce_limits(c.to);
  // Word dropout and rare-word dropout teach the model to tag from subword features alone.
  nn::Task task{.model = &t.net(), .gen = &t.gen()};
  task.batches = models::shuffled_batches(lengths, c.data.batch_tokens, 256, c.to.seed);
  task.loss = [&](const std::vector<std::size_t>& batch) {
    std::vector<const models::Words*> ws, ts;
    for (std::size_t i : batch)
      ws.push_back(&train_data[i].words), ts.push_back(&train_data[i].tags);
    return t.loss(ws, ts, c.data.word_dropout, c.rare_word_dropout);
  };
  task.weight = [&](const std::vector<std::size_t>& batch) {  // the loss is a mean over tokens
    double tokens = 0;
    for (std::size_t i : batch) tokens += lengths[i];
    return tokens;
  };
  task.lengths = &lengths;
  task.evaluate = [&] { return score(t, dev_data).report.accuracy(); };
  task.save_model = [&](const std::string& path) { t.save(path, program.command_line()); };
  return examples::train(task, c.to);
}

// ---- eval and predict -----------------------------------------------------------------------

int eval(examples::EvalChoice& e) {
  const auto t = models::TaggingPipeline::load(e.model);
  const auto gold = examples::read_eval_file(models::read_conllu, e);
  const Scores s = score(*t, gold);
  const double unknown = s.unknown ? double(s.unknown_right) / s.unknown : 0;
  char header[512];
  std::snprintf(
      header, sizeof header,
      "%s: %zu sentences, %zu tokens\nUPOS accuracy %.2f%% (unknown words: %.2f%% of %zu)",
      e.file.c_str(), gold.size(), s.report.total(), 100 * s.report.accuracy(), 100 * unknown,
      s.unknown);
  examples::print_report(
      s.report, e, header,
      {{"sentences", gold.size()}, {"unknown_words", s.unknown}, {"unknown_accuracy", unknown}});
  return 0;
}

// A line per sentence: word/TAG pairs, or {"words", "tags"} as JSON.
void print_tags(const models::TaggingPipeline& t, const std::vector<models::Words>& sentences,
                bool json) {
  const auto tags = t.predict(sentences);
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    std::vector<std::string> names;
    for (std::int64_t id : tags[i]) names.push_back(t.tags().word(id));
    if (json) {
      std::printf("%s\n", nlohmann::json{{"words", sentences[i]}, {"tags", names}}.dump().c_str());
      continue;
    }
    for (std::size_t j = 0; j < sentences[i].size(); ++j)
      std::printf("%s%s/%s", j ? " " : "", sentences[i][j].c_str(), names[j].c_str());
    std::printf("\n");
  }
}

int predict(const examples::PredictChoice& p) {
  const auto t = models::TaggingPipeline::load(p.model);
  if (p.format == "conllu") {
    if (!p.words.empty())
      throw CLI::ValidationError("--format conllu",
                                 "reads CoNLL-U from standard input, not arguments");
    tag_conllu(*t, std::cin);
    return 0;
  }
  return examples::label_sentences(*t, p, print_tags);
}

}  // namespace

int main(int argc, char** argv) {
  examples::Program program("tapegrad-tagger", "part-of-speech tagging with a transformer");
  const examples::PredictChoice predict_choice{
      .model = "tagger.npz",
      .formats = {"text", "conllu", "json"},
      .format_help =
          "text: a sentence a line in, word/TAG out; conllu: CoNLL-U in and out (UPOS filled in); "
          "json: a "
          "sentence a line in, {\"words\", \"tags\"} a line out"};
  return examples::run_labelling_program(
      program, argc, argv,
      examples::LabellingCommands<TrainChoice>{add_train_command, train, eval, predict},
      predict_choice, "a CoNLL-U file");
}

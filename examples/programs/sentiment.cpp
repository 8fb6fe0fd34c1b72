// tapegrad-sentiment: sentence classification (SST-2 binary, or SST 5-class) with a
// convolution over neighbouring words, a transformer encoder, learnable Fourier-feature
// positions and mean pooling; by default two such classifiers, trained side by side.  The
// model, its files and the training loop are the library's (models/pipelines.hpp,
// nn/training/loop.hpp); this file is the command line and the scores.
//
//   tapegrad-sentiment train --data data/sst2                  (train.tsv / dev.tsv)
//   tapegrad-sentiment train --data data/sst --fine            (stsa.fine.train / .dev; --binary:
//   stsa.binary) tapegrad-sentiment eval --model sentiment.npz data/sst2/dev.tsv tapegrad-sentiment
//   predict --model sentiment.npz "a gorgeous, witty, seductive movie."
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli.hpp"

using namespace tg;
namespace fs = std::filesystem;

namespace {

std::size_t best_of(const std::vector<double>& probs) {
  return std::max_element(probs.begin(), probs.end()) - probs.begin();
}

examples::ClassReport score(const models::SentimentPipeline& s,
                            const std::vector<models::LabeledSentence>& data) {
  const auto probs = s.predict(models::words_of(data));
  std::vector<std::string> names;
  for (std::size_t i = 0; i < s.labels().size(); ++i) names.push_back(s.labels().word(i));
  examples::ClassReport report(names);
  for (std::size_t i = 0; i < data.size(); ++i)
    report.add(s.labels().id(data[i].label), best_of(probs[i]));
  return report;
}

// ---- train ----------------------------------------------------------------------------------

// `train`'s choices, with the program's defaults.
struct TrainChoice {
  std::string data_dir, train_file, dev_file;
  bool fine = false, binary = false;
  nn::TrainOptions to{.epochs = 4,
                      .time_limit_minutes = 14,
                      .warmup = 300,
                      .out = "sentiment.npz",
                      .plot = "sentiment-curve.svg"};
  models::ClassifierOptions options;  // its defaults are the program's
  models::SubwordOptions subwords;
  examples::DataChoice data;
  std::size_t members = 2;
  double bagging = 1;
};

CLI::App* add_train_command(examples::Program& program, TrainChoice& c) {
  CLI::App* cmd = program.subcommand("train", "train a classifier");
  cmd->add_option("--data", c.data_dir,
                  "data/sst2 (train.tsv, dev.tsv) or data/sst with --fine / --binary")
      ->check(examples::readable_folder("a folder with train.tsv and dev.tsv, or stsa.* files"));
  cmd->add_flag("--fine", c.fine, "with --data data/sst: the 5-class stsa.fine files");
  cmd->add_flag("--binary", c.binary, "with --data data/sst: the stsa.binary files");
  cmd->add_option("--train", c.train_file, "training file")
      ->check(examples::readable("labelled sentences"));
  cmd->add_option("--dev", c.dev_file, "development file")
      ->check(examples::readable("labelled sentences"));
  examples::add_encoder_options(*cmd, c.options.encoder);
  cmd->add_option_function<std::string>(
         "--pooling",
         [&c](const std::string& name) {
           c.options.pooling = enum_from_name<models::Pooling>(name);
         },
         "sentence vector from the encoder's outputs: mean, max or mean-max")
      ->check(CLI::IsMember({"mean", "max", "mean-max"}))
      ->default_str(enum_name(c.options.pooling));
  examples::add_word_model_options(*cmd, c.options.encoder, c.subwords, c.members, "classifiers");
  cmd->add_option(
         "--bagging", c.bagging,
         "with --ensemble: each member learns from its own random fraction of the examples")
      ->check(CLI::Range(0.05, 1.0));
  examples::add_train_options(*cmd, c.to, c.data);
  return cmd;
}

// --data's files: train.tsv and dev.tsv, or the stsa.fine / stsa.binary pair.
void files_in_data_folder(TrainChoice& c) {
  const fs::path d(c.data_dir);
  const bool stsa = c.fine || c.binary;
  const std::string stem = c.fine ? "stsa.fine" : "stsa.binary";
  if (c.train_file.empty()) c.train_file = (d / (stsa ? stem + ".train" : "train.tsv")).string();
  if (c.dev_file.empty()) c.dev_file = (d / (stsa ? stem + ".dev" : "dev.tsv")).string();
  examples::require_readable("--data", c.train_file, "the training sentences");
  examples::require_readable("--data", c.dev_file, "the development sentences");
}

// The mean of the members' losses, each a mean over the examples in its bag.  Across ranks
// (mpirun) each member's part is weighted by this rank's share of its bagged examples: the
// members walk batches of their own, so one weight for all would be wrong.
Tensor ensemble_share_loss(models::SentimentPipeline& s, const models::MemberOrders& orders,
                           const std::vector<models::LabeledSentence>& data, const TrainChoice& c,
                           const std::vector<std::size_t>& mine,
                           const std::vector<std::size_t>& batch) {
  static const std::string out_of_bag;  // a member ignores the labels of examples outside its bag
  Tensor total;
  for (std::size_t k = 0; k < c.members; ++k) {
    const auto bagged = [&](const std::vector<std::size_t>& examples) {
      return std::count_if(examples.begin(), examples.end(), [&](std::size_t i) {
        return models::in_bag(c.to.seed, k, i, c.bagging);
      });
    };
    const auto theirs = orders.member(mine, k);
    const double share =
        double(bagged(theirs)) / std::max<std::ptrdiff_t>(bagged(orders.member(batch, k)), 1);
    if (share == 0) continue;  // nothing of this member's on this rank
    std::vector<const models::Words*> ws;
    std::vector<const std::string*> ys;
    for (std::size_t i : theirs) {
      ws.push_back(&data[i].words);
      ys.push_back(models::in_bag(c.to.seed, k, i, c.bagging) ? &data[i].label : &out_of_bag);
    }
    const Tensor l = s.member_loss(k, ws, ys, c.data.word_dropout) * share;
    total = total.defined() ? total + l : l;
  }
  return total.defined() ? total * (1.0 / c.members) : total;
}

int train(TrainChoice& c, const examples::Program& program) {
  if (!c.data_dir.empty()) files_in_data_folder(c);
  if (c.train_file.empty() || c.dev_file.empty())
    throw CLI::RequiredError("--data, or --train and --dev");
  if (c.bagging < 1 && c.members < 2)
    throw CLI::ValidationError("--bagging", "bagging is for ensembles (--ensemble 2 or more)");
  const auto [train_data, dev_data] = examples::read_train_and_dev(
      models::read_labeled, c.train_file, c.dev_file, c.data.bad_lines);
  const auto train_words = models::words_of(train_data);
  const auto lengths = models::lengths_of(train_words);
  std::vector<std::string> all_labels;
  for (const auto& s : train_data) all_labels.push_back(s.label);
  models::WordInput input{models::Vocab::build(train_words, c.data.min_count, true), c.subwords};
  models::SentimentPipeline s(std::move(input), models::Vocab::closed(all_labels), c.options,
                              c.members, c.to.seed);
  for (const auto& d : dev_data)
    s.labels().id(d.label);  // a dev label unseen in training: an error
  std::printf(
      "sentiment: %zu train and %zu dev sentences, %zu words, %zu classes, %zu parameters%s\n",
      train_data.size(), dev_data.size(), s.input().words.size(), s.labels().size(),
      s.net().parameter_count(),
      c.members > 1 ? (" in " + std::to_string(c.members) + " classifiers").c_str() : "");
  examples::announce_limits(c.to);
  // Each member of an ensemble walks the epoch's batches in its own order.
  models::MemberOrders orders(models::shuffled_batches(lengths, c.data.batch_tokens, 64, c.to.seed),
                              c.members, c.to.seed);
  nn::Task task{.model = &s.net(), .gen = &s.gen()};
  task.batches = [&](std::size_t epoch) { return orders.epoch(epoch); };
  task.share_loss = [&](const std::vector<std::size_t>& mine,
                        const std::vector<std::size_t>& batch) {
    return ensemble_share_loss(s, orders, train_data, c, mine, batch);
  };
  task.lengths = &lengths;
  task.evaluate = [&] { return score(s, dev_data).accuracy(); };
  task.save_model = [&](const std::string& path) { s.save(path, program.command_line()); };
  return examples::train(task, c.to);
}

// ---- eval and predict -----------------------------------------------------------------------

int eval(examples::EvalChoice& e) {
  const auto s = models::SentimentPipeline::load(e.model);
  const auto gold = examples::read_eval_file(models::read_labeled, e);
  const examples::ClassReport report = score(*s, gold);
  char header[512];
  std::snprintf(header, sizeof header, "%s: %zu sentences, accuracy %.2f%%", e.file.c_str(),
                gold.size(), 100 * report.accuracy());
  examples::print_report(report, e, header);
  return 0;
}

// A line per sentence: label<TAB>probability<TAB>words, or a JSON object; a blank line in, a
// blank line (or a null label) out.
void print_labels(const models::SentimentPipeline& s, const std::vector<models::Words>& sentences,
                  bool json) {
  const auto probs = s.predict(sentences);
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    if (probs[i].empty()) {
      std::printf(
          "%s\n",
          json ? nlohmann::json{{"words", sentences[i]}, {"label", nullptr}}.dump().c_str() : "");
      continue;
    }
    const std::size_t best = best_of(probs[i]);
    if (json) {
      nlohmann::json p = nlohmann::json::object();
      for (std::size_t c = 0; c < probs[i].size(); ++c) p[s.labels().word(c)] = probs[i][c];
      const nlohmann::json line{
          {"words", sentences[i]}, {"label", s.labels().word(best)}, {"probabilities", p}};
      std::printf("%s\n", line.dump().c_str());
      continue;
    }
    std::printf("%s\t%.3f\t", s.labels().word(best).c_str(), probs[i][best]);
    for (std::size_t j = 0; j < sentences[i].size(); ++j)
      std::printf("%s%s", j ? " " : "", sentences[i][j].c_str());
    std::printf("\n");
  }
}

int predict(const examples::PredictChoice& p) {
  return examples::label_sentences(*models::SentimentPipeline::load(p.model), p, print_labels);
}

}  // namespace

int main(int argc, char** argv) {
  examples::Program program("tapegrad-sentiment", "sentence classification with a transformer");
  const examples::PredictChoice predict_choice{
      .model = "sentiment.npz",
      .format_help =
          "text: label<TAB>probability<TAB>words a line; json: {\"words\", \"label\", "
          "\"probabilities\"} a line"};
  return examples::run_labelling_program(
      program, argc, argv,
      examples::LabellingCommands<TrainChoice>{add_train_command, train, eval, predict},
      predict_choice,
      "labelled sentences (sentence<TAB>label with a header, or <label> <sentence>)");
}

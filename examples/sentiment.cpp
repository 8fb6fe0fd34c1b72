// tapegrad-sentiment: sentence classification (SST-2 binary, or SST 5-class) with a
// convolution over neighbouring words, a transformer encoder, learnable Fourier-feature
// positions and mean pooling; by default two such classifiers, trained side by side.  The
// model, its files and the training loop are the library's (models/sentiment.hpp,
// models/training.hpp); this file is the command line and the scores.
//
//   tapegrad-sentiment train --data data/sst2                  (train.tsv / dev.tsv)
//   tapegrad-sentiment train --data data/sst --fine            (stsa.fine.train / .dev; --binary: stsa.binary)
//   tapegrad-sentiment eval --model sentiment.npz data/sst2/dev.tsv
//   tapegrad-sentiment predict --model sentiment.npz "a gorgeous, witty, seductive movie."
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

examples::ClassReport score(const models::SentimentPipeline& s, const std::vector<models::LabeledSentence>& data) {
  std::vector<models::Words> sentences;
  for (const auto& d : data) sentences.push_back(d.words);
  const auto probs = s.predict(sentences);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < s.labels().size(); ++i) names.push_back(s.labels().word(i));
  examples::ClassReport report(names);
  for (std::size_t i = 0; i < data.size(); ++i) report.add(s.labels().id(data[i].label), best_of(probs[i]));
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  examples::Program program("tapegrad-sentiment", "tapegrad-sentiment: sentence classification with a transformer");

  auto* train_cmd = program.subcommand("train", "train a classifier");
  std::string data_dir, train_file, dev_file;
  bool fine = false, binary = false;
  models::TrainOptions to{.epochs = 4, .time_limit_minutes = 14, .warmup = 300, .out = "sentiment.npz",
                          .plot = "sentiment-curve.svg"};
  models::ClassifierOptions options;  // its defaults are the program's
  models::SubwordOptions subwords;
  examples::DataChoice data;
  std::size_t members = 2;
  double bagging = 1;
  train_cmd->add_option("--data", data_dir, "data/sst2 (train.tsv, dev.tsv) or data/sst with --fine / --binary");
  train_cmd->add_flag("--fine", fine, "with --data data/sst: the 5-class stsa.fine files");
  train_cmd->add_flag("--binary", binary, "with --data data/sst: the stsa.binary files");
  train_cmd->add_option("--train", train_file, "training file")->check(examples::readable_file);
  train_cmd->add_option("--dev", dev_file, "development file")->check(examples::readable_file);
  examples::add_encoder_options(*train_cmd, options.encoder);
  train_cmd->add_option_function<std::string>(
               "--pooling", [&](const std::string& name) { options.pooling = models::pooling_from_name(name); },
               "sentence vector from the encoder's outputs: mean, max or mean-max")
      ->check(CLI::IsMember({"mean", "max", "mean-max"}))
      ->default_str(models::pooling_name(options.pooling));
  train_cmd->add_option("--subword-buckets", subwords.buckets, "hashed subword features for unseen words (0: off)")
      ->check(examples::buckets);
  train_cmd->add_option("--conv-width", options.encoder.conv_width, "a convolution of this width over the word vectors before the encoder (0: none)")
      ->check(examples::odd_or_zero);
  train_cmd->add_option("--ensemble", members, "train this many classifiers side by side and predict with their mean")
      ->check(examples::positive);
  train_cmd->add_option("--bagging", bagging, "with --ensemble: each member learns from its own random fraction of the examples")
      ->check(CLI::Range(0.05, 1.0));
  examples::add_train_options(*train_cmd, to, data);
  models::BadLines bad_lines;
  examples::add_bad_lines_option(*train_cmd, bad_lines);

  auto* eval_cmd = program.subcommand("eval", "accuracy, per-class precision, recall and F1, and the confusion matrix "
                                              "(sentence<TAB>label with header, or <label> <sentence>)");
  std::string model_path = "sentiment.npz", eval_file, confusion_svg;
  bool json = false;
  eval_cmd->add_option("--model", model_path, "model file")->check(examples::readable_file);
  eval_cmd->add_option("file", eval_file, "labelled sentences")->required()->check(examples::readable_file);
  eval_cmd->add_flag("--json", json, "print one JSON object instead of text");
  eval_cmd->add_option("--confusion-svg", confusion_svg, "draw the confusion matrix as an SVG heatmap");
  examples::add_bad_lines_option(*eval_cmd, bad_lines);

  auto* predict_cmd = program.subcommand("predict", "classify sentences: the arguments, or each line of standard input");
  std::vector<std::string> words;
  std::string attention_svg, format = "text";
  std::size_t attention_layer = 0;
  predict_cmd->add_option("--model", model_path, "model file")->check(examples::readable_file);
  predict_cmd->add_option("--format", format,
                          "text: label<TAB>probability<TAB>words a line; json: {\"words\", \"label\", \"probabilities\"} a line")
      ->check(CLI::IsMember({"text", "json"}));
  predict_cmd->add_option("--attention-svg", attention_svg, "draw the first sentence's self-attention as an SVG heatmap");
  predict_cmd->add_option("--layer", attention_layer, "which layer's attention to draw");
  predict_cmd->add_option("words", words, "a sentence (read from standard input when none is given)");

  return program.run(argc, argv, [&] {
    if (*train_cmd) {
      if (!data_dir.empty()) {
        const fs::path d(data_dir);
        const bool stsa = fine || binary;
        const std::string stem = fine ? "stsa.fine" : "stsa.binary";
        if (train_file.empty()) train_file = (d / (stsa ? stem + ".train" : "train.tsv")).string();
        if (dev_file.empty()) dev_file = (d / (stsa ? stem + ".dev" : "dev.tsv")).string();
      }
      if (train_file.empty() || dev_file.empty()) throw CLI::RequiredError("--data, or --train and --dev");
      if (bagging < 1 && members < 2)
        throw CLI::ValidationError("--bagging", "bagging is for ensembles (--ensemble 2 or more)");
      const auto train_data = models::read_labeled(train_file, &bad_lines);
      const auto dev_data = models::read_labeled(dev_file, &bad_lines);
      examples::report_bad_lines(bad_lines);
      std::vector<models::Words> train_words;
      std::vector<std::string> all_labels;
      std::vector<std::size_t> lengths;
      for (const auto& s : train_data) {
        train_words.push_back(s.words);
        all_labels.push_back(s.label);
        lengths.push_back(s.words.size());
      }
      models::WordInput input{models::Vocab::build(train_words, data.min_count, true), subwords};
      models::SentimentPipeline s(std::move(input), models::Vocab::closed(all_labels), options, members, to.seed);
      for (const auto& d : dev_data) s.labels().id(d.label);  // a dev label unseen in training: an error
      std::printf("sentiment: %zu train and %zu dev sentences, %zu words, %zu classes, %zu parameters%s\n",
                  train_data.size(), dev_data.size(), s.input().words.size(), s.labels().size(),
                  s.net().parameter_count(), members > 1 ? (" in " + std::to_string(members) + " classifiers").c_str() : "");
      examples::announce_limits(to);
      models::Task task;
      task.model = &s.net();
      task.gen = &s.gen();
      // Each member of an ensemble walks the epoch's batches in its own order.
      models::MemberOrders orders(
          [&](std::size_t epoch) {
            Generator shuffle(to.seed * 1000003 + epoch);
            return models::make_batches(lengths, data.batch_tokens, 64, &shuffle);
          },
          members, to.seed);
      const std::string out_of_bag;  // a member ignores the labels of examples outside its bag
      task.batches = [&](std::size_t epoch) { return orders.epoch(epoch); };
      task.loss = [&](const std::vector<std::size_t>& batch) {
        Tensor total;
        for (std::size_t k = 0; k < members; ++k) {
          std::vector<const models::Words*> ws;
          std::vector<const std::string*> ys;
          for (std::size_t i : orders.member(batch, k)) {
            ws.push_back(&train_data[i].words);
            ys.push_back(models::in_bag(to.seed, k, i, bagging) ? &train_data[i].label : &out_of_bag);
          }
          const Tensor l = s.member_loss(k, ws, ys, data.word_dropout);
          total = total.defined() ? total + l : l;
        }
        return total * (1.0 / members);
      };
      task.lengths = &lengths;
      task.evaluate = [&] { return score(s, dev_data).accuracy(); };
      task.save_model = [&](const std::string& path) { s.save(path, program.command_line()); };
      return models::train(task, to).interrupted ? examples::kExitInterrupted : 0;
    }
    const auto s = models::SentimentPipeline::load(model_path);
    if (*eval_cmd) {
      const auto gold = models::read_labeled(eval_file, &bad_lines);
      examples::report_bad_lines(bad_lines);
      const examples::ClassReport report = score(*s, gold);
      if (json) {
        nlohmann::json j = report.json();
        j["file"] = eval_file;
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf("%s: %zu sentences, accuracy %.2f%%\n\n%s\n%s", eval_file.c_str(), gold.size(),
                    100 * report.accuracy(), report.table().c_str(), report.confusion_text().c_str());
      }
      if (!confusion_svg.empty())
        report.write_confusion_svg(confusion_svg, "confusion on " + eval_file +
                                                      ": gold (rows) against predicted (columns), share of each row");
      return 0;
    }
    std::vector<models::Words> sentences;
    for (const auto& line : examples::input_lines(words)) sentences.push_back(models::tokenize(line, false));
    const auto probs = s->predict(sentences);
    for (std::size_t i = 0; i < sentences.size(); ++i) {
      if (probs[i].empty()) {  // a blank line in, a blank line (or null label) out
        std::printf("%s\n", format == "json" ? nlohmann::json{{"words", sentences[i]}, {"label", nullptr}}.dump().c_str() : "");
        continue;
      }
      const std::size_t best = best_of(probs[i]);
      if (format == "json") {
        nlohmann::json p = nlohmann::json::object();
        for (std::size_t c = 0; c < probs[i].size(); ++c) p[s->labels().word(c)] = probs[i][c];
        std::printf("%s\n", nlohmann::json{{"words", sentences[i]}, {"label", s->labels().word(best)}, {"probabilities", p}}
                                .dump()
                                .c_str());
        continue;
      }
      std::printf("%s\t%.3f\t", s->labels().word(best).c_str(), probs[i][best]);
      for (std::size_t j = 0; j < sentences[i].size(); ++j) std::printf("%s%s", j ? " " : "", sentences[i][j].c_str());
      std::printf("\n");
    }
    if (!attention_svg.empty() && !sentences.empty()) {
      std::vector<Tensor> weights;
      s->predict({sentences[0]}, &weights);
      models::write_attention_svg(attention_svg, weights, sentences[0], attention_layer);
      std::fprintf(stderr, "wrote %s\n", attention_svg.c_str());
    }
    return 0;
  });
}

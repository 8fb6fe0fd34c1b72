// tapegrad-sentiment: sentence classification (SST-2 binary, or SST 5-class) with a
// convolution over neighbouring words, a transformer encoder, learnable Fourier-feature
// positions and mean pooling; by default two such classifiers, trained side by side.
//
//   tapegrad-sentiment train --data data/sst2                  (train.tsv / dev.tsv)
//   tapegrad-sentiment train --data data/sst --fine            (stsa.fine.train / .dev; --binary: stsa.binary)
//   tapegrad-sentiment eval --model sentiment.npz data/sst2/dev.tsv
//   tapegrad-sentiment predict --model sentiment.npz "a gorgeous , witty , seductive movie ."
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "common.hpp"

using namespace tg;
using examples::Settings;
namespace fs = std::filesystem;

namespace {

struct SentimentBundle {
  Generator gen;
  models::Vocab words, labels;
  models::SubwordOptions subwords;  // buckets 0: no subword features
  std::unique_ptr<models::Ensemble<models::Classifier>> net;  // one classifier, or several predicting together

  // ids (B, T) and, when the model reads them, subword ids (B, T, K).
  void encode(const std::vector<const std::vector<std::string>*>& sentences, Ids& ids, Ids& subs) const {
    std::size_t T = 1;
    for (auto* s : sentences) T = std::max(T, s->size());
    const std::size_t K = subwords.buckets > 0 ? subwords.max_features : 0;
    ids = xt::zeros<std::int64_t>({sentences.size(), T});
    subs = xt::zeros<std::int64_t>({sentences.size(), T, K});
    for (std::size_t b = 0; b < sentences.size(); ++b)
      for (std::size_t t = 0; t < sentences[b]->size(); ++t) {
        const std::string& w = (*sentences[b])[t];
        ids(b, t) = words.id(w);
        if (K == 0) continue;
        const auto f = models::subword_ids(w, subwords);
        for (std::size_t k = 0; k < f.size(); ++k) subs(b, t, k) = f[k];
      }
  }
  const Ids* subwords_of(const Ids& subs) const { return subwords.buckets > 0 ? &subs : nullptr; }

  Settings settings() const {
    const models::ClassifierOptions& o = net->front().options();
    Settings s = examples::encoder_settings("sentiment", o);
    s["members"] = std::to_string(net->size());
    s["fourier_features"] = std::to_string(o.fourier_features);
    s["fourier_hidden"] = std::to_string(o.fourier_hidden);
    s["pooling"] = models::pooling_name(o.pooling);
    s["conv_width"] = std::to_string(o.conv_width);
    s["subword_buckets"] = std::to_string(subwords.buckets);
    s["subword_features"] = std::to_string(subwords.max_features);
    s["subword_grouped"] = subwords.grouped ? "1" : "0";
    return s;
  }

  void save(const std::string& path) const {
    examples::save_model_file(path, net->module(), {{"vocab/words", words.to_text()}, {"vocab/labels", labels.to_text()},
                                             {"settings", examples::settings_to_text(settings())}});
  }

  static std::unique_ptr<SentimentBundle> load(const std::string& path) {
    const examples::ModelFile file(path, "sentiment");
    auto b = std::make_unique<SentimentBundle>();
    b->words = models::Vocab::from_text(file.text("vocab/words"), path);
    b->labels = models::Vocab::from_text(file.text("vocab/labels"), path);
    b->subwords.buckets = file.number_or("subword_buckets", 0);  // older files: none
    b->subwords.max_features = file.number_or("subword_features", 24);
    b->subwords.grouped = file.get_or("subword_grouped", "1") == "1";
    b->net = std::make_unique<models::Ensemble<models::Classifier>>(
        file.number_or("members", 1),
        models::ClassifierOptions{.vocab = b->words.size(), .classes = b->labels.size(), .d_model = file.number("d_model"),
                                  .heads = file.number("heads"), .ff = file.number("ff"), .layers = file.number("layers"),
                                  .dropout = 0.0,
                                  .positions = nn::position_scheme_from_name(examples::get(file.settings(), "positions", path)),
                                  .fourier_features = file.number("fourier_features"),
                                  .fourier_hidden = file.number("fourier_hidden"), .relative_k = file.number("relative_k"),
                                  .max_len = file.number("max_len"),
                                  // files written before pooling was an option pooled by the mean
                                  .pooling = models::pooling_from_name(file.get_or("pooling", "mean")),
                                  .subword_buckets = b->subwords.buckets,
                                  .subword_groups = b->subwords.groups(),
                                  .conv_width = file.number_or("conv_width", 0)},  // older files: none
        b->gen);
    file.load_parameters(b->net->module());
    b->net->module().eval();
    return b;
  }

  // Member k's cross-entropy on its batch of training examples.  With bagging < 1 it learns
  // only from the examples in its bag: the others' labels are ignored (-100).
  Tensor member_loss(std::size_t k, const std::vector<models::LabeledSentence>& data,
                     const std::vector<std::size_t>& batch, double word_dropout, double bagging,
                     std::uint64_t seed) {
    std::vector<const std::vector<std::string>*> ws;
    Ids y = Ids::from_shape({batch.size()});
    for (std::size_t i = 0; i < batch.size(); ++i) {
      ws.push_back(&data[batch[i]].words);
      y(i) = models::in_bag(seed, k, batch[i], bagging) ? labels.id(data[batch[i]].label) : -100;
    }
    Ids ids, subs;
    encode(ws, ids, subs);
    examples::drop_words(ids, word_dropout, gen);
    return net->members()[k]->loss(ids, y, subwords_of(subs));
  }

  // Class probabilities (N, classes) for each sentence: the members' mean.  `weights`, if given,
  // receives the first member's attention.
  std::vector<std::vector<double>> predict(const std::vector<std::vector<std::string>>& sentences,
                                           std::vector<Tensor>* weights = nullptr) const {
    std::vector<std::vector<double>> out(sentences.size());
    std::vector<std::size_t> lengths;
    for (const auto& s : sentences) lengths.push_back(s.size());
    NoGradGuard no_grad;
    for (const auto& batch : models::make_batches(lengths, 4000, 128, nullptr)) {
      std::vector<const std::vector<std::string>*> ptrs;
      for (std::size_t i : batch) ptrs.push_back(&sentences[i]);
      Ids ids, subs;
      encode(ptrs, ids, subs);
      Tensor p;
      for (models::Classifier* m : net->members()) {
        const Tensor q = softmax(m->forward(ids, subwords_of(subs), p.defined() ? nullptr : weights));
        p = p.defined() ? p + q : q;
      }
      p = p * (1.0 / net->size());
      for (std::size_t b = 0; b < batch.size(); ++b)
        for (std::size_t c = 0; c < labels.size(); ++c) out[batch[b]].push_back(p.data<float>()(b, c));
    }
    return out;
  }
};

double accuracy(const SentimentBundle& s, const std::vector<models::LabeledSentence>& data) {
  std::vector<std::vector<std::string>> sentences;
  for (const auto& d : data) sentences.push_back(d.words);
  const auto probs = s.predict(sentences);
  std::size_t right = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto best = std::max_element(probs[i].begin(), probs[i].end()) - probs[i].begin();
    right += s.labels.word(best) == data[i].label;
  }
  return data.empty() ? 0 : double(right) / data.size();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tapegrad-sentiment: sentence classification with a transformer"};
  app.require_subcommand(1);
  std::size_t threads = 2;
  app.add_option("--threads", threads, "threads for kernels and BLAS together")->check(examples::positive);

  auto* train_cmd = app.add_subcommand("train", "train a classifier");
  std::string data_dir, train_file, dev_file;
  bool fine = false, binary = false;
  examples::TrainOptions to;
  to.epochs = 4;
  to.time_limit_minutes = 14;
  to.out = "sentiment.npz";
  to.plot = "sentiment-curve.svg";
  to.warmup = 300;
  examples::ModelChoice m{.positions = "fourier"};
  std::string pooling = "mean";
  std::size_t members = 2, subword_buckets = 1 << 15, conv_width = 5;
  double bagging = 1;
  train_cmd->add_option("--data", data_dir, "data/sst2 (train.tsv, dev.tsv) or data/sst with --fine / --binary");
  train_cmd->add_flag("--fine", fine, "with --data data/sst: the 5-class stsa.fine files");
  train_cmd->add_flag("--binary", binary, "with --data data/sst: the stsa.binary files");
  train_cmd->add_option("--train", train_file, "training file")->check(CLI::ExistingFile);
  train_cmd->add_option("--dev", dev_file, "development file")->check(CLI::ExistingFile);
  train_cmd->add_option("--pooling", pooling, "sentence vector from the encoder's outputs: mean, max or mean-max")
      ->check(CLI::IsMember({"mean", "max", "mean-max"}));
  train_cmd->add_option("--subword-buckets", subword_buckets, "hashed subword features for unseen words (0: off)")
      ->check(examples::buckets);
  train_cmd->add_option("--conv-width", conv_width, "a convolution of this width over the word vectors before the encoder (0: none)")
      ->check(examples::odd_or_zero);
  train_cmd->add_option("--ensemble", members, "train this many classifiers side by side and predict with their mean")
      ->check(examples::positive);
  train_cmd->add_option("--bagging", bagging, "with --ensemble: each member learns from its own random fraction of the examples")
      ->check(CLI::Range(0.05, 1.0));
  examples::add_train_options(*train_cmd, to, m);
  models::BadLines bad_lines;
  examples::add_bad_lines_option(*train_cmd, bad_lines);

  auto* eval_cmd = app.add_subcommand("eval", "accuracy on a file (sentence<TAB>label with header, or <label> <sentence>)");
  std::string model_path = "sentiment.npz", eval_file;
  eval_cmd->add_option("--model", model_path, "model file")->check(CLI::ExistingFile);
  eval_cmd->add_option("file", eval_file, "labelled sentences")->required()->check(CLI::ExistingFile);
  examples::add_bad_lines_option(*eval_cmd, bad_lines);

  auto* predict_cmd = app.add_subcommand("predict", "classify sentences (arguments, or lines on stdin)");
  std::vector<std::string> words;
  std::string attention_svg;
  std::size_t attention_layer = 0;
  examples::add_predict_options(*predict_cmd, model_path, attention_svg, attention_layer);
  predict_cmd->add_option("words", words, "a sentence");

  CLI11_PARSE(app, argc, argv);
  try {
    set_num_threads(threads);
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
        throw std::runtime_error("--bagging " + std::to_string(bagging) + ": bagging is for ensembles (--ensemble 2 or more)");
      const auto train_data = models::read_labeled(train_file, &bad_lines);
      const auto dev_data = models::read_labeled(dev_file, &bad_lines);
      examples::report_bad_lines(bad_lines);
      std::vector<std::vector<std::string>> train_words;
      std::vector<std::string> all_labels;
      std::vector<std::size_t> lengths;
      for (const auto& s : train_data) {
        train_words.push_back(s.words);
        all_labels.push_back(s.label);
        lengths.push_back(s.words.size());
      }
      SentimentBundle s;
      s.gen.seed_with(to.seed);
      s.words = models::Vocab::build(train_words, m.min_count, true);
      s.labels = models::Vocab::closed(all_labels);
      s.subwords.buckets = subword_buckets;
      s.net = std::make_unique<models::Ensemble<models::Classifier>>(
          members,
          models::ClassifierOptions{.vocab = s.words.size(), .classes = s.labels.size(), .d_model = m.d_model,
                                    .heads = m.heads, .ff = m.ff, .layers = m.layers, .dropout = m.dropout,
                                    .positions = nn::position_scheme_from_name(m.positions),
                                    .pooling = models::pooling_from_name(pooling),
                                    .subword_buckets = subword_buckets, .subword_groups = s.subwords.groups(),
                                    .conv_width = conv_width},
          s.gen);
      for (const auto& d : dev_data) s.labels.id(d.label);  // a dev label unseen in training: an error
      std::printf("sentiment: %zu train and %zu dev sentences, %zu words, %zu classes, %zu parameters%s\n",
                  train_data.size(), dev_data.size(), s.words.size(), s.labels.size(), s.net->module().parameter_count(),
                  members > 1 ? (" in " + std::to_string(members) + " classifiers").c_str() : "");
      examples::Task task;
      task.model = &s.net->module();
      task.gen = &s.gen;
      // Each member of an ensemble walks the epoch's batches in its own order.
      examples::MemberOrders orders(
          [&](std::size_t epoch) {
            Generator shuffle(to.seed * 1000003 + epoch);
            return models::make_batches(lengths, m.batch_tokens, 64, &shuffle);
          },
          members, to.seed);
      task.batches = [&](std::size_t epoch) { return orders.epoch(epoch); };
      task.loss = [&](const std::vector<std::size_t>& batch) {
        Tensor total;
        for (std::size_t k = 0; k < members; ++k) {
          const Tensor l = s.member_loss(k, train_data, orders.member(batch, k), m.word_dropout, bagging, to.seed);
          total = total.defined() ? total + l : l;
        }
        return total * (1.0 / members);
      };
      task.lengths = &lengths;
      task.evaluate = [&] { return accuracy(s, dev_data); };
      task.save_model = [&](const std::string& path) { s.save(path); };
      examples::train(task, to);
    } else if (*eval_cmd) {
      const auto s = SentimentBundle::load(model_path);
      const auto data = models::read_labeled(eval_file, &bad_lines);
      examples::report_bad_lines(bad_lines);
      std::printf("%s: %zu sentences, accuracy %.2f%%\n", eval_file.c_str(), data.size(), 100 * accuracy(*s, data));
    } else if (*predict_cmd) {
      const auto s = SentimentBundle::load(model_path);
      std::vector<std::vector<std::string>> sentences;
      for (const auto& line : examples::input_sentences(words)) sentences.push_back(models::split_words(line));
      const auto probs = s->predict(sentences);
      for (std::size_t i = 0; i < sentences.size(); ++i) {
        const auto best = std::max_element(probs[i].begin(), probs[i].end()) - probs[i].begin();
        std::printf("%s\t%.3f\t", s->labels.word(best).c_str(), probs[i][best]);
        for (std::size_t j = 0; j < sentences[i].size(); ++j) std::printf("%s%s", j ? " " : "", sentences[i][j].c_str());
        std::printf("\n");
      }
      if (!attention_svg.empty() && !sentences.empty()) {
        std::vector<Tensor> weights;
        s->predict({sentences[0]}, &weights);
        examples::write_attention_svg(attention_svg, weights, sentences[0], attention_layer);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tapegrad-sentiment: %s\n", e.what());
    return 1;
  }
  return 0;
}

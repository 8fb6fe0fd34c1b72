// tapegrad-tagger: part-of-speech tagging (UPOS) with a convolution over neighbouring words, a
// transformer encoder with relative-position attention, and subword features for unseen words.
//
//   tapegrad-tagger train --data data/ud-english-ewt          (any *train*.conllu / *dev*.conllu)
//   tapegrad-tagger eval --model tagger.npz data/ud-english-ewt/en_ewt-ud-dev.conllu
//   tapegrad-tagger predict --model tagger.npz "The old man the boat ."     (or lines on stdin)
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "common.hpp"

using namespace tg;
using examples::Settings;
namespace fs = std::filesystem;

namespace {

// A model with everything needed to use it: the network, its vocabularies and settings.
struct TaggerBundle {
  Generator gen;
  models::Vocab words, tags;
  models::SubwordOptions subwords;
  std::unique_ptr<models::Ensemble<models::Tagger>> net;  // one tagger, or several predicting together

  // ids (B, T), subword ids (B, T, K) (all 0 when the model has none), tags (B, T) with -100 at
  // padding (if tag strings are given).
  void encode(const std::vector<const std::vector<std::string>*>& sentences, Ids& ids, Ids& subs,
              const std::vector<const std::vector<std::string>*>* gold, Ids* tag_ids) const {
    std::size_t T = 0;
    for (auto* s : sentences) T = std::max(T, s->size());
    const std::size_t B = sentences.size(), K = subwords.max_features;
    ids = xt::zeros<std::int64_t>({B, T});
    subs = xt::zeros<std::int64_t>({B, T, K});
    if (tag_ids) *tag_ids = xt::full_like(ids, std::int64_t{-100});
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < sentences[b]->size(); ++t) {
        const std::string& w = (*sentences[b])[t];
        ids(b, t) = words.id(w);
        if (subwords.buckets > 0) {
          const auto f = models::subword_ids(w, subwords);
          for (std::size_t k = 0; k < f.size(); ++k) subs(b, t, k) = f[k];
        }
        if (tag_ids) (*tag_ids)(b, t) = tags.id((*(*gold)[b])[t]);
      }
  }

  Settings settings() const {
    Settings s = examples::encoder_settings("tagger", net->front().options());
    s["members"] = std::to_string(net->size());
    s["subword_buckets"] = std::to_string(net->front().options().subword_buckets);
    s["subword_features"] = std::to_string(subwords.max_features);
    s["subword_grouped"] = subwords.grouped ? "1" : "0";
    s["conv_width"] = std::to_string(net->front().options().conv_width);
    return s;
  }

  void save(const std::string& path) const {
    examples::save_model_file(path, net->module(), {{"vocab/words", words.to_text()}, {"vocab/tags", tags.to_text()},
                                             {"settings", examples::settings_to_text(settings())}});
  }

  static std::unique_ptr<TaggerBundle> load(const std::string& path) {
    const examples::ModelFile file(path, "tagger");
    auto b = std::make_unique<TaggerBundle>();
    b->words = models::Vocab::from_text(file.text("vocab/words"), path);
    b->tags = models::Vocab::from_text(file.text("vocab/tags"), path);
    b->subwords.buckets = file.number("subword_buckets");
    b->subwords.max_features = file.number("subword_features");
    b->subwords.grouped = file.get_or("subword_grouped", "0") == "1";  // older files: one pool
    b->net = std::make_unique<models::Ensemble<models::Tagger>>(
        file.number_or("members", 1),
        models::TaggerOptions{.vocab = b->words.size(), .tags = b->tags.size(), .d_model = file.number("d_model"),
                              .heads = file.number("heads"), .ff = file.number("ff"), .layers = file.number("layers"),
                              .dropout = 0.0,
                              .positions = nn::position_scheme_from_name(examples::get(file.settings(), "positions", path)),
                              .relative_k = file.number("relative_k"), .max_len = file.number("max_len"),
                              .subword_buckets = b->subwords.buckets,
                              .subword_groups = b->subwords.groups(),
                              .conv_width = file.number_or("conv_width", 0)},  // older files: none
        b->gen);
    file.load_parameters(b->net->module());
    b->net->module().eval();
    return b;
  }

  // The members' mean cross-entropy over the tags of real tokens.
  Tensor loss(const Ids& ids, const Ids& tag_ids, const Ids& subs) const {
    Tensor total;
    for (models::Tagger* m : net->members()) {
      const Tensor l = m->loss(ids, tag_ids, m->subword_embed ? &subs : nullptr);
      total = total.defined() ? total + l : l;
    }
    return total * (1.0 / net->size());
  }

  // Predicted tag ids for each sentence: the best tag of the members' mean probabilities.
  // `weights`, if given, receives the first member's attention.
  std::vector<std::vector<std::int64_t>> predict(const std::vector<std::vector<std::string>>& sentences,
                                                 std::vector<Tensor>* weights = nullptr) const {
    std::vector<std::vector<std::int64_t>> out(sentences.size());
    std::vector<std::size_t> lengths;
    for (const auto& s : sentences) lengths.push_back(s.size());
    NoGradGuard no_grad;
    for (const auto& batch : models::make_batches(lengths, 4000, 128, nullptr)) {
      std::vector<const std::vector<std::string>*> ptrs;
      for (std::size_t i : batch) ptrs.push_back(&sentences[i]);
      Ids ids, subs;
      encode(ptrs, ids, subs, nullptr, nullptr);
      Tensor probs;
      for (models::Tagger* m : net->members()) {
        const Tensor p = softmax(m->forward(ids, m->subword_embed ? &subs : nullptr, probs.defined() ? nullptr : weights));
        probs = probs.defined() ? probs + p : p;  // the sum has the same best tag as the mean
      }
      const auto& l = probs.data<float>();
      const std::size_t V = tags.size();
      for (std::size_t b = 0; b < batch.size(); ++b)
        for (std::size_t t = 0; t < sentences[batch[b]].size(); ++t) {
          const float* row = l.data() + (b * ids.shape()[1] + t) * V;
          out[batch[b]].push_back(std::max_element(row, row + V) - row);
        }
    }
    return out;
  }
};

struct Accuracy {
  std::size_t right = 0, total = 0, oov_right = 0, oov_total = 0;
  double value() const { return total ? double(right) / total : 0; }
};

Accuracy evaluate(const TaggerBundle& t, const std::vector<models::TaggedSentence>& data) {
  std::vector<std::vector<std::string>> sentences;
  for (const auto& s : data) sentences.push_back(s.words);
  const auto predicted = t.predict(sentences);
  Accuracy a;
  for (std::size_t i = 0; i < data.size(); ++i)
    for (std::size_t j = 0; j < data[i].words.size(); ++j) {
      const bool right = t.tags.word(predicted[i][j]) == data[i].tags[j];
      const bool oov = t.words.id(data[i].words[j]) == models::Vocab::kUnk;
      a.right += right;
      ++a.total;
      a.oov_right += right && oov;
      a.oov_total += oov;
    }
  return a;
}

std::string find_file(const std::string& dir, const std::string& part) {
  if (!fs::is_directory(dir)) throw std::runtime_error(dir + ": not a folder");
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(part) != std::string::npos && e.path().extension() == ".conllu") found.push_back(e.path().string());
  }
  if (found.size() != 1)
    throw std::runtime_error(dir + ": expected one *" + part + "*.conllu file, found " + std::to_string(found.size()) +
                             " (name the files with --train and --dev)");
  return found[0];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tapegrad-tagger: part-of-speech tagging with a transformer"};
  app.require_subcommand(1);
  std::size_t threads = 2;
  app.add_option("--threads", threads, "threads for kernels and BLAS together")->check(examples::positive);

  auto* train_cmd = app.add_subcommand("train", "train a tagger on CoNLL-U data");
  std::string data_dir, train_file, dev_file;
  examples::TrainOptions to;
  to.epochs = 12;
  to.time_limit_minutes = 14;
  to.out = "tagger.npz";
  to.plot = "tagger-curve.svg";
  examples::ModelChoice m{.word_dropout = 0.1, .positions = "relative", .batch_tokens = 1500};
  std::size_t relative_k = 8, subword_buckets = 1 << 15, members = 3, conv_width = 5;
  double rare_word_dropout = 1;
  train_cmd->add_option("--data", data_dir, "folder with *train*.conllu and *dev*.conllu");
  train_cmd->add_option("--train", train_file, "training file (CoNLL-U)")->check(CLI::ExistingFile);
  train_cmd->add_option("--dev", dev_file, "development file (CoNLL-U)")->check(CLI::ExistingFile);
  train_cmd->add_option("--relative-k", relative_k, "relative positions: clip offsets to [-k, k]")->check(examples::positive);
  train_cmd->add_option("--subword-buckets", subword_buckets, "hashed subword features (0: off)")->check(examples::buckets);
  train_cmd->add_option("--conv-width", conv_width, "a convolution of this width over the word vectors before the encoder (0: none)")
      ->check(examples::odd_or_zero);
  train_cmd->add_option("--rare-word-dropout", rare_word_dropout,
                        "in training, replace a word seen n times by the unknown word with probability a / (a + n)")
      ->check(examples::non_negative);
  train_cmd->add_option("--ensemble", members, "train this many taggers side by side and predict with their mean")
      ->check(examples::positive);
  examples::add_train_options(*train_cmd, to, m);
  models::BadLines bad_lines;
  examples::add_bad_lines_option(*train_cmd, bad_lines);

  auto* eval_cmd = app.add_subcommand("eval", "accuracy on any CoNLL-U file");
  std::string model_path = "tagger.npz", eval_file;
  eval_cmd->add_option("--model", model_path, "model file")->check(CLI::ExistingFile);
  eval_cmd->add_option("file", eval_file, "CoNLL-U file")->required()->check(CLI::ExistingFile);
  examples::add_bad_lines_option(*eval_cmd, bad_lines);

  auto* predict_cmd = app.add_subcommand("predict", "tag sentences (arguments, or lines on stdin)");
  std::vector<std::string> words;
  std::string attention_svg;
  std::size_t attention_layer = 0;
  examples::add_predict_options(*predict_cmd, model_path, attention_svg, attention_layer);
  predict_cmd->add_option("words", words, "a sentence (words separated by spaces)");

  CLI11_PARSE(app, argc, argv);
  try {
    set_num_threads(threads);
    if (*train_cmd) {
      if (!data_dir.empty()) {
        if (train_file.empty()) train_file = find_file(data_dir, "train");
        if (dev_file.empty()) dev_file = find_file(data_dir, "dev");
      }
      if (train_file.empty() || dev_file.empty()) throw CLI::RequiredError("--data, or --train and --dev");
      const auto train_data = models::read_conllu(train_file, &bad_lines);
      const auto dev_data = models::read_conllu(dev_file, &bad_lines);
      examples::report_bad_lines(bad_lines);
      std::vector<std::vector<std::string>> train_words;
      std::vector<std::string> all_tags;
      std::vector<std::size_t> lengths;
      for (const auto& s : train_data) {
        train_words.push_back(s.words);
        all_tags.insert(all_tags.end(), s.tags.begin(), s.tags.end());
        lengths.push_back(s.words.size());
      }
      TaggerBundle t;
      t.gen.seed_with(to.seed);
      t.words = models::Vocab::build(train_words, m.min_count, false);
      t.tags = models::Vocab::closed(all_tags);
      t.subwords.buckets = subword_buckets;
      t.net = std::make_unique<models::Ensemble<models::Tagger>>(
          members,
          models::TaggerOptions{.vocab = t.words.size(), .tags = t.tags.size(), .d_model = m.d_model, .heads = m.heads,
                                .ff = m.ff, .layers = m.layers, .dropout = m.dropout,
                                .positions = nn::position_scheme_from_name(m.positions), .relative_k = relative_k,
                                .subword_buckets = subword_buckets, .subword_groups = t.subwords.groups(),
                                .conv_width = conv_width},
          t.gen);
      std::printf("tagger: %zu train and %zu dev sentences, %zu words in the vocabulary, %zu tags, %zu parameters%s\n",
                  train_data.size(), dev_data.size(), t.words.size(), t.tags.size(), t.net->module().parameter_count(),
                  members > 1 ? (" in " + std::to_string(members) + " taggers").c_str() : "");
      examples::Task task;
      task.model = &t.net->module();
      task.gen = &t.gen;
      task.batches = [&](std::size_t epoch) {
        Generator shuffle(to.seed * 1000003 + epoch);
        return models::make_batches(lengths, m.batch_tokens, 256, &shuffle);
      };
      task.loss = [&](const std::vector<std::size_t>& batch) {
        std::vector<const std::vector<std::string>*> ws, ts;
        for (std::size_t i : batch) ws.push_back(&train_data[i].words), ts.push_back(&train_data[i].tags);
        Ids ids, subs, tag_ids;
        t.encode(ws, ids, subs, &ts, &tag_ids);
        examples::drop_words(ids, m.word_dropout, t.gen);  // teaches tagging from subwords alone
        models::drop_rare_words(ids, t.words, rare_word_dropout, t.gen);
        return t.loss(ids, tag_ids, subs);
      };
      task.lengths = &lengths;
      task.evaluate = [&] { return evaluate(t, dev_data).value(); };
      task.save_model = [&](const std::string& path) { t.save(path); };
      examples::train(task, to);
    } else if (*eval_cmd) {
      const auto t = TaggerBundle::load(model_path);
      const auto data = models::read_conllu(eval_file, &bad_lines);
      examples::report_bad_lines(bad_lines);
      const Accuracy a = evaluate(*t, data);
      std::printf("%s: %zu sentences, %zu tokens\nUPOS accuracy %.2f%% (unknown words: %.2f%% of %zu)\n",
                  eval_file.c_str(), data.size(), a.total, 100 * a.value(),
                  a.oov_total ? 100.0 * a.oov_right / a.oov_total : 0.0, a.oov_total);
    } else if (*predict_cmd) {
      const auto t = TaggerBundle::load(model_path);
      std::vector<std::vector<std::string>> sentences;
      for (const auto& line : examples::input_sentences(words)) sentences.push_back(models::split_words(line));
      const auto tags = t->predict(sentences);
      for (std::size_t i = 0; i < sentences.size(); ++i) {
        for (std::size_t j = 0; j < sentences[i].size(); ++j)
          std::printf("%s%s/%s", j ? " " : "", sentences[i][j].c_str(), t->tags.word(tags[i][j]).c_str());
        std::printf("\n");
      }
      if (!attention_svg.empty() && !sentences.empty()) {
        std::vector<Tensor> weights;  // the first sentence alone, so the weights are its own (B = 1)
        t->predict({sentences[0]}, &weights);
        examples::write_attention_svg(attention_svg, weights, sentences[0], attention_layer);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tapegrad-tagger: %s\n", e.what());
    return 1;
  }
  return 0;
}

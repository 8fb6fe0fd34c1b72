// tapegrad-translate: translation with an encoder-decoder transformer, beam search and BLEU.
//
//   tapegrad-translate train --data data/multi30k                (train.de/en, val.de/en)
//   tapegrad-translate eval --model translator.npz data/multi30k/val.de data/multi30k/val.en --out hyps.txt
//   tapegrad-translate translate --model translator.npz "Ein Hund läuft im Schnee."   (or lines on stdin)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>

#include "common.hpp"

using namespace tg;
using examples::Settings;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kBos = 2, kEos = 3;  // target vocabulary: <pad> <unk> <s> </s> words...

// A model with everything needed to use it: the network, its vocabularies and settings.
struct TranslatorBundle {
  Generator gen;
  models::Vocab source_vocab, target_vocab;
  bool lower = true;
  std::unique_ptr<models::Translator> model;

  std::vector<std::int64_t> source_ids(const std::vector<std::string>& words) const {
    std::vector<std::int64_t> ids;
    for (const auto& w : words) ids.push_back(source_vocab.id(w));
    return ids;
  }

  Settings settings() const {
    const auto& o = model->options();
    Settings s = examples::encoder_settings("translator", o);
    s["lowercase"] = lower ? "1" : "0";
    s["mlp_hidden"] = std::to_string(o.mlp_hidden);
    s["mlp_scale"] = std::to_string(static_cast<std::size_t>(o.mlp_scale));
    return s;
  }

  void save(const std::string& path) const {
    examples::save_model_file(path, *model, {{"vocab/source", source_vocab.to_text()}, {"vocab/target", target_vocab.to_text()},
                                             {"settings", examples::settings_to_text(settings())}});
  }

  static std::unique_ptr<TranslatorBundle> load(const std::string& path) {
    const examples::ModelFile file(path, "translator");
    auto b = std::make_unique<TranslatorBundle>();
    b->source_vocab = models::Vocab::from_text(file.text("vocab/source"), path);
    b->target_vocab = models::Vocab::from_text(file.text("vocab/target"), path);
    if (b->target_vocab.size() <= kEos || b->target_vocab.word(kBos) != "<s>" || b->target_vocab.word(kEos) != "</s>")
      throw std::runtime_error(path + ": the target vocabulary does not start with <pad> <unk> <s> </s>");
    b->lower = file.number("lowercase") != 0;
    b->model = std::make_unique<models::Translator>(
        models::TranslatorOptions{
            .src_vocab = b->source_vocab.size(), .tgt_vocab = b->target_vocab.size(), .d_model = file.number("d_model"),
            .heads = file.number("heads"), .ff = file.number("ff"), .layers = file.number("layers"), .dropout = 0.0,
            .positions = nn::position_scheme_from_name(examples::get(file.settings(), "positions", path)),
            .mlp_hidden = file.number("mlp_hidden"), .mlp_scale = double(file.number("mlp_scale")),
            .relative_k = file.number("relative_k"), .max_len = file.number("max_len")},
        b->gen);
    file.load_parameters(*b->model);
    b->model->eval();
    return b;
  }

  // Translations of tokenised sentences, as target tokens.
  std::vector<std::vector<std::string>> translate(const std::vector<std::vector<std::string>>& sentences,
                                                  const models::SearchOptions& search) const {
    std::vector<std::vector<std::int64_t>> sources;
    for (const auto& s : sentences) sources.push_back(source_ids(s));
    const auto found = search.beam == 1 ? models::greedy_search(*model, sources, search)
                                        : models::beam_search(*model, sources, search);
    std::vector<std::vector<std::string>> out;
    for (const auto& t : found) {
      out.emplace_back();
      for (std::int64_t id : t.tokens) out.back().push_back(target_vocab.word(id));
    }
    return out;
  }

  // Output tokens as text; a lowercasing model's sentences get their first letter back.
  std::string text_of(const std::vector<std::string>& words) const {
    const std::string text = models::detokenize(words);
    return lower ? models::capitalize_first(text) : text;
  }

  // Cross-attention of the last decoder layer (mean over heads) while the decoder reads
  // `target` after `source`: one row per target token (+ the end), one column per source token.
  std::vector<std::vector<double>> cross_attention(const std::vector<std::string>& source,
                                                   const std::vector<std::string>& target, std::size_t layer) const {
    NoGradGuard no_grad;
    const auto src_ids = source_ids(source);
    Ids src = Ids::from_shape({1, src_ids.size()}), tgt = Ids::from_shape({1, target.size() + 1});
    std::copy(src_ids.begin(), src_ids.end(), src.begin());
    tgt(0, 0) = kBos;
    for (std::size_t t = 0; t < target.size(); ++t) tgt(0, t + 1) = target_vocab.id(target[t]);
    std::vector<Tensor> weights;  // one (1, H, T, S) per layer
    model->decode(tgt, model->encode(src), models::key_padding_mask(src), nullptr, &weights);
    if (layer >= weights.size())
      throw std::runtime_error("--layer " + std::to_string(layer) + ": the decoder has " + std::to_string(weights.size()) +
                               " layers (0 to " + std::to_string(weights.size() - 1) + ")");
    const auto& w = weights[layer].data<float>();
    const std::size_t H = w.shape()[1], T = w.shape()[2], S = w.shape()[3];
    std::vector<std::vector<double>> avg(T, std::vector<double>(S, 0.0));
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t s = 0; s < S; ++s) avg[t][s] += w(0, h, t, s) / H;
    return avg;
  }
};

struct Scored {
  models::Bleu bleu;
  double seconds = 0;
};

// Translates source lines and scores them against reference lines.
Scored score(const TranslatorBundle& t, const std::vector<std::string>& source_lines,
             const std::vector<std::string>& references, const models::SearchOptions& search, bool cased,
             std::vector<std::string>* hypotheses_out = nullptr) {
  std::vector<std::vector<std::string>> sentences;
  for (const auto& line : source_lines) sentences.push_back(models::tokenize(line, t.lower));
  const auto start = std::chrono::steady_clock::now();
  const auto translated = t.translate(sentences, search);
  Scored s;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<std::string> hypotheses;
  for (const auto& words : translated) hypotheses.push_back(t.text_of(words));
  s.bleu = models::corpus_bleu(hypotheses, references, !cased);
  if (hypotheses_out) *hypotheses_out = std::move(hypotheses);
  return s;
}

std::vector<std::string> source_lines_of(const std::string& path) {
  auto lines = models::read_lines(path);
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (lines[i].empty()) throw models::DataError(path, i + 1, "empty line (every line must hold a sentence)");
  return lines;
}

void add_search_options(CLI::App& cmd, models::SearchOptions& s) {
  cmd.add_option("--beam", s.beam, "beam size (1: greedy)")->check(examples::positive);
  cmd.add_option("--length-penalty", s.length_penalty, "alpha of the length penalty ((5 + length) / 6)^alpha")
      ->check(examples::non_negative);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tapegrad-translate: translation with an encoder-decoder transformer"};
  app.require_subcommand(1);
  std::size_t threads = 2;
  app.add_option("--threads", threads, "threads for kernels and BLAS together")->check(examples::positive);

  auto* train_cmd = app.add_subcommand("train", "train a translator on aligned files");
  std::string data_dir, source_lang = "de", target_lang = "en", train_src, train_tgt, dev_src, dev_tgt;
  examples::TrainOptions to;
  to.epochs = 16;  // about 14 fit in the time limit on 2 cores
  to.time_limit_minutes = 58;
  to.lr = 1e-3;
  to.warmup = 400;
  to.out = "translator.npz";
  to.plot = "translator-curve.svg";
  to.metric_name = "BLEU";
  to.metric_percent = false;
  examples::ModelChoice m{.d_model = 256, .layers = 3, .heads = 8, .ff = 512, .dropout = 0.1, .positions = "mlp",
                          .min_count = 2, .batch_tokens = 2000};
  double label_smoothing = 0.1;
  bool cased_model = false;
  models::SearchOptions final_search;
  train_cmd->add_option("--data", data_dir, "folder with train.SRC, train.TGT, val.SRC, val.TGT");
  train_cmd->add_option("--src", source_lang, "source language suffix");
  train_cmd->add_option("--tgt", target_lang, "target language suffix");
  train_cmd->add_option("--train-src", train_src, "training source file")->check(CLI::ExistingFile);
  train_cmd->add_option("--train-tgt", train_tgt, "training target file")->check(CLI::ExistingFile);
  train_cmd->add_option("--dev-src", dev_src, "development source file")->check(CLI::ExistingFile);
  train_cmd->add_option("--dev-tgt", dev_tgt, "development target file")->check(CLI::ExistingFile);
  train_cmd->add_option("--label-smoothing", label_smoothing, "label smoothing of the loss")->check(CLI::Range(0.0, 0.5));
  train_cmd->add_flag("--cased", cased_model, "keep the case of words (default: lowercase everything)");
  train_cmd->add_option("--final-beam", final_search.beam, "beam for the dev BLEU after training (0: skip)");
  examples::add_train_options(*train_cmd, to, m);
  models::BadLines bad_lines;
  examples::add_bad_lines_option(*train_cmd, bad_lines);

  auto* eval_cmd = app.add_subcommand("eval", "BLEU on any pair of aligned files");
  std::string model_path = "translator.npz", eval_src, eval_ref, hypotheses_path;
  models::SearchOptions search;
  bool cased_bleu = false;
  eval_cmd->add_option("--model", model_path, "model file")->check(CLI::ExistingFile);
  eval_cmd->add_option("source", eval_src, "source file, a sentence per line")->required()->check(CLI::ExistingFile);
  eval_cmd->add_option("reference", eval_ref, "reference translations, aligned")->required()->check(CLI::ExistingFile);
  eval_cmd->add_option("--out", hypotheses_path, "write the translations here, a line each");
  eval_cmd->add_flag("--cased", cased_bleu, "case-sensitive BLEU (default: lowercased)");
  add_search_options(*eval_cmd, search);

  auto* translate_cmd = app.add_subcommand("translate", "translate sentences (arguments, or lines on stdin)");
  std::vector<std::string> words;
  std::string attention_svg;
  std::size_t attention_layer = 0;
  translate_cmd->add_option("--model", model_path, "model file")->check(CLI::ExistingFile);
  translate_cmd->add_option("--attention-svg", attention_svg,
                            "write the first sentence's cross-attention (source against output) as an SVG heatmap");
  translate_cmd->add_option("--layer", attention_layer, "which decoder layer's cross-attention to draw (default: the last)");
  translate_cmd->add_option("words", words, "a sentence");
  add_search_options(*translate_cmd, search);

  CLI11_PARSE(app, argc, argv);
  try {
    set_num_threads(threads);
    if (*train_cmd) {
      if (!data_dir.empty()) {
        const auto in_dir = [&](const std::string& name) { return (fs::path(data_dir) / name).string(); };
        if (train_src.empty()) train_src = in_dir("train." + source_lang);
        if (train_tgt.empty()) train_tgt = in_dir("train." + target_lang);
        if (dev_src.empty()) dev_src = in_dir("val." + source_lang);
        if (dev_tgt.empty()) dev_tgt = in_dir("val." + target_lang);
      }
      if (train_src.empty() || train_tgt.empty() || dev_src.empty() || dev_tgt.empty())
        throw CLI::RequiredError("--data, or --train-src, --train-tgt, --dev-src and --dev-tgt");
      TranslatorBundle t;
      t.lower = !cased_model;
      const auto pairs = models::read_parallel(train_src, train_tgt, t.lower, &bad_lines);
      examples::report_bad_lines(bad_lines);
      const auto dev_sources = source_lines_of(dev_src);
      const auto dev_references = models::read_lines(dev_tgt);
      if (dev_sources.size() != dev_references.size())
        throw std::runtime_error(dev_src + " has " + std::to_string(dev_sources.size()) + " lines but " + dev_tgt + " has " +
                                 std::to_string(dev_references.size()) + " (the files must be aligned)");
      std::vector<std::vector<std::string>> sources, targets;
      std::vector<std::size_t> lengths, tokens;  // padded length of a pair; its real tokens
      for (const auto& p : pairs) {
        sources.push_back(p.source);
        targets.push_back(p.target);
        lengths.push_back(std::max(p.source.size(), p.target.size() + 1));
        tokens.push_back(p.source.size() + p.target.size() + 1);
      }
      t.gen.seed_with(to.seed);
      t.source_vocab = models::Vocab::build(sources, m.min_count, false);
      t.target_vocab = models::Vocab::build(targets, m.min_count, false, {"<s>", "</s>"});
      const models::TranslatorOptions options{
          .src_vocab = t.source_vocab.size(), .tgt_vocab = t.target_vocab.size(), .d_model = m.d_model, .heads = m.heads,
          .ff = m.ff, .layers = m.layers, .dropout = m.dropout, .label_smoothing = label_smoothing,
          .positions = nn::position_scheme_from_name(m.positions)};
      for (std::size_t i = 0; i < pairs.size(); ++i)
        if (lengths[i] + 1 > options.max_len)
          throw models::DataError(train_src, i + 1, "the pair has " + std::to_string(lengths[i]) +
                                                        " tokens, more than the model's max_len " + std::to_string(options.max_len));
      t.model = std::make_unique<models::Translator>(options, t.gen);
      std::printf("translator: %zu training pairs, %zu dev sentences, vocabularies %zu (source) and %zu (target), "
                  "%zu parameters\n", pairs.size(), dev_sources.size(), t.source_vocab.size(), t.target_vocab.size(),
                  t.model->parameter_count());
      examples::Task task;
      task.model = t.model.get();
      task.gen = &t.gen;
      task.batches = [&](std::size_t epoch) {
        Generator shuffle(to.seed * 1000003 + epoch);
        return models::make_batches(lengths, m.batch_tokens, 256, &shuffle);
      };
      task.loss = [&](const std::vector<std::size_t>& batch) {
        std::size_t S = 0, T = 0;
        for (std::size_t i : batch) S = std::max(S, sources[i].size()), T = std::max(T, targets[i].size() + 1);
        Ids src = xt::zeros<std::int64_t>({batch.size(), S});
        Ids tgt_in = xt::zeros<std::int64_t>({batch.size(), T}), tgt_out = tgt_in;
        for (std::size_t b = 0; b < batch.size(); ++b) {
          const auto& s = sources[batch[b]];
          const auto& y = targets[batch[b]];
          for (std::size_t j = 0; j < s.size(); ++j) src(b, j) = t.source_vocab.id(s[j]);
          tgt_in(b, 0) = kBos;
          for (std::size_t j = 0; j < y.size(); ++j) tgt_in(b, j + 1) = tgt_out(b, j) = t.target_vocab.id(y[j]);
          tgt_out(b, y.size()) = kEos;
        }
        examples::drop_words(src, m.word_dropout, t.gen);
        return t.model->loss(src, tgt_in, tgt_out);
      };
      task.lengths = &tokens;
      task.evaluate = [&] {  // greedy decoding: fast, and close to beam search's ranking of models
        return score(t, dev_sources, dev_references, {.beam = 1, .bos = kBos, .eos = kEos}, false).bleu.score / 100;
      };
      task.save_model = [&](const std::string& path) { t.save(path); };
      examples::train(task, to);
      if (final_search.beam > 0 && fs::exists(to.out)) {
        const auto best = TranslatorBundle::load(to.out);
        final_search.bos = kBos, final_search.eos = kEos;
        const Scored s = score(*best, dev_sources, dev_references, final_search, false);
        std::printf("%s on %s, beam %zu: %s  (%.1f s)\n", to.out.c_str(), dev_src.c_str(), final_search.beam,
                    s.bleu.to_string().c_str(), s.seconds);
      }
    } else if (*eval_cmd) {
      const auto t = TranslatorBundle::load(model_path);
      const auto source_lines = source_lines_of(eval_src);
      const auto references = models::read_lines(eval_ref);
      if (source_lines.size() != references.size())
        throw std::runtime_error(eval_src + " has " + std::to_string(source_lines.size()) + " lines but " + eval_ref +
                                 " has " + std::to_string(references.size()) + " (the files must be aligned)");
      search.bos = kBos, search.eos = kEos;
      std::vector<std::string> hypotheses;
      const Scored s = score(*t, source_lines, references, search, cased_bleu, &hypotheses);
      std::printf("%s: %zu sentences, beam %zu, %s BLEU\n%s\ntranslated in %.1f s (%.1f sentences/s)\n",
                  eval_src.c_str(), source_lines.size(), search.beam, cased_bleu ? "cased" : "lowercased",
                  s.bleu.to_string().c_str(), s.seconds, source_lines.size() / std::max(s.seconds, 1e-9));
      if (!hypotheses_path.empty()) {
        std::ofstream out(hypotheses_path);
        for (const auto& h : hypotheses) out << h << '\n';
        if (!out) throw std::runtime_error(hypotheses_path + ": cannot write the translations");
        std::printf("wrote %s\n", hypotheses_path.c_str());
      }
    } else if (*translate_cmd) {
      const auto t = TranslatorBundle::load(model_path);
      search.bos = kBos, search.eos = kEos;
      std::vector<std::vector<std::string>> sentences;
      for (const auto& line : examples::input_sentences(words)) sentences.push_back(models::tokenize(line, t->lower));
      const auto translated = t->translate(sentences, search);
      for (const auto& words_out : translated) std::printf("%s\n", t->text_of(words_out).c_str());
      if (!attention_svg.empty() && !sentences.empty()) {
        const std::size_t layer = translate_cmd->count("--layer") ? attention_layer : t->model->options().layers - 1;
        std::vector<std::string> rows = translated[0];
        rows.push_back("</s>");
        examples::write_heatmap_svg(attention_svg, rows, sentences[0], t->cross_attention(sentences[0], translated[0], layer),
                                    "cross-attention, decoder layer " + std::to_string(layer) +
                                        ", mean over heads; output words (rows) attend to source words (columns)");
        std::printf("wrote %s\n", attention_svg.c_str());
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tapegrad-translate: %s\n", e.what());
    return 1;
  }
  return 0;
}

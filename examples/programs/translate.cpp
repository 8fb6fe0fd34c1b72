// tapegrad-translate: translation with an encoder-decoder transformer, beam search and BLEU.
// The model, its files, its training data and the training loop are the library's
// (models/translation.hpp, models/translation_training.hpp, nn/training/loop.hpp); this file is
// the command line and the scores.
//
//   tapegrad-translate train --data data/multi30k                (train.de/en, val.de/en)
//   tapegrad-translate eval --model translator.npz data/multi30k/val.de data/multi30k/val.en --out
//   hyps.txt tapegrad-translate predict --model translator.npz "Ein Hund läuft im Schnee."   (or
//   lines on stdin)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "cli.hpp"

using namespace tg;

namespace {

struct Scored {
  models::Bleu bleu;
  std::vector<std::string> hypotheses;
  double seconds = 0;
};

// Translates source lines and scores them against reference lines; with `sampling`, each
// translation is one sample instead of the search's answer.
Scored score(const models::TranslationPipeline& t, const std::vector<std::string>& sources,
             const std::vector<std::string>& references, const models::SearchOptions& search,
             bool lower, const models::SamplingOptions* sampling = nullptr) {
  const auto start = std::chrono::steady_clock::now();
  Scored s;
  if (sampling) {
    std::vector<models::Words> sentences;
    for (const auto& line : sources) sentences.push_back(t.tokenize(line));
    for (const auto& drawn : t.sample(sentences, search, *sampling, 1))
      s.hypotheses.push_back(drawn.empty() ? "" : t.text_of(drawn[0]));
  } else {
    s.hypotheses = t.translate_lines(sources, search);
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  s.bleu = models::corpus_bleu(s.hypotheses, references, lower);
  return s;
}

void add_search_options(CLI::App& cmd, models::SearchOptions& s) {
  cmd.add_option("--beam", s.beam,
                 "beam size (1: greedy); a non-autoregressive model: the lengths tried")
      ->check(examples::positive);
  cmd.add_option("--refine", s.refine,
                 "a non-autoregressive model: mask-predict iterations (1: one pass)")
      ->check(examples::positive)
      ->capture_default_str();
  cmd.add_option("--length-penalty", s.length_penalty,
                 "alpha of the length penalty ((5 + length) / 6)^alpha")
      ->check(examples::non_negative);
}

// ---- train ----------------------------------------------------------------------------------

// `train`'s choices.  The defaults: the best recipe measured (docs/results.md#translation):
// dropout 0.3 against over-fitting Multi30k's 29,000 pairs, and the moving average of the weights.
struct TrainChoice {
  std::string data_dir, source_lang = "de", target_lang = "en";
  models::ParallelFiles files;
  nn::TrainOptions to{.epochs = 30,
                      .time_limit_minutes = 58,
                      .lr = 1e-3,
                      .warmup = 400,
                      .out = "translator.npz",
                      .plot = "translator-curve.svg",
                      .metric_name = "BLEU",
                      .metric_percent = false,
                      .average = 0.999};
  models::TranslatorOptions options{.dropout = 0.3};  // the rest of its defaults are the program's
  examples::DataChoice data{.min_count = 2, .batch_tokens = 2000};
  bool cased = false;
  models::SearchOptions final_search;
  double scheduled_k = 0;
  CLI::Option* scheduled_option = nullptr;
  std::string objective = "ce", init, decoder = "autoregressive", vocab = "word";
  std::size_t vocab_size = 8000;
  models::MrtOptions mrt;
};
// Alone, --scheduled-sampling takes k = 500: half the inputs are the model's own guesses near
// step 3,100, the middle of the default 30 epochs of Multi30k.
constexpr double kDefaultScheduledK = 500;

void add_data_options(CLI::App& cmd, TrainChoice& c) {
  const std::string text = "a text file, a sentence a line";
  cmd.add_option("--data", c.data_dir, "folder with train.SRC, train.TGT, val.SRC, val.TGT")
      ->check(examples::readable_folder("a folder with train.SRC, train.TGT, val.SRC and val.TGT"));
  cmd.add_option("--src", c.source_lang, "source language suffix");
  cmd.add_option("--tgt", c.target_lang, "target language suffix");
  cmd.add_option("--train-src", c.files.train_source, "training source file")
      ->check(examples::readable(text));
  cmd.add_option("--train-tgt", c.files.train_target, "training target file")
      ->check(examples::readable(text));
  cmd.add_option("--dev-src", c.files.dev_source, "development source file")
      ->check(examples::readable(text));
  cmd.add_option("--dev-tgt", c.files.dev_target, "development target file")
      ->check(examples::readable(text));
}

CLI::Validator k_or_zero() {
  return CLI::Validator(
      [](std::string& v) {
        return v.empty() || std::stod(v) == 0 || std::stod(v) >= 1 ? ""
                                                                   : "must be 0 or >= 1, got " + v;
      },
      "K");
}

// A text option that must be one of `names` ("--decoder autoregressive|nat"), its default in
// --help.
CLI::Option* add_choice(CLI::App& cmd, const std::string& name, std::string& value,
                        const std::vector<std::string>& names, const std::string& help) {
  return cmd.add_option(name, value, help)->check(CLI::IsMember(names))->capture_default_str();
}

// --scheduled-sampling, --objective and minimum risk training's settings.
void add_objective_options(CLI::App& cmd, TrainChoice& c) {
  c.scheduled_option =
      cmd.add_option("--scheduled-sampling", c.scheduled_k,
                     "scheduled sampling with the inverse sigmoid decay k / (k + exp(step / k)) of "
                     "gold tokens (0: off, else k >= 1; alone: k = 500)")
          ->expected(0, 1)
          ->check(k_or_zero());
  add_choice(cmd, "--objective", c.objective, {"ce", "mrt"},
             "ce: label-smoothed cross-entropy; mrt: minimum risk training on sentence BLEU (Shen "
             "et al. 2016), "
             "fine-tuning the model of --init");
  cmd.add_option("--init", c.init, "start from this model file (its options and vocabularies)")
      ->check(examples::readable("a model file"));
  cmd.add_option("--mrt-samples", c.mrt.samples,
                 "with --objective mrt: candidates drawn per sentence")
      ->check(examples::positive)
      ->capture_default_str();
  cmd.add_option("--mrt-alpha", c.mrt.alpha,
                 "with --objective mrt: sharpness of the model's distribution over them")
      ->check(examples::positive)
      ->capture_default_str();
}

// --decoder and --vocab, with their settings: what a new model is (--init's model decides them).
void add_model_kind_options(CLI::App& cmd, TrainChoice& c) {
  add_choice(
      cmd, "--decoder", c.decoder, {"autoregressive", "nat"},
      "autoregressive: token by token (beam search); nat: non-autoregressive, every token at once, "
      "refined by mask-predict (Ghazvininejad et al. 2019), with a length classifier");
  cmd.add_option("--length-weight", c.options.length_weight,
                 "with --decoder nat: weight of the length loss")
      ->check(examples::non_negative)
      ->capture_default_str();
  add_choice(
      cmd, "--vocab", c.vocab, {"word", "spm"},
      "word: a vocabulary of words (rare ones unknown); spm: of subword pieces, by a SentencePiece "
      "unigram model trained on both languages' training text and stored in the model file");
  cmd.add_option("--vocab-size", c.vocab_size, "with --vocab spm: pieces in the subword model")
      ->check(CLI::Range(8, 1 << 20))
      ->capture_default_str();
}

int train(TrainChoice& c, const CLI::App& cmd, const examples::Program& program);

examples::Command train_command(examples::Program& program) {
  const auto choice = std::make_shared<TrainChoice>();  // kept by the command
  TrainChoice& c = *choice;
  CLI::App* cmd = program.subcommand("train", "train a translator on aligned files");
  add_data_options(*cmd, c);
  examples::add_encoder_options(*cmd, c.options);
  cmd->add_option("--label-smoothing", c.options.label_smoothing, "label smoothing of the loss")
      ->check(CLI::Range(0.0, 0.5));
  cmd->add_flag("--cased", c.cased,
                "the model keeps the case of words (default: it reads and writes lowercase)");
  cmd->add_option("--final-beam", c.final_search.beam,
                  "beam for the dev BLEU after training (0: skip)");
  add_objective_options(*cmd, c);
  add_model_kind_options(*cmd, c);
  examples::add_train_options(*cmd, c.to, c.data);
  return {cmd, [choice, cmd, &program] { return train(*choice, *cmd, program); }};
}

// The four files, from --data's folder where not named; each must open.
void resolve_files(TrainChoice& c) {
  if (c.data_dir.empty()) {
    const auto& f = c.files;
    if (f.train_source.empty() || f.train_target.empty() || f.dev_source.empty() ||
        f.dev_target.empty())
      throw CLI::RequiredError("--data, or --train-src, --train-tgt, --dev-src and --dev-tgt");
    return;
  }
  c.files.in_folder(c.data_dir, c.source_lang, c.target_lang);
  examples::require_readable("--data", c.files.train_source,
                             "the training source text, a sentence a line");
  examples::require_readable("--data", c.files.train_target,
                             "the training target text, a sentence a line");
  examples::require_readable("--data", c.files.dev_source,
                             "the development source text, a sentence a line");
  examples::require_readable("--data", c.files.dev_target,
                             "the development target text, a sentence a line");
}

// The rules between options, before any file is read.
void check_choices(const CLI::App& cmd, TrainChoice& c) {
  if (c.objective == "mrt" && c.init.empty())
    throw CLI::ValidationError("--objective mrt",
                               "fine-tunes a trained model: name it with --init");
  for (const char* decided : {"--decoder", "--length-weight", "--vocab", "--vocab-size"})
    if (!c.init.empty() && cmd.count(decided))
      throw CLI::ValidationError(decided, "the model of --init decides it");
  if (cmd.count("--length-weight") && c.decoder != "nat")
    throw CLI::ValidationError("--length-weight", "is for --decoder nat");
  if (cmd.count("--vocab-size") && c.vocab != "spm")
    throw CLI::ValidationError("--vocab-size", "is for --vocab spm");
  c.options.non_autoregressive = c.decoder == "nat";
  if (c.scheduled_option->count() && c.scheduled_option->results().front().empty())
    c.scheduled_k = kDefaultScheduledK;
}

// The rules that depend on the model: --init's (`initial`), or the new one's options.
void check_model_choices(const TrainChoice& c, const models::TranslationPipeline* initial) {
  const bool nat =
      initial ? initial->model().options().non_autoregressive : c.options.non_autoregressive;
  if (nat && c.scheduled_k > 0)
    throw CLI::ValidationError(
        "--scheduled-sampling",
        "feeds the model's own earlier tokens: needs an autoregressive model");
  if (nat && c.objective == "mrt")
    throw CLI::ValidationError("--objective mrt",
                               "samples candidates token by token: needs an autoregressive model");
}

// After training: the best model's dev BLEU with --final-beam.
void report_final_bleu(const TrainChoice& c, const models::TranslationData& data) {
  if (c.final_search.beam == 0 || !nn::ProcessGroup::world().is_root() ||
      !std::filesystem::exists(c.to.out))
    return;
  const auto best = models::TranslationPipeline::load(c.to.out);
  const Scored s = score(*best, data.dev_sources, data.dev_references, c.final_search, true);
  std::printf("%s on %s, beam %zu: %s  (%.1f s)\n%s\n", c.to.out.c_str(),
              c.files.dev_source.c_str(), c.final_search.beam, s.bleu.to_string().c_str(),
              s.seconds, models::bleu_signature(true).c_str());
}

int train(TrainChoice& c, const CLI::App& cmd, const examples::Program& program) {
  resolve_files(c);
  check_choices(cmd, c);
  // With --init, the model file decides the options, the vocabularies and the case.
  std::unique_ptr<models::TranslationPipeline> t =
      c.init.empty() ? nullptr : models::TranslationPipeline::load(c.init);
  check_model_choices(c, t.get());
  const bool lower = t ? t->lower() : !c.cased;
  auto data = models::TranslationData::read(c.files, lower, &c.data.bad_lines);
  examples::report_bad_lines(c.data.bad_lines);
  const std::size_t pieces = c.vocab == "spm" ? c.vocab_size : 0;
  const models::TranslatorRecipe recipe{.options = c.options,
                                        .lower = lower,
                                        .subword_pieces = pieces,
                                        .min_count = c.data.min_count,
                                        .seed = c.to.seed};
  t = models::prepare_translator(data, std::move(t), recipe);
  if (!c.init.empty()) std::printf("starting from %s\n", c.init.c_str());
  std::printf(
      "translator: %zu training pairs, %zu dev sentences, %s vocabularies %zu (source) and %zu "
      "(target), "
      "%zu parameters\n",
      data.sources.size(), data.dev_sources.size(), t->subwords() ? "subword" : "word",
      t->source_vocab().size(), t->target_vocab().size(), t->model().parameter_count());
  examples::announce_limits(c.to);
  const models::TranslationObjective objective{.minimum_risk = c.objective == "mrt",
                                               .mrt = c.mrt,
                                               .word_dropout = c.data.word_dropout,
                                               .scheduled_k = c.scheduled_k};
  nn::Task task = models::translation_task(*t, data, objective, c.data.batch_tokens, c.to.seed,
                                           program.command_line());
  if (const int code = examples::train(task, c.to); code != 0) return code;
  report_final_bleu(c, data);
  return 0;
}

// ---- eval -----------------------------------------------------------------------------------

struct EvalChoice {
  std::string model = "translator.npz", source, reference, hypotheses;
  models::SearchOptions search;
  bool case_sensitive = false, json = false;
  examples::SampleChoice sample;  // BLEU of one sample a sentence
};

int eval(EvalChoice& e, const CLI::App& cmd);

examples::Command eval_command(examples::Program& program) {
  const auto choice = std::make_shared<EvalChoice>();  // kept by the command
  EvalChoice& e = *choice;
  CLI::App* cmd = program.subcommand("eval", "BLEU on any pair of aligned files");
  examples::add_model_option(*cmd, e.model);
  cmd->add_option("source", e.source, "source file, a sentence per line")
      ->required()
      ->check(examples::readable("a text file, a sentence a line"));
  cmd->add_option("reference", e.reference, "reference translations, aligned")
      ->required()
      ->check(examples::readable("a text file, a sentence a line"));
  cmd->add_option("--out", e.hypotheses, "write the translations here, a line each");
  cmd->add_flag("--case-sensitive", e.case_sensitive,
                "case-sensitive BLEU (default: both sides lowercased)");
  cmd->add_flag("--json", e.json, "print one JSON object instead of text");
  add_search_options(*cmd, e.search);
  examples::add_sampling_options(*cmd, e.sample);
  return {cmd, [choice, cmd] { return eval(*choice, *cmd); }};
}

void print_bleu(const EvalChoice& e, const Scored& s, std::size_t sentences,
                bool non_autoregressive, bool sampled) {
  const std::string signature = models::bleu_signature(!e.case_sensitive);
  if (e.json) {
    const auto& b = s.bleu;
    const nlohmann::json j{
        {"file", e.source},           {"sentences", sentences},
        {"beam", e.search.beam},      {"refine", non_autoregressive ? e.search.refine : 0},
        {"sample", e.sample.method},  {"bleu", b.score},
        {"precisions", b.precisions}, {"brevity_penalty", b.brevity_penalty},
        {"hyp_length", b.hyp_length}, {"ref_length", b.ref_length},
        {"signature", signature},     {"seconds", s.seconds}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  const std::string how = sampled ? "one sample each (" + e.sample.method + ")"
                                  : "beam " + std::to_string(e.search.beam);
  std::printf("%s: %zu sentences, %s, %s BLEU\n%s\n%s\ntranslated in %.1f s (%.1f sentences/s)\n",
              e.source.c_str(), sentences, how.c_str(), e.case_sensitive ? "cased" : "lowercased",
              s.bleu.to_string().c_str(), signature.c_str(), s.seconds,
              sentences / std::max(s.seconds, 1e-9));
}

int eval(EvalChoice& e, const CLI::App& cmd) {
  const auto t = models::TranslationPipeline::load(e.model);
  const auto [sources, references] = models::read_aligned(e.source, e.reference);
  const models::SamplingOptions* sampling = e.sample.resolve(cmd);
  const Scored s = score(*t, sources, references, e.search, !e.case_sensitive, sampling);
  print_bleu(e, s, sources.size(), t->model().options().non_autoregressive, sampling);
  if (!e.hypotheses.empty()) {
    std::ofstream out(e.hypotheses);
    for (const auto& h : s.hypotheses) out << h << '\n';
    if (!out) throw std::runtime_error(e.hypotheses + ": cannot write the translations");
    std::fprintf(stderr, "wrote %s\n", e.hypotheses.c_str());
  }
  return 0;
}

// ---- predict --------------------------------------------------------------------------------

struct PredictChoice {
  examples::PredictChoice common{
      .model = "translator.npz",
      .format_help = "text: a translation a line; json: {\"source\", \"translation\"} a line"};
  models::SearchOptions search;
  examples::SampleChoice sample;
  std::size_t samples = 1;
  CLI::Option* layer = nullptr;
};

int predict(PredictChoice& p, const CLI::App& cmd);

examples::Command predict_command(examples::Program& program) {
  const auto choice = std::make_shared<PredictChoice>();  // kept by the command
  PredictChoice& p = *choice;
  CLI::App* cmd = program.subcommand(
      "predict", "translate sentences: the arguments, or each line of standard input");
  cmd->alias("translate");  // its name before the programs shared one vocabulary
  p.layer = examples::add_predict_options(
      *cmd, p.common,
      "draw the first sentence's cross-attention (source against output) as an SVG heatmap");
  p.layer->description("which decoder layer's cross-attention to draw (default: the last)");
  add_search_options(*cmd, p.search);
  examples::add_sampling_options(*cmd, p.sample);
  cmd->add_option("--samples", p.samples,
                  "with --sample: translations per sentence (text: tab-separated)")
      ->check(examples::positive);
  return {cmd, [choice, cmd] { return predict(*choice, *cmd); }};
}

// A line per input line: its samples, tab-separated (json: an array).
void print_samples(const models::TranslationPipeline& t, const PredictChoice& p,
                   const std::vector<std::string>& lines,
                   const std::vector<models::Words>& sentences,
                   const models::SamplingOptions& sampling) {
  const auto drawn = t.sample(sentences, p.search, sampling, p.samples);
  for (std::size_t i = 0; i < drawn.size(); ++i) {
    std::vector<std::string> texts;
    for (const auto& words : drawn[i]) texts.push_back(t.text_of(words));
    if (p.common.format == "json") {
      std::printf("%s\n", nlohmann::json{{"source", lines[i]}, {"samples", texts}}.dump().c_str());
      continue;
    }
    std::string joined;
    for (std::size_t s = 0; s < texts.size(); ++s) joined += (s ? "\t" : "") + texts[s];
    std::printf("%s\n", joined.c_str());
  }
}

void draw_cross_attention(const models::TranslationPipeline& t, const PredictChoice& p,
                          const models::Words& source, const models::Words& translation) {
  const std::size_t layer = p.layer->count() ? p.common.layer : t.model().options().layers - 1;
  std::vector<std::string> rows = translation;
  if (!t.model().options().non_autoregressive) rows.push_back("</s>");
  models::write_heatmap_svg(
      p.common.attention_svg, rows, source, t.cross_attention(source, translation, layer),
      "cross-attention, decoder layer " + std::to_string(layer) +
          ", mean over heads; output words (rows) attend to source words (columns)");
  std::fprintf(stderr, "wrote %s\n", p.common.attention_svg.c_str());
}

int predict(PredictChoice& p, const CLI::App& cmd) {
  const models::SamplingOptions* sampling = p.sample.resolve(cmd);
  const auto t = models::TranslationPipeline::load(p.common.model);
  std::vector<models::Words> sentences;
  const auto lines = examples::input_lines(p.common.words);
  for (const auto& line : lines) sentences.push_back(t->tokenize(line));
  if (sampling) {
    print_samples(*t, p, lines, sentences, *sampling);
    return 0;
  }
  const auto translated = t->translate(sentences, p.search);
  for (std::size_t i = 0; i < translated.size(); ++i) {
    const std::string text = t->text_of(translated[i]);
    if (p.common.format == "json")
      std::printf("%s\n",
                  nlohmann::json{{"source", lines[i]}, {"translation", text}}.dump().c_str());
    else std::printf("%s\n", text.c_str());
  }
  if (!p.common.attention_svg.empty() && !sentences.empty())
    draw_cross_attention(*t, p, sentences[0], translated[0]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  examples::Program program("tapegrad-translate",
                            "translation with an encoder-decoder transformer");
  return program.run(argc, argv,
                     {train_command(program), eval_command(program), predict_command(program)});
}

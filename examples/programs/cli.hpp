// What the three programs' command lines share: number and file checks with plain messages,
// the training options every `train` takes, Ctrl-C during training, the input and output of
// `predict`, and `main`'s frame (usage errors, exit codes, --version; for the tagger and the
// sentiment program, their three commands).  Everything else lives in the library.
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "tapegrad.hpp"

namespace examples {

// Exit codes: 0 done, 1 an error (bad data, a bad model file), 130 stopped by Ctrl-C after
// saving; usage errors exit with CLI11's codes and a line naming the option: 105 a value that
// fails its check (a missing file or folder included), 106 a required option missing, 109 an
// unknown argument.
constexpr int kExitError = 1, kExitInterrupted = 130;
constexpr int kExitBadValue = static_cast<int>(CLI::ExitCodes::ValidationError);  // 105

// A subcommand and what it runs once the command line has chosen it.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

// A program's frame: its name and help, --threads, --precision and --version; run() parses, calls
// `body` and turns exceptions into "program: message" on stderr and exit 1.  body returns the code.
class Program {
 public:
  // --help opens with "name: description".
  Program(const std::string& name, const std::string& description);
  CLI::App& app() { return app_; }
  // Registers a subcommand; its options show their defaults in --help.
  CLI::App* subcommand(const std::string& name, const std::string& description);
  int run(int argc, char** argv, const std::function<int()>& body);
  // The same for a program of subcommands: runs the one the command line chose.
  int run(int argc, char** argv, const std::vector<Command>& commands);
  const std::string& command_line() const { return command_line_; }  // for model files

 private:
  std::string name_, command_line_;
  CLI::App app_;
  std::size_t threads_ = 2;
  std::string precision_ = "f32";
};

// Number checks with plain messages: "--lr: must be greater than 0, got -1".
extern const CLI::Validator positive, non_negative;
extern const CLI::Validator buckets;      // hashed-feature tables: 0 (off) or at least 2
extern const CLI::Validator odd_or_zero;  // convolution widths: 0 (none) or odd
// Missing files, the same way wherever they are named (a typed path, a default, a file in
// --data's folder): one line with the file, the system's reason and what was expected, as a
// usage error (kExitBadValue):
//   --model: nowhere.npz: cannot open: No such file or directory (expected a model file)
// A file that can be opened for reading; `what` is what it should hold ("a model file").
CLI::Validator readable(const std::string& what);
// A folder that exists (`what`: what it should hold).
CLI::Validator readable_folder(const std::string& what);
// The same check for a path the command line did not type: throws CLI::ValidationError naming
// `option`.
void require_readable(const std::string& option, const std::string& path, const std::string& what);
// --model, checked when typed and, if not, its default once the command line is read (CLI11
// checks only typed values).  Uses the command's callback.
CLI::Option* add_model_option(CLI::App& cmd, std::string& path);
// The one file in --data's folder `dir` whose name holds `part` and ends in `extension`
// (".conllu"); a usage error naming the folder when there is none, or more than one (adding
// `hint` in parentheses).
std::string find_file(const std::string& dir, const std::string& part, const std::string& extension,
                      const std::string& hint = "");
// --positions: the names of nn::PositionScheme.
CLI::Validator position_names();

// ---- train ----------------------------------------------------------------------------------

// The model and data settings every program's `train` takes, with the program's defaults.
struct DataChoice {
  double word_dropout = 0.0;  // in training, a word becomes the unknown word with this probability
  std::size_t min_count = 1, batch_tokens = 2000;
  tg::models::BadLines bad_lines;  // --bad-lines
};
// The encoder settings of a model's options struct (d_model, heads, ff, layers, dropout,
// positions), registered straight into it, so the struct's defaults are the program's.
template <class Options>
void add_encoder_options(CLI::App& cmd, Options& o) {
  cmd.add_option("--d-model", o.d_model, "model width")->check(positive);
  cmd.add_option("--layers", o.layers, "encoder layers")->check(positive);
  cmd.add_option("--heads", o.heads, "attention heads")->check(positive);
  cmd.add_option("--ff", o.ff, "feed-forward width")->check(positive);
  cmd.add_option("--dropout", o.dropout, "dropout")->check(CLI::Range(0.0, 0.9));
  cmd.add_option_function<std::string>(
         "--positions",
         [&o](const std::string& name) {
           o.positions = tg::enum_from_name<tg::nn::PositionScheme>(name);
         },
         "how the model sees word order (docs/positions.md)")
      ->check(position_names())
      ->default_str(tg::enum_name(o.positions));
  cmd.add_option("--relative-k", o.relative_k,
                 "with --positions relative or --attention kernelized: clip offsets to [-k, k]")
      ->check(positive);
  cmd.add_option_function<std::string>(
         "--attention",
         [&o](const std::string& name) {
           o.attention = tg::enum_from_name<tg::nn::AttentionKind>(name);
         },
         "self-attention: softmax, or kernelized (random features and a learned bias per offset, "
         "by FFT)")
      ->check(CLI::IsMember({"softmax", "kernelized"}))
      ->default_str(tg::enum_name(o.attention));
  cmd.add_option("--kernel-features", o.kernel_features,
                 "with --attention kernelized: random features m")
      ->check(positive);
}
// What the tagger and the classifier add (models/blocks.hpp, models/ensemble.hpp):
// --subword-buckets, --conv-width and --ensemble; `noun` names the models ("taggers").
void add_word_model_options(CLI::App& cmd, tg::models::SentenceEncoderOptions& encoder,
                            tg::models::SubwordOptions& subwords, std::size_t& members,
                            const std::string& noun);
// --epochs --word-dropout --min-count --batch-tokens, the loop's options (below), --bad-lines.
void add_train_options(CLI::App& cmd, tg::nn::TrainOptions& train, DataChoice& data);
// The training loop's options: --minutes --lr --warmup --lr-floor --weight-decay --beta1 --beta2
// --average --seed --out --plot --log --resume --detect-anomaly --checkpoint-blocks --overlap.
void add_loop_options(CLI::App& cmd, tg::nn::TrainOptions& train);
// Before training: what will stop it ("at most 12 epochs or 14 minutes").
void announce_limits(const tg::nn::TrainOptions& train);
// While it lives, SIGINT (Ctrl-C), SIGTERM (what schedulers and mpirun's Ctrl-C send) and
// SIGUSR1 (mpirun passes it on to every rank) set a flag instead of ending the process, for
// nn::Task::stop; at its end the previous handlers are back.  One at a time.
class StopOnSignals {
 public:
  StopOnSignals();
  ~StopOnSignals();
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;
  const std::atomic<bool>* flag() const;
};
// nn::train with Ctrl-C saving a checkpoint (StopOnSignals); returns the exit code, 0 or
// kExitInterrupted.  A run that ends by its limits says where its checkpoint was left, and that
// `longer` (the option that makes training longer: --epochs, or --steps) continues it.
int train(tg::nn::Task& task, const tg::nn::TrainOptions& options,
          const std::string& longer = "--epochs");
// --bad-lines stop|skip on a command that reads data files.
void add_bad_lines_option(CLI::App& cmd, tg::models::BadLines& bad);
// After reading: how many lines were skipped, and the first few reasons (silent when none).
void report_bad_lines(const tg::models::BadLines& bad);
// The training and development data, read with `read` (models::read_conllu, read_labeled);
// skipped lines are reported.
template <class Read>
auto read_train_and_dev(Read read, const std::string& train, const std::string& dev,
                        tg::models::BadLines& bad) {
  auto train_data = read(train, &bad);
  auto dev_data = read(dev, &bad);
  report_bad_lines(bad);
  return std::pair{std::move(train_data), std::move(dev_data)};
}

// ---- eval and predict -----------------------------------------------------------------------

// `eval` of a task with a closed label set (tagger, sentiment): the model, the file, the report.
struct EvalChoice {
  std::string model, file, confusion_svg;
  bool json = false;
  tg::models::BadLines bad_lines;
};
// `file_help` says what the file holds ("a CoNLL-U file"): its help, and what a missing one was
// expected to be.
void add_eval_options(CLI::App& cmd, EvalChoice& eval, const std::string& file_help);
// `eval`'s file, read with `read` (models::read_conllu, read_labeled) under --bad-lines; skipped
// lines are reported.
template <class Read>
auto read_eval_file(Read read, EvalChoice& eval) {
  auto gold = read(eval.file, &eval.bad_lines);
  report_bad_lines(eval.bad_lines);
  return gold;
}

// `predict`: the model, the sentence in the arguments (else standard input), the output format,
// the attention picture.  Returns --layer, whose default is the program's to say.
struct PredictChoice {
  std::string model;
  std::vector<std::string> formats = {"text", "json"};  // the first is the default
  std::string format_help, format, attention_svg;
  std::size_t layer = 0;
  std::vector<std::string> words;
};
CLI::Option* add_predict_options(CLI::App& cmd, PredictChoice& predict,
                                 const std::string& attention_help =
                                     "draw the first sentence's self-attention as an SVG heatmap");
// The eval and predict subcommands of a task with a closed label set (tagger, sentiment), with
// their options; `file_help` says what eval reads.
std::pair<CLI::App*, CLI::App*> add_eval_and_predict(Program& program, EvalChoice& eval,
                                                     PredictChoice& predict,
                                                     const std::string& file_help);

// What a program with a closed label set (tagger, sentiment) brings to its `main`: `train`'s
// options and body, and the bodies of `eval` and `predict` (whose options are shared).
template <class TrainChoice>
struct LabellingCommands {
  CLI::App* (*add_train_command)(Program& program, TrainChoice& choice);
  int (*train)(TrainChoice& choice, const Program& program);
  int (*eval)(EvalChoice& choice);
  int (*predict)(const PredictChoice& choice);
};
// Such a program's `main`: registers train, eval and predict (in that order in --help), reads
// the command line and runs the command given.  `predict` holds the default model file (eval's
// too) and the output formats; `eval_file_help` says what eval reads.
template <class TrainChoice>
int run_labelling_program(Program& program, int argc, char** argv,
                          const LabellingCommands<TrainChoice>& commands, PredictChoice predict,
                          const std::string& eval_file_help) {
  TrainChoice train_choice;
  CLI::App* train_cmd = commands.add_train_command(program, train_choice);
  EvalChoice eval_choice{.model = predict.model};
  const auto [eval_cmd, predict_cmd] =
      add_eval_and_predict(program, eval_choice, predict, eval_file_help);
  return program.run(argc, argv,
                     {{train_cmd, [&] { return commands.train(train_choice, program); }},
                      {eval_cmd, [&] { return commands.eval(eval_choice); }},
                      {predict_cmd, [&] { return commands.predict(predict); }}});
}

// The lines to work on: the arguments joined as one line, else every line of standard input
// (blank lines included: a program writes one output line per input line).
std::vector<std::string> input_lines(const std::vector<std::string>& args);
// The same lines split into words (models::tokenize, case kept): a sentence a line.
std::vector<tg::models::Words> input_sentences(const std::vector<std::string>& args);

// --attention-svg: the self-attention of `model` (a pipeline of models/pipelines.hpp whose
// predict can hand back the weights) over the first sentence, layer --layer, mean over heads, as
// an SVG heatmap; nothing when not asked for or without a sentence.
template <class Pipeline>
void draw_first_attention(const Pipeline& model, const PredictChoice& p,
                          const std::vector<tg::models::Words>& sentences) {
  if (p.attention_svg.empty() || sentences.empty()) return;
  std::vector<tg::Tensor> weights;  // the first sentence alone, so the weights are its own (B = 1)
  model.predict({sentences[0]}, &weights);
  tg::models::write_attention_svg(p.attention_svg, weights, sentences[0], p.layer);
  std::fprintf(stderr, "wrote %s\n", p.attention_svg.c_str());
}

// `predict`'s body for a pipeline that labels words or sentences: the sentences (arguments or
// standard input) printed by `print(model, sentences, json)`, then the attention picture if
// asked for.
template <class Pipeline, class Print>
int label_sentences(const Pipeline& model, const PredictChoice& p, Print print) {
  const auto sentences = input_sentences(p.words);
  print(model, sentences, p.format == "json");
  draw_first_attention(model, p, sentences);
  return 0;
}

// ---- sampling -------------------------------------------------------------------------------

// --sample METHOD and its settings (models::SamplingOptions): tapegrad-translate's predict and
// eval, where an empty method means searching instead, and tapegrad-lm's generate, which always
// samples (its method starts as "temperature").
struct SampleChoice {
  std::string method;  // temperature, topk or nucleus; empty: search instead
  tg::models::SamplingOptions sampling;
  std::size_t top_k = 10;
  double top_p = 0.9;

  // The options to sample with, or nullptr to search; a setting of another method is refused.
  const tg::models::SamplingOptions* resolve(const CLI::App& cmd);
};
// Registers --sample, --temperature, --top-k, --top-p and --seed; `instead_of` names what
// sampling replaces ("searching"), or is empty where there is nothing else.
void add_sampling_options(CLI::App& cmd, SampleChoice& choice,
                          const std::string& instead_of = "searching");

// Per-class precision, recall and F1 and the confusion matrix of gold against predicted labels
// (indices into `labels`), as `eval` prints them.
struct ClassReport {
  std::vector<std::string> labels;
  std::vector<std::vector<std::size_t>> confusion;  // [gold][predicted]
  ClassReport(std::vector<std::string> labels);
  void add(std::size_t gold, std::size_t predicted) { ++confusion.at(gold).at(predicted); }
  std::size_t total() const;
  std::size_t support(std::size_t c) const;  // how many gold labels are class c
  double accuracy() const;
  double precision(std::size_t c) const, recall(std::size_t c) const, f1(std::size_t c) const;
  double macro_f1() const;
  std::string table() const;  // a row per class: precision, recall, F1, support
  std::string confusion_text() const;
  nlohmann::json json() const;  // {"accuracy", "macro_f1", "classes": {label: {precision, recall,
                                // f1, support}}, "confusion"}
  void write_confusion_svg(const std::string& path, const std::string& title) const;
};
// What `eval` prints: `header`, the per-class table and the confusion matrix as text, or one JSON
// object (the report's, with `extra`'s fields); and the confusion SVG when asked for.
void print_report(const ClassReport& report, const EvalChoice& eval, const std::string& header,
                  nlohmann::json extra = nlohmann::json::object());

}  // namespace examples

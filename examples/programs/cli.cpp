#include "cli.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace examples {

// ---- the frame ------------------------------------------------------------------------------

Program::Program(const std::string& name, const std::string& description)
    : name_(name), app_(name + ": " + description, name) {
  app_.require_subcommand(1);
  app_.set_version_flag("--version", name + " (tapegrad " TAPEGRAD_VERSION ")");
  app_.option_defaults()->always_capture_default();
  app_.add_option("--threads", threads_, "threads for kernels and BLAS together")->check(positive);
  app_.add_option("--precision", precision_,
                  "f32, or bf16: the large matrix products read bfloat16 operands and sum in "
                  "float32 (oneDNN's bfloat16 kernels on CPUs with AVX512_BF16 or AMX, else "
                  "emulated)")
      ->check(CLI::IsMember({"f32", "bf16"}));
}

CLI::App* Program::subcommand(const std::string& name, const std::string& description) {
  CLI::App* cmd = app_.add_subcommand(name, description);
  cmd->option_defaults()->always_capture_default();
  return cmd;
}

int Program::run(int argc, char** argv, const std::vector<Command>& commands) {
  return run(argc, argv, [&] {
    for (const Command& c : commands)
      if (*c.app) return c.run();
    throw std::logic_error("no command chosen");  // never: the program requires one
  });
}

int Program::run(int argc, char** argv, const std::function<int()>& body) {
  command_line_ = tg::nn::command_line(argc, argv);
  // Started by mpirun: every rank runs the same command (the training loop shares the work out),
  // and rank 0 alone prints; an error on any rank stops them all.
  const tg::nn::ProcessGroup* world = nullptr;
  try {
    world = &tg::nn::ProcessGroup::world();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name_.c_str(), e.what());
    return kExitError;
  }
  if (!world->is_root() && !std::freopen("/dev/null", "w", stdout))
    std::fprintf(stderr, "%s: rank %zu: cannot silence standard output\n", name_.c_str(),
                 world->rank());
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e);
  }
  try {
    tg::set_num_threads(threads_);
    tg::set_precision(tg::enum_from_name<tg::Precision>(precision_));
    if (tg::precision() != tg::Precision::f32)
      std::fprintf(stderr, "%s: products in %s\n", name_.c_str(),
                   tg::precision_description().c_str());
    tg::keep_freed_memory();  // every step's tensors reuse the last step's blocks
    return body();
  } catch (const CLI::ParseError&
               e) {  // a usage rule checked after parsing (two options together, --data's files)
    return app_.exit(e);
  } catch (const std::exception& e) {
    if (world->size() == 1) {
      std::fprintf(stderr, "%s: %s\n", name_.c_str(), e.what());
      return kExitError;
    }
    std::fprintf(stderr, "%s (rank %zu of %zu): %s\n", name_.c_str(), world->rank(), world->size(),
                 e.what());
    std::fflush(stdout);
    world->abort(kExitError);
  }
}

// ---- checks ---------------------------------------------------------------------------------

namespace {

CLI::Validator number_check(const char* name, bool (*ok)(double), const char* rule) {
  return CLI::Validator(
      [ok, rule](std::string& text) -> std::string {
        double v = 0;
        try {
          std::size_t used = 0;
          v = std::stod(text, &used);
          if (used != text.size()) throw std::invalid_argument(text);
        } catch (const std::exception&) {
          return "expected a number, got '" + text + "'";
        }
        return ok(v) ? "" : std::string(rule) + ", got " + text;
      },
      name);
}

}  // namespace

const CLI::Validator positive = number_check(
    "POSITIVE", [](double v) { return v > 0; }, "must be greater than 0");
const CLI::Validator non_negative = number_check(
    "NON-NEGATIVE", [](double v) { return v >= 0; }, "must be 0 or more");
const CLI::Validator buckets = number_check(
    "BUCKETS", [](double v) { return v == 0 || v >= 2; },
    "must be 0 (off) or at least 2 (bucket 0 is padding)");
const CLI::Validator odd_or_zero = number_check(
    "WIDTH", [](double v) { return v == 0 || std::fmod(v, 2) == 1; },
    "must be 0 (none) or odd, so that the window is centred");
namespace {

// "" if `path` opens for reading, else what is wrong with it and what was expected.
std::string cannot_read(const std::string& path, const std::string& what) {
  errno = 0;
  if (std::ifstream(path)) return "";
  return path + ": cannot open: " + (errno ? std::strerror(errno) : "unknown reason") +
         " (expected " + what + ")";
}

// "" if `path` is a folder, else what is wrong with it and what was expected.
std::string not_a_folder(const std::string& path, const std::string& what) {
  std::error_code error;  // set when there is nothing at `path`, or it cannot be looked at
  const auto status = std::filesystem::status(path, error);
  if (std::filesystem::is_directory(status)) return "";
  return path + ": " + (error ? "cannot open: " + error.message() : "not a folder") +
         " (expected " + what + ")";
}

}  // namespace

CLI::Validator readable(const std::string& what) {
  return CLI::Validator([what](std::string& path) { return cannot_read(path, what); }, "FILE");
}

CLI::Validator readable_folder(const std::string& what) {
  return CLI::Validator([what](std::string& path) { return not_a_folder(path, what); }, "DIR");
}

void require_readable(const std::string& option, const std::string& path, const std::string& what) {
  if (const std::string problem = cannot_read(path, what); !problem.empty())
    throw CLI::ValidationError(option, problem);
}

CLI::Option* add_model_option(CLI::App& cmd, std::string& path) {
  const char* const what = "a model file";
  CLI::Option* option = cmd.add_option("--model", path, "model file")->check(readable(what));
  cmd.callback(
      [&path, what] { require_readable("--model", path, what); });  // the default, if not typed
  return option;
}

std::string find_file(const std::string& dir, const std::string& part, const std::string& extension,
                      const std::string& hint) {
  const std::string what = "a folder with a *" + part + "*" + extension + " file";
  if (const std::string problem = not_a_folder(dir, what); !problem.empty())
    throw CLI::ValidationError("--data", problem);
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(part) != std::string::npos && e.path().extension() == extension)
      found.push_back(e.path().string());
  }
  if (found.size() != 1)
    throw CLI::ValidationError("--data", dir + ": expected one *" + part + "*" + extension +
                                             " file, found " + std::to_string(found.size()) +
                                             (hint.empty() ? "" : " (" + hint + ")"));
  return found[0];
}

CLI::Validator position_names() {
  std::vector<std::string> names;
  for (const auto& [scheme, name] : enum_table(tg::nn::PositionScheme{}).values)
    names.push_back(name);
  return CLI::IsMember(names);
}

// ---- train ----------------------------------------------------------------------------------

void add_train_options(CLI::App& cmd, tg::nn::TrainOptions& to, DataChoice& d) {
  cmd.add_option("--epochs", to.epochs, "epochs at most (training also stops at --minutes)")
      ->check(positive);
  cmd.add_option("--word-dropout", d.word_dropout,
                 "in training, replace a word by the unknown word with this probability")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--min-count", d.min_count, "words seen fewer times are unknown")->check(positive);
  cmd.add_option("--batch-tokens", d.batch_tokens, "tokens per batch (padded)")->check(positive);
  add_loop_options(cmd, to);
  add_bad_lines_option(cmd, d.bad_lines);
}

void add_loop_options(CLI::App& cmd, tg::nn::TrainOptions& to) {
  cmd.add_option("--minutes", to.time_limit_minutes, "training time limit in minutes (0: none)")
      ->check(non_negative);
  cmd.add_option("--lr", to.lr, "peak learning rate")->check(positive);
  cmd.add_option("--warmup", to.warmup,
                 "steps of linear warmup to --lr (then a cosine decay over the epochs)");
  cmd.add_option("--lr-floor", to.lr_floor, "the cosine decay ends at this fraction of --lr")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--weight-decay", to.weight_decay, "AdamW's decoupled weight decay")
      ->check(non_negative);
  cmd.add_option("--decay-vectors", to.decay_vectors,
                 "true: every parameter decays; false: only matrices and embedding tables, not "
                 "biases and layer-norm parameters (as GPT-2 and nanoGPT)");
  cmd.add_option("--beta1", to.beta1, "AdamW's decay of its running mean of gradients")
      ->check(CLI::Range(0.0, 0.99999));
  cmd.add_option("--beta2", to.beta2,
                 "AdamW's decay of its running mean of squared gradients (nanoGPT's small models: "
                 "0.99)")
      ->check(CLI::Range(0.0, 0.99999));
  cmd.add_option("--average", to.average,
                 "evaluate and save a moving average of the weights with this decay (0: off)")
      ->check(CLI::Range(0.0, 0.99999));
  cmd.add_option("--seed", to.seed, "random seed");
  cmd.add_option("--out", to.out, "the best model on dev (OUT.ckpt: the training checkpoint)");
  cmd.add_option("--plot", to.plot, "training-curve SVG ('' for none)");
  cmd.add_option("--log", to.log, "JSON-lines training log, appended ('' for none)");
  cmd.add_flag("--resume", to.resume, "continue from OUT.ckpt");
  cmd.add_flag("--detect-anomaly", to.detect_anomaly,
               "check every op for NaN or infinity and stop at the first (slower)");
  cmd.add_flag("--checkpoint-blocks", to.checkpoint_blocks,
               "keep only each transformer block's input in the forward and compute the block "
               "again in backward: less memory, a little more time, the same gradients");
  cmd.add_flag("--overlap", to.overlap,
               "under mpirun: start summing gradients while backward runs (helps only where MPI "
               "moves data in the "
               "background)");
}

void add_word_model_options(CLI::App& cmd, tg::models::SentenceEncoderOptions& encoder,
                            tg::models::SubwordOptions& subwords, std::size_t& members,
                            const std::string& noun) {
  cmd.add_option("--subword-buckets", subwords.buckets,
                 "hashed subword features, for words the vocabulary lacks (0: off)")
      ->check(buckets);
  cmd.add_option("--conv-width", encoder.conv_width,
                 "a convolution of this width over the word vectors before the encoder (0: none)")
      ->check(odd_or_zero);
  cmd.add_option("--ensemble", members,
                 "train this many " + noun + " side by side and predict with their mean")
      ->check(positive);
}

void announce_limits(const tg::nn::TrainOptions& to) {
  if (to.time_limit_minutes > 0)
    std::printf(
        "training for at most %zu epochs or %g minutes, whichever comes first (--epochs, "
        "--minutes)\n",
        to.epochs, to.time_limit_minutes);
  else std::printf("training for %zu epochs (--epochs; no time limit)\n", to.epochs);
}

// ---- stopping -------------------------------------------------------------------------------

namespace {

// A handler may only touch lock-free atomics (or volatile sig_atomic_t); this one is.
std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free);
void on_stop_signal(int) { g_stop_requested.store(true); }

constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGUSR1};
using Handler = void (*)(int);
Handler g_previous[std::size(kStopSignals)];

}  // namespace

StopOnSignals::StopOnSignals() {
  g_stop_requested = false;
  for (std::size_t i = 0; i < std::size(kStopSignals); ++i)
    g_previous[i] = std::signal(kStopSignals[i], on_stop_signal);
}

StopOnSignals::~StopOnSignals() {
  for (std::size_t i = 0; i < std::size(kStopSignals); ++i)
    std::signal(kStopSignals[i], g_previous[i]);
}

const std::atomic<bool>* StopOnSignals::flag() const { return &g_stop_requested; }

int train(tg::nn::Task& task, const tg::nn::TrainOptions& options, const std::string& longer) {
  bool interrupted = false;
  {
    const StopOnSignals
        signals;  // Ctrl-C while training saves a checkpoint; after it, Ctrl-C is Ctrl-C again
    task.stop = signals.flag();
    interrupted = tg::nn::train(task, options).interrupted;
    task.stop = nullptr;
  }
  if (interrupted) return kExitInterrupted;
  // Kept, not deleted: a run that stopped at --epochs or --minutes is often continued.
  std::error_code error;
  const std::string checkpoint = options.out + ".ckpt";
  const auto bytes = std::filesystem::file_size(checkpoint, error);
  if (!error && tg::nn::ProcessGroup::world().is_root())
    std::printf(
        "kept the checkpoint %s (%.1f MB): train again with --resume and more %s or --minutes "
        "to continue, or delete it\n",
        checkpoint.c_str(), bytes / 1e6, longer.c_str());
  return 0;
}

void add_bad_lines_option(CLI::App& cmd, tg::models::BadLines& bad) {
  cmd.add_option_function<std::string>(
         "--bad-lines", [&bad](const std::string& v) { bad.skip = v == "skip"; },
         "malformed data lines: stop, or skip them with their sentence")
      ->check(CLI::IsMember({"stop", "skip"}))
      ->default_str("stop");
}

void report_bad_lines(const tg::models::BadLines& bad) {
  if (bad.skipped == 0) return;
  std::printf("skipped %zu malformed line%s with their sentences (--bad-lines skip); the first:\n",
              bad.skipped, bad.skipped == 1 ? "" : "s");
  for (const auto& m : bad.first) std::printf("  %s\n", m.c_str());
}

// ---- eval and predict -----------------------------------------------------------------------

std::pair<CLI::App*, CLI::App*> add_eval_and_predict(Program& program, EvalChoice& eval,
                                                     PredictChoice& predict,
                                                     const std::string& file_help) {
  CLI::App* eval_cmd =
      program.subcommand("eval",
                         "score a model on a labelled file: accuracy, per-class precision, "
                         "recall and F1, and the confusion matrix");
  add_eval_options(*eval_cmd, eval, file_help);
  CLI::App* predict_cmd = program.subcommand(
      "predict", "label sentences: the arguments, or each line of standard input");
  add_predict_options(*predict_cmd, predict);
  return {eval_cmd, predict_cmd};
}

void add_eval_options(CLI::App& cmd, EvalChoice& e, const std::string& file_help) {
  add_model_option(cmd, e.model);
  cmd.add_option("file", e.file, file_help)->required()->check(readable(file_help));
  cmd.add_flag("--json", e.json, "print one JSON object instead of text");
  cmd.add_option("--confusion-svg", e.confusion_svg, "draw the confusion matrix as an SVG heatmap");
  add_bad_lines_option(cmd, e.bad_lines);
}

CLI::Option* add_predict_options(CLI::App& cmd, PredictChoice& p,
                                 const std::string& attention_help) {
  add_model_option(cmd, p.model);
  p.format = p.formats.at(0);
  cmd.add_option("--format", p.format, p.format_help)->check(CLI::IsMember(p.formats));
  cmd.add_option("--attention-svg", p.attention_svg, attention_help);
  CLI::Option* layer = cmd.add_option("--layer", p.layer, "which layer's attention to draw");
  cmd.add_option("words", p.words, "a sentence (read from standard input when none is given)");
  return layer;
}

std::vector<std::string> input_lines(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  if (!args.empty()) {
    std::string joined;
    for (const auto& a : args) joined += (joined.empty() ? "" : " ") + a;
    out.push_back(joined);
    return out;
  }
  for (std::string line; std::getline(std::cin, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::vector<tg::models::Words> input_sentences(const std::vector<std::string>& args) {
  std::vector<tg::models::Words> sentences;
  for (const auto& line : input_lines(args)) sentences.push_back(tg::models::tokenize(line, false));
  return sentences;
}

// ---- sampling -------------------------------------------------------------------------------

const tg::models::SamplingOptions* SampleChoice::resolve(const CLI::App& cmd) {
  if (cmd.count("--top-k") && method != "topk")
    throw CLI::ValidationError("--top-k", "is for --sample topk");
  if (cmd.count("--top-p") && method != "nucleus")
    throw CLI::ValidationError("--top-p", "is for --sample nucleus");
  for (const char* name : {"--temperature", "--seed", "--samples"})  // (not every command has all)
    if (const CLI::Option* o = cmd.get_option_no_throw(name); method.empty() && o && o->count())
      throw CLI::ValidationError(name, "is for --sample");
  if (method.empty()) return nullptr;
  if (method == "topk") sampling.top_k = top_k;
  if (method == "nucleus") sampling.top_p = top_p;
  return &sampling;
}

void add_sampling_options(CLI::App& cmd, SampleChoice& c, const std::string& instead_of) {
  const std::string how = instead_of.empty() ? "how each token is drawn: "
                                             : "draw each token instead of " + instead_of + ": ";
  cmd.add_option("--sample", c.method,
                 how +
                     "temperature (from the whole distribution), topk (from the --top-k most "
                     "likely tokens) or nucleus (from the fewest most likely tokens whose "
                     "probability reaches --top-p), each renormalised")
      ->check(CLI::IsMember({"temperature", "topk", "nucleus"}));
  cmd.add_option("--temperature", c.sampling.temperature,
                 "with --sample: softmax(log p / T), < 1 sharper, > 1 flatter")
      ->check(positive)
      ->capture_default_str();
  cmd.add_option("--top-k", c.top_k, "with --sample topk: the k")
      ->check(positive)
      ->capture_default_str();
  cmd.add_option("--top-p", c.top_p, "with --sample nucleus: the p")
      ->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
  cmd.add_option("--seed", c.sampling.seed, "with --sample: the random seed")
      ->capture_default_str();
}

// ---- eval -----------------------------------------------------------------------------------

ClassReport::ClassReport(std::vector<std::string> l)
    : labels(std::move(l)), confusion(labels.size(), std::vector<std::size_t>(labels.size(), 0)) {}

std::size_t ClassReport::total() const {
  std::size_t n = 0;
  for (const auto& row : confusion)
    for (std::size_t c : row) n += c;
  return n;
}

double ClassReport::accuracy() const {
  std::size_t right = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) right += confusion[i][i];
  return total() ? double(right) / total() : 0;
}

std::size_t ClassReport::support(std::size_t c) const {
  std::size_t gold = 0;
  for (std::size_t n : confusion.at(c)) gold += n;
  return gold;
}

double ClassReport::precision(std::size_t c) const {
  std::size_t predicted = 0;
  for (const auto& row : confusion) predicted += row[c];
  return predicted ? double(confusion[c][c]) / predicted : 0;
}

double ClassReport::recall(std::size_t c) const {
  const std::size_t gold = support(c);
  return gold ? double(confusion[c][c]) / gold : 0;
}

double ClassReport::f1(std::size_t c) const {
  const double p = precision(c), r = recall(c);
  return p + r > 0 ? 2 * p * r / (p + r) : 0;
}

double ClassReport::macro_f1() const {
  double sum = 0;
  for (std::size_t c = 0; c < labels.size(); ++c) sum += f1(c);
  return labels.empty() ? 0 : sum / labels.size();
}

std::string ClassReport::table() const {
  std::ostringstream os;
  char line[160];
  std::snprintf(line, sizeof line, "%-12s %9s %9s %9s %9s\n", "class", "precision", "recall", "F1",
                "support");
  os << line;
  for (std::size_t c = 0; c < labels.size(); ++c) {
    std::snprintf(line, sizeof line, "%-12s %8.2f%% %8.2f%% %8.2f%% %9zu\n", labels[c].c_str(),
                  100 * precision(c), 100 * recall(c), 100 * f1(c), support(c));
    os << line;
  }
  std::snprintf(line, sizeof line, "%-12s %29.2f%% %9zu\n", "macro F1", 100 * macro_f1(), total());
  os << line;
  return os.str();
}

std::string ClassReport::confusion_text() const {
  std::size_t width = 6;
  for (const auto& l : labels) width = std::max(width, l.size() + 1);
  std::ostringstream os;
  os << "confusion matrix (rows: gold, columns: predicted)\n" << std::string(width, ' ');
  for (const auto& l : labels) os << std::string(width - l.size(), ' ') << l;
  os << '\n';
  for (std::size_t g = 0; g < labels.size(); ++g) {
    os << labels[g] << std::string(width - labels[g].size(), ' ');
    for (std::size_t n : confusion[g]) {
      const std::string v = std::to_string(n);
      os << std::string(width - std::min(width, v.size()), ' ') << v;
    }
    os << '\n';
  }
  return os.str();
}

nlohmann::json ClassReport::json() const {
  nlohmann::json classes = nlohmann::json::object();
  for (std::size_t c = 0; c < labels.size(); ++c) {
    classes[labels[c]] = {
        {"precision", precision(c)}, {"recall", recall(c)}, {"f1", f1(c)}, {"support", support(c)}};
  }
  return {{"accuracy", accuracy()}, {"macro_f1", macro_f1()}, {"total", total()},
          {"labels", labels},       {"classes", classes},     {"confusion", confusion}};
}

void print_report(const ClassReport& report, const EvalChoice& eval, const std::string& header,
                  nlohmann::json extra) {
  if (eval.json) {
    nlohmann::json j = report.json();
    j["file"] = eval.file;
    j.update(extra);
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s\n\n%s\n%s", header.c_str(), report.table().c_str(),
                report.confusion_text().c_str());
  }
  if (!eval.confusion_svg.empty())
    report.write_confusion_svg(eval.confusion_svg,
                               "confusion on " + eval.file +
                                   ": gold (rows) against predicted (columns), share of each row");
}

void ClassReport::write_confusion_svg(const std::string& path, const std::string& title) const {
  std::vector<std::vector<double>> share(labels.size(), std::vector<double>(labels.size(), 0.0));
  for (std::size_t g = 0; g < labels.size(); ++g) {
    const std::size_t gold = support(g);
    for (std::size_t p = 0; p < labels.size(); ++p)
      share[g][p] = gold ? double(confusion[g][p]) / gold : 0;
  }
  tg::models::write_heatmap_svg(path, labels, labels, share, title);
}

}  // namespace examples

// What the example programs share: the training loop (progress, dev evaluation, best model,
// Ctrl-C checkpoints and --resume), SVG pictures, and model files that carry their settings.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

namespace examples {

// ---- settings stored in model files -------------------------------------------------------

using Settings = std::map<std::string, std::string>;  // key=value lines in a model file
std::string settings_to_text(const Settings& s);
Settings settings_from_text(const std::string& text, const std::string& where);
std::string get(const Settings& s, const std::string& key, const std::string& where);

// The encoder settings that every model's options struct has, for its model file.
template <class Options>
Settings encoder_settings(const std::string& kind, const Options& o) {
  return {{"kind", kind},
          {"d_model", std::to_string(o.d_model)},
          {"heads", std::to_string(o.heads)},
          {"ff", std::to_string(o.ff)},
          {"layers", std::to_string(o.layers)},
          {"positions", tg::nn::position_scheme_name(o.positions)},
          {"relative_k", std::to_string(o.relative_k)},
          {"max_len", std::to_string(o.max_len)}};
}

// A model file: the parameters under "param/", plus named text entries (vocabularies, and
// "settings" with a "kind" that says which program's model it is).
void save_model_file(const std::string& path, const tg::nn::Module& model,
                     const std::map<std::string, std::string>& texts);

class ModelFile {
 public:
  // Reads the file and checks that its settings say kind=`kind`.
  ModelFile(const std::string& path, const std::string& kind);
  std::string text(const std::string& name) const;  // throws naming the file if missing
  const Settings& settings() const { return settings_; }
  std::size_t number(const std::string& key) const;  // a setting as a number
  // Settings that files written by older versions may lack: `fallback` when missing.
  std::string get_or(const std::string& key, const std::string& fallback) const;
  std::size_t number_or(const std::string& key, std::size_t fallback) const;
  void load_parameters(tg::nn::Module& model) const;

 private:
  std::string path_;
  tg::nn::NpzEntries entries_;
  Settings settings_;
};

// ---- command lines -------------------------------------------------------------------------

// Number checks with plain messages: "--lr: must be greater than 0, got -1".
extern const CLI::Validator positive, non_negative;
extern const CLI::Validator buckets;      // hashed-feature tables: 0 (off) or at least 2
extern const CLI::Validator odd_or_zero;  // convolution widths: 0 (none) or odd

// ---- the training loop --------------------------------------------------------------------

struct EpochRecord {
  std::size_t epoch = 0;
  double train_loss = 0, dev_metric = 0, seconds = 0;
};

struct TrainOptions {
  std::size_t epochs = 10;
  double time_limit_minutes = 0;  // 0: no limit
  double lr = 1e-3;
  std::size_t warmup = 200;
  double clip = 1.0;
  std::uint64_t seed = 1;
  std::string out = "model.npz";  // the best model on dev; out + ".ckpt" the training checkpoint
  bool resume = false;
  std::string plot;  // SVG training curve, written after each epoch
  std::string metric_name = "accuracy";
  bool metric_percent = true;
  // > 0: evaluate and save an exponential moving average of the weights with this decay
  // (nn/average.hpp) instead of the last step's weights.
  double average = 0;
  bool detect_anomaly = false;  // check every op for NaN/inf and name the first (slower)  // shown as 100 * metric with a % sign (BLEU: 100 * metric, no sign)
};

// What a program hands to the loop.
struct Task {
  tg::nn::Module* model = nullptr;
  tg::Generator* gen = nullptr;  // the one the model's dropout draws from (saved in checkpoints)
  // The batches of an epoch, as indices into the program's data, in training order; must be a
  // function of the epoch number only (so a resumed epoch sees the same batches).
  std::function<std::vector<std::vector<std::size_t>>(std::size_t epoch)> batches;
  std::function<tg::Tensor(const std::vector<std::size_t>& batch)> loss;
  const std::vector<std::size_t>* lengths = nullptr;  // of every sentence (for tokens/s)
  std::function<double()> evaluate;                       // dev metric, higher is better
  std::function<void(const std::string& path)> save_model;  // the model file (with vocabularies)
};

// The model and data settings every program's `train` takes, with the program's defaults.
struct ModelChoice {
  std::size_t d_model = 128, layers = 2, heads = 4, ff = 512;
  double dropout = 0.2;
  double word_dropout = 0.0;  // in training, a word becomes the unknown word with this probability
  std::string positions;
  std::size_t min_count = 1, batch_tokens = 2000;
};
// Registers --epochs --minutes --d-model --layers --heads --ff --dropout --word-dropout
// --positions --min-count --batch-tokens --lr --seed --out --plot --resume --detect-anomaly.
void add_train_options(CLI::App& cmd, TrainOptions& train, ModelChoice& model);
// Registers predict's --model, --attention-svg and --layer.
void add_predict_options(CLI::App& cmd, std::string& model_path, std::string& attention_svg, std::size_t& layer);
// Registers --bad-lines stop|skip on a command that reads data files: a malformed line stops the
// program (the default) or is skipped with its sentence.
void add_bad_lines_option(CLI::App& cmd, tg::models::BadLines& bad);
// After reading: how many lines were skipped, and the first few reasons (silent when none).
void report_bad_lines(const tg::models::BadLines& bad);
// Word dropout: each real word id becomes Vocab::kUnk with probability p.
void drop_words(tg::Ids& ids, double p, tg::Generator& gen);

// Orders of the data for an ensemble trained side by side (models/ensemble.hpp): the members
// share an epoch's batches but each walks them in its own shuffled order, so they take
// different paths and make different mistakes.  The training loop walks member 0's order
// (Task::batches returns epoch(e)); member(batch, k) is member k's batch at the same step.
class MemberOrders {
 public:
  using Batches = std::vector<std::vector<std::size_t>>;
  // make(epoch): the epoch's batches in member 0's order (a function of the epoch only);
  // member k > 0 walks them shuffled by a generator seeded from (seed, epoch, k).
  MemberOrders(std::function<Batches(std::size_t epoch)> make, std::size_t members, std::uint64_t seed);
  const Batches& epoch(std::size_t e);
  const std::vector<std::size_t>& member(const std::vector<std::size_t>& batch, std::size_t k) const;

 private:
  std::function<Batches(std::size_t)> make_;
  std::size_t members_, epoch_ = SIZE_MAX;
  std::uint64_t seed_;
  Batches batches_;                                 // member 0's order, for epoch_
  std::vector<std::vector<std::size_t>> orders_;    // orders_[k][step]: member k's batch index
  std::map<std::size_t, std::size_t> step_;         // a batch (by its first example) -> step
};

// Trains with AdamW (linear warm-up, then cosine decay over the planned epochs); returns the
// history.  Ctrl-C or SIGTERM saves a checkpoint and stops cleanly; TrainOptions::resume
// continues from it exactly.
std::vector<EpochRecord> train(Task& task, const TrainOptions& options);

// ---- pictures (SVG, opens in any browser) --------------------------------------------------

void write_curve_svg(const std::string& path, const std::vector<EpochRecord>& history,
                     const std::string& metric_name, bool percent = true);
// weights: rows x cols in [0, 1]; labels along both sides.
void write_heatmap_svg(const std::string& path, const std::vector<std::string>& rows,
                       const std::vector<std::string>& cols, const std::vector<std::vector<double>>& weights,
                       const std::string& title);

// Self-attention of a single sentence: layer `layer` of `weights` (one (1, H, T, T) tensor per
// layer), averaged over heads.  Throws if there is no such layer.
void write_attention_svg(const std::string& path, const std::vector<tg::Tensor>& weights,
                         const std::vector<std::string>& words, std::size_t layer);

// Lines from standard input, or the arguments joined, as sentences.
std::vector<std::string> input_sentences(const std::vector<std::string>& args);

}  // namespace examples

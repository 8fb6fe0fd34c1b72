#include "common.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <optional>
#include <sstream>

namespace examples {

// ---- command lines -------------------------------------------------------------------------

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

const CLI::Validator positive = number_check("POSITIVE", [](double v) { return v > 0; }, "must be greater than 0");
const CLI::Validator non_negative = number_check("NON-NEGATIVE", [](double v) { return v >= 0; }, "must be 0 or more");
const CLI::Validator buckets = number_check("BUCKETS", [](double v) { return v == 0 || v >= 2; },
                                            "must be 0 (off) or at least 2 (bucket 0 is padding)");
const CLI::Validator odd_or_zero = number_check("WIDTH", [](double v) { return v == 0 || std::fmod(v, 2) == 1; },
                                                "must be 0 (none) or odd, so that the window is centred");

// ---- settings -----------------------------------------------------------------------------

std::string settings_to_text(const Settings& s) {
  std::string out;
  for (const auto& [k, v] : s) out += k + "=" + v + "\n";
  return out;
}

Settings settings_from_text(const std::string& text, const std::string& where) {
  Settings s;
  std::istringstream in(text);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw std::runtime_error(where + ": setting line " + std::to_string(n) + " has no '='");
    s[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return s;
}

std::string get(const Settings& s, const std::string& key, const std::string& where) {
  auto it = s.find(key);
  if (it == s.end()) throw std::runtime_error(where + ": the model file has no setting '" + key + "'");
  return it->second;
}

// ---- model files --------------------------------------------------------------------------

void save_model_file(const std::string& path, const tg::nn::Module& model,
                     const std::map<std::string, std::string>& texts) {
  tg::nn::NpzEntries entries = tg::nn::parameter_entries(model, "param/");
  for (const auto& [name, text] : texts) entries.emplace_back(name, tg::nn::text_to_npy(text));
  tg::nn::write_npz(path, entries);
}

ModelFile::ModelFile(const std::string& path, const std::string& kind)
    : path_(path), entries_(tg::nn::read_npz(path)) {
  settings_ = settings_from_text(text("settings"), path);
  if (get(settings_, "kind", path) != kind)
    throw std::runtime_error(path + ": a " + get(settings_, "kind", path) + " model, not a " + kind + " model");
}

std::string ModelFile::text(const std::string& name) const {
  for (const auto& [n, a] : entries_)
    if (n == name) return tg::nn::npy_to_text(a, path_ + ": '" + name + "'");
  throw std::runtime_error(path_ + ": not a model file of these programs (no '" + name + "')");
}

std::size_t ModelFile::number(const std::string& key) const {
  const std::string v = get(settings_, key, path_);
  try {
    return std::stoul(v);
  } catch (const std::exception&) {
    throw std::runtime_error(path_ + ": setting '" + key + "' is '" + v + "', not a number");
  }
}

std::string ModelFile::get_or(const std::string& key, const std::string& fallback) const {
  const auto it = settings_.find(key);
  return it == settings_.end() ? fallback : it->second;
}

std::size_t ModelFile::number_or(const std::string& key, std::size_t fallback) const {
  return settings_.count(key) ? number(key) : fallback;
}

void ModelFile::load_parameters(tg::nn::Module& model) const {
  tg::nn::load_parameters(model, entries_, path_, "param/");
}

// ---- command lines ------------------------------------------------------------------------

void add_train_options(CLI::App& cmd, TrainOptions& to, ModelChoice& m) {
  cmd.add_option("--epochs", to.epochs, "epochs at most")->check(positive);
  cmd.add_option("--minutes", to.time_limit_minutes, "training time limit (0: none)")->check(non_negative);
  cmd.add_option("--d-model", m.d_model, "model width")->check(positive);
  cmd.add_option("--layers", m.layers, "encoder layers")->check(positive);
  cmd.add_option("--heads", m.heads, "attention heads")->check(positive);
  cmd.add_option("--ff", m.ff, "feed-forward width")->check(positive);
  cmd.add_option("--dropout", m.dropout, "dropout")->check(CLI::Range(0.0, 0.9));
  cmd.add_option("--word-dropout", m.word_dropout, "in training, replace a word by the unknown word with this probability")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--positions", m.positions, "relative, sinusoidal, learned, mlp, fourier or none");
  cmd.add_option("--min-count", m.min_count, "words seen fewer times are unknown")->check(positive);
  cmd.add_option("--batch-tokens", m.batch_tokens, "tokens per batch (padded)")->check(positive);
  cmd.add_option("--lr", to.lr, "peak learning rate")->check(positive);
  cmd.add_option("--average", to.average, "evaluate and save a moving average of the weights with this decay (0: off)")
      ->check(CLI::Range(0.0, 0.99999));
  cmd.add_option("--seed", to.seed, "random seed");
  cmd.add_option("--out", to.out, "the best model on dev");
  cmd.add_option("--plot", to.plot, "training-curve SVG ('' for none)");
  cmd.add_flag("--resume", to.resume, "continue from OUT.ckpt");
  cmd.add_flag("--detect-anomaly", to.detect_anomaly, "check every op for NaN or infinity and stop at the first (slower)");
}

void add_predict_options(CLI::App& cmd, std::string& model_path, std::string& attention_svg, std::size_t& layer) {
  cmd.add_option("--model", model_path, "model file")->check(CLI::ExistingFile);
  cmd.add_option("--attention-svg", attention_svg, "write the first sentence's self-attention as an SVG heatmap");
  cmd.add_option("--layer", layer, "which layer's attention to draw");
}

void add_bad_lines_option(CLI::App& cmd, tg::models::BadLines& bad) {
  cmd.add_option_function<std::string>("--bad-lines", [&bad](const std::string& v) { bad.skip = v == "skip"; },
                                        "malformed data lines: stop (default) or skip them with their sentence")
      ->check(CLI::IsMember({"stop", "skip"}));
}

void report_bad_lines(const tg::models::BadLines& bad) {
  if (bad.skipped == 0) return;
  std::printf("skipped %zu malformed line%s with their sentences (--bad-lines skip); the first:\n", bad.skipped,
              bad.skipped == 1 ? "" : "s");
  for (const auto& m : bad.first) std::printf("  %s\n", m.c_str());
}

void drop_words(tg::Ids& ids, double p, tg::Generator& gen) {
  if (p <= 0) return;
  const auto threshold = static_cast<std::uint64_t>(p * 4294967296.0);
  for (auto& id : ids)
    if (id != tg::models::Vocab::kPad && (gen.next_u64() >> 32) < threshold) id = tg::models::Vocab::kUnk;
}

MemberOrders::MemberOrders(std::function<Batches(std::size_t)> make, std::size_t members, std::uint64_t seed)
    : make_(std::move(make)), members_(members), seed_(seed) {}

const MemberOrders::Batches& MemberOrders::epoch(std::size_t e) {
  if (e != epoch_) {
    batches_ = make_(e);
    orders_.assign(members_, {});
    for (std::size_t k = 0; k < members_; ++k) {
      orders_[k].resize(batches_.size());
      std::iota(orders_[k].begin(), orders_[k].end(), 0);
      if (k == 0) continue;
      tg::Generator shuffle(seed_ * 1000003 + e + 7919 * k);
      for (std::size_t i = orders_[k].size(); i > 1; --i) std::swap(orders_[k][i - 1], orders_[k][shuffle.below(i)]);
    }
    step_.clear();
    for (std::size_t i = 0; i < batches_.size(); ++i)
      if (!batches_[i].empty()) step_[batches_[i][0]] = i;  // each example is in one batch an epoch
    epoch_ = e;
  }
  return batches_;
}

const std::vector<std::size_t>& MemberOrders::member(const std::vector<std::size_t>& batch, std::size_t k) const {
  if (k == 0 || batch.empty()) return batch;
  const auto it = step_.find(batch[0]);
  if (it == step_.end()) throw std::logic_error("MemberOrders: a batch that is not in the current epoch");
  return batches_[orders_.at(k)[it->second]];
}

// ---- progress -----------------------------------------------------------------------------

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

using Clock = std::chrono::steady_clock;

std::string clock_text(double seconds) {
  const auto s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// A progress bar on a terminal; a plain line every 30 s otherwise (logs, CI).
class Progress {
 public:
  Progress(std::size_t epoch, std::size_t epochs, std::size_t steps)
      : epoch_(epoch), epochs_(epochs), steps_(steps), tty_(isatty(fileno(stdout))), start_(Clock::now()), last_(start_) {}

  void update(std::size_t step, double loss, std::size_t tokens) {
    tokens_ += tokens;
    const auto now = Clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (since < (tty_ ? 0.2 : 30.0) && step + 1 < steps_) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double eta = elapsed / (step + 1) * (steps_ - step - 1);
    const double rate = tokens_ / std::max(elapsed, 1e-9);
    if (tty_) {
      const int width = 24, filled = static_cast<int>(width * (step + 1) / std::max<std::size_t>(steps_, 1));
      std::printf("\r epoch %zu/%zu [%s%s] %zu/%zu  loss %.4f  %.0f tok/s  ETA %s   ", epoch_, epochs_,
                  std::string(filled, '=').c_str(), std::string(width - filled, ' ').c_str(), step + 1, steps_, loss,
                  rate, clock_text(eta).c_str());
    } else {
      std::printf("epoch %zu/%zu step %zu/%zu loss %.4f %.0f tok/s ETA %s\n", epoch_, epochs_, step + 1, steps_,
                  loss, rate, clock_text(eta).c_str());
    }
    std::fflush(stdout);
  }

  void finish() {
    if (tty_) std::printf("\n");
  }

 private:
  std::size_t epoch_, epochs_, steps_, tokens_ = 0;
  bool tty_;
  Clock::time_point start_, last_;
};

// The loop's own state, saved in checkpoints beside the model and optimizer.
struct LoopState {
  std::size_t epoch = 0, step_in_epoch = 0;
  double best = -1, seconds = 0;
  std::vector<EpochRecord> history;

  std::string to_text() const {
    std::ostringstream os;
    os.precision(17);
    os << epoch << ' ' << step_in_epoch << ' ' << best << ' ' << seconds << '\n';
    for (const auto& r : history) os << r.epoch << ' ' << r.train_loss << ' ' << r.dev_metric << ' ' << r.seconds << '\n';
    return os.str();
  }

  static LoopState from_text(const std::string& text, const std::string& where) {
    LoopState s;
    std::istringstream in(text);
    if (!(in >> s.epoch >> s.step_in_epoch >> s.best >> s.seconds)) throw std::runtime_error(where + ": bad training state");
    for (EpochRecord r; in >> r.epoch >> r.train_loss >> r.dev_metric >> r.seconds;) s.history.push_back(r);
    return s;
  }
};

// Swaps a ParameterAverage's averages into the model for a scope, and back out at its end
// (also when evaluating or saving throws).  Does nothing given nullptr.
class AveragedWeights {
 public:
  explicit AveragedWeights(tg::nn::ParameterAverage* average) : average_(average) {
    if (average_) average_->swap();
  }
  ~AveragedWeights() {
    if (average_) average_->swap();
  }
  AveragedWeights(const AveragedWeights&) = delete;
  AveragedWeights& operator=(const AveragedWeights&) = delete;

 private:
  tg::nn::ParameterAverage* average_;
};

}  // namespace

std::vector<EpochRecord> train(Task& task, const TrainOptions& o) {
  g_stop = 0;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  tg::nn::AdamW opt(task.model->named_parameters(), {.lr = o.lr, .weight_decay = 0.01});
  const std::size_t per_epoch = task.batches(0).size();
  const std::size_t total = std::max<std::size_t>(per_epoch * o.epochs, o.warmup + 1);
  const tg::nn::WarmupCosine schedule(o.lr, o.warmup, total, o.lr * 0.05);
  const std::string checkpoint = o.out + ".ckpt";

  std::optional<tg::nn::ParameterAverage> average;
  if (o.average > 0) average.emplace(task.model->named_parameters(), o.average);
  const std::string average_prefix = "average/";

  LoopState state;
  if (o.resume) {
    tg::nn::NpzEntries extra;
    tg::nn::load_checkpoint(checkpoint, *task.model, opt, *task.gen, &extra);
    const auto it = std::find_if(extra.begin(), extra.end(), [](const auto& e) { return e.first == "loop"; });
    if (it == extra.end()) throw std::runtime_error(checkpoint + ": no training-loop state");
    state = LoopState::from_text(tg::nn::npy_to_text(it->second, checkpoint), checkpoint);
    tg::nn::StateDict averages;
    for (const auto& [name, a] : extra)
      if (name.rfind(average_prefix, 0) == 0)
        averages[name.substr(average_prefix.size())] = tg::nn::npy_to_array(a, checkpoint + ": '" + name + "'");
    if (average.has_value() != !averages.empty())
      throw std::runtime_error(checkpoint + (average ? ": holds no weight averages; resume without --average"
                                                     : ": holds weight averages; resume with the same --average"));
    if (average) average->load_state(averages);
    std::printf("resuming from %s: epoch %zu, step %zu, best dev %s %.4f\n", checkpoint.c_str(), state.epoch + 1,
                state.step_in_epoch, o.metric_name.c_str(), state.best);
  }
  const auto save_checkpoint = [&] {
    tg::nn::NpzEntries extra{{"loop", tg::nn::text_to_npy(state.to_text())}};
    if (average)
      for (const auto& [name, a] : average->state()) extra.emplace_back(average_prefix + name, tg::nn::to_npy(a));
    tg::nn::save_checkpoint(checkpoint, *task.model, opt, *task.gen, opt.steps(), extra);
  };

  const auto start = Clock::now();
  const double seconds_before = state.seconds;
  const auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(Clock::now() - start).count(); };
  const bool limited = o.time_limit_minutes > 0;
  bool out_of_time = false;
  tg::Tape tape;
  std::optional<tg::DetectAnomaly> detect_anomaly;  // an AnomalyError stops training, nothing is saved
  if (o.detect_anomaly) detect_anomaly.emplace();
  while (state.epoch < o.epochs && !out_of_time) {
    const auto batches = task.batches(state.epoch);
    Progress progress(state.epoch + 1, o.epochs, batches.size());
    task.model->train();
    double loss_sum = 0;
    std::size_t loss_count = 0;
    for (std::size_t i = state.step_in_epoch; i < batches.size(); ++i) {
      if (g_stop) {
        progress.finish();
        state.step_in_epoch = i;
        state.seconds = elapsed();
        save_checkpoint();
        std::printf("interrupted: saved %s; continue with --resume\n", checkpoint.c_str());
        return state.history;
      }
      if (limited && elapsed() > o.time_limit_minutes * 60) {
        out_of_time = true;
        break;
      }
      opt.set_lr(schedule.lr(opt.steps() + 1));
      tape.clear();
      double loss = 0;
      {
        tg::TapeGuard recording(tape);
        tg::Tensor l = task.loss(batches[i]);
        l.backward();
        loss = l.item();
      }
      if (!std::isfinite(loss))
        throw std::runtime_error("the training loss is " + std::to_string(loss) + " at step " + std::to_string(opt.steps() + 1) +
                                 "; stopped without saving over the last good model" +
                                 (o.detect_anomaly ? "" : " (rerun with --detect-anomaly to find the op that made it)"));
      if (o.clip > 0) tg::nn::clip_grad_norm(task.model->parameters(), o.clip);
      opt.step();
      opt.zero_grad();
      if (average) average->update();
      loss_sum += loss;
      ++loss_count;
      std::size_t tokens = 0;
      for (std::size_t s : batches[i]) tokens += (*task.lengths)[s];
      progress.update(i, loss_sum / loss_count, tokens);
    }
    progress.finish();
    task.model->eval();
    double metric;
    bool best;
    {
      AveragedWeights averaged(average ? &*average : nullptr);  // evaluate (and save) the averages
      tg::NoGradGuard no_grad;
      metric = task.evaluate();
      state.history.push_back({state.epoch + 1, loss_count ? loss_sum / loss_count : 0.0, metric, elapsed()});
      best = metric > state.best;
      std::printf("epoch %zu: train loss %.4f, dev %s %.2f%s%s  [%s]\n", state.epoch + 1,
                  state.history.back().train_loss, o.metric_name.c_str(), 100 * metric, o.metric_percent ? "%" : "",
                  best ? (", best so far: saved " + o.out).c_str() : "", clock_text(elapsed()).c_str());
      if (best) {
        state.best = metric;
        task.save_model(o.out);
      }
    }  // back to the weights being trained
    if (!o.plot.empty()) write_curve_svg(o.plot, state.history, o.metric_name, o.metric_percent);
    ++state.epoch;
    state.step_in_epoch = 0;
    state.seconds = elapsed();
    save_checkpoint();
  }
  if (out_of_time) std::printf("time limit of %.1f minutes reached\n", o.time_limit_minutes);
  return state.history;
}

// ---- SVG ----------------------------------------------------------------------------------

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

}  // namespace

void write_curve_svg(const std::string& path, const std::vector<EpochRecord>& history, const std::string& metric_name,
                     bool percent) {
  const double W = 640, H = 360, left = 60, right = 60, top = 40, bottom = 50;
  const double pw = W - left - right, ph = H - top - bottom;
  double max_loss = 1e-9, min_metric = 1, max_metric = 0;
  for (const auto& r : history) {
    max_loss = std::max(max_loss, r.train_loss);
    min_metric = std::min(min_metric, r.dev_metric);
    max_metric = std::max(max_metric, r.dev_metric);
  }
  if (max_metric - min_metric < 0.01) min_metric = std::max(0.0, max_metric - 0.01);
  const std::size_t n = std::max<std::size_t>(history.size(), 2);
  const auto x = [&](std::size_t i) { return left + pw * i / (n - 1); };
  const auto y_loss = [&](double v) { return top + ph * (1 - v / max_loss); };
  const auto y_metric = [&](double v) { return top + ph * (1 - (v - min_metric) / (max_metric - min_metric)); };
  std::ostringstream os;
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='12'>\n"
     << "<rect width='100%' height='100%' fill='white'/>\n"
     << "<text x='" << W / 2 << "' y='22' text-anchor='middle' font-size='15'>training loss and dev " << escape(metric_name) << " per epoch</text>\n"
     << "<rect x='" << left << "' y='" << top << "' width='" << pw << "' height='" << ph << "' fill='none' stroke='#999'/>\n";
  for (int k = 0; k <= 4; ++k) {
    const double f = k / 4.0;
    os << "<text x='" << left - 6 << "' y='" << top + ph * (1 - f) + 4 << "' text-anchor='end' fill='#1f77b4'>" << std::setprecision(3) << max_loss * f << "</text>\n"
       << "<text x='" << W - right + 6 << "' y='" << top + ph * (1 - f) + 4 << "' fill='#d62728'>" << std::setprecision(4) << 100 * (min_metric + (max_metric - min_metric) * f) << (percent ? "%" : "") << "</text>\n";
  }
  for (std::size_t i = 0; i < history.size(); ++i)
    os << "<text x='" << x(i) << "' y='" << H - bottom + 16 << "' text-anchor='middle'>" << history[i].epoch << "</text>\n";
  os << "<text x='" << W / 2 << "' y='" << H - 12 << "' text-anchor='middle'>epoch</text>\n";
  const auto line = [&](auto y, auto value, const char* color) {
    os << "<polyline fill='none' stroke='" << color << "' stroke-width='2' points='";
    for (std::size_t i = 0; i < history.size(); ++i) os << x(i) << "," << y(value(history[i])) << " ";
    os << "'/>\n";
    for (std::size_t i = 0; i < history.size(); ++i)
      os << "<circle cx='" << x(i) << "' cy='" << y(value(history[i])) << "' r='3' fill='" << color << "'/>\n";
  };
  line(y_loss, [](const EpochRecord& r) { return r.train_loss; }, "#1f77b4");
  line(y_metric, [](const EpochRecord& r) { return r.dev_metric; }, "#d62728");
  os << "<text x='" << left + 8 << "' y='" << top + 16 << "' fill='#1f77b4'>train loss (left)</text>\n"
     << "<text x='" << left + 8 << "' y='" << top + 32 << "' fill='#d62728'>dev " << escape(metric_name) << " (right)</text>\n</svg>\n";
  std::ofstream(path) << os.str();
}

void write_heatmap_svg(const std::string& path, const std::vector<std::string>& rows, const std::vector<std::string>& cols,
                       const std::vector<std::vector<double>>& weights, const std::string& title) {
  const double cell = 28, left = 120, top = 120;
  const double W = std::max(left + cell * cols.size() + 20, 20 + 8.0 * title.size());  // room for the title
  const double H = top + cell * rows.size() + 20;
  std::ostringstream os;
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='12'>\n"
     << "<rect width='100%' height='100%' fill='white'/>\n"
     << "<text x='10' y='20' font-size='14'>" << escape(title) << "</text>\n";
  for (std::size_t j = 0; j < cols.size(); ++j)
    os << "<text transform='translate(" << left + cell * j + cell / 2 + 4 << "," << top - 6 << ") rotate(-60)'>" << escape(cols[j]) << "</text>\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    // Shade relative to the row's largest weight, so that spread-out rows stay visible.
    const double row_max = std::max(1e-12, *std::max_element(weights[i].begin(), weights[i].end()));
    os << "<text x='" << left - 6 << "' y='" << top + cell * i + cell / 2 + 4 << "' text-anchor='end'>" << escape(rows[i]) << "</text>\n";
    for (std::size_t j = 0; j < cols.size(); ++j)
      os << "<rect x='" << left + cell * j << "' y='" << top + cell * i << "' width='" << cell << "' height='" << cell
         << "' fill='#08306b' fill-opacity='" << std::clamp(weights[i][j] / row_max, 0.0, 1.0) << "' stroke='#eee'><title>"
         << escape(rows[i]) << " -> " << escape(cols[j]) << ": " << weights[i][j] << "</title></rect>\n";
  }
  os << "</svg>\n";
  std::ofstream(path) << os.str();
}

void write_attention_svg(const std::string& path, const std::vector<tg::Tensor>& layers,
                         const std::vector<std::string>& words, std::size_t layer) {
  if (layer >= layers.size())
    throw std::runtime_error("--layer " + std::to_string(layer) + ": the model has " + std::to_string(layers.size()) +
                             " layers (0 to " + std::to_string(layers.size() - 1) + ")");
  const tg::Tensor& weights = layers[layer];
  const std::size_t H = weights.shape()[1], T = weights.shape()[2];
  std::vector<std::vector<double>> avg(T, std::vector<double>(T, 0.0));
  const auto& w = weights.data<float>();
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < T; ++j) avg[i][j] += w(0, h, i, j) / H;
  write_heatmap_svg(path, words, words, avg,
                    "self-attention, layer " + std::to_string(layer) +
                        ", mean over heads; rows attend to columns, each row shaded to its maximum");
  std::printf("wrote %s\n", path.c_str());
}

std::vector<std::string> input_sentences(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  if (!args.empty()) {
    std::string joined;
    for (const auto& a : args) joined += (joined.empty() ? "" : " ") + a;
    out.push_back(joined);
    return out;
  }
  for (std::string line; std::getline(std::cin, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

}  // namespace examples

// Which positions let a language model read texts longer than the ones it trained on (the
// question ALiBi was made for, Press et al. 2022): tapegrad-lm's model on Tiny Shakespeare, every
// scheme trained with the same budget at one context, then scored on the validation text at
// longer and longer contexts, in windows that do not overlap.  The three best at the longest
// context are scored again with sliding windows, and schemes that end within 0.02 of another get
// a second seed, so that a ranking is not one seed's luck.  Prints a Markdown table and draws
// the loss against the context.
//
//   build/examples/lm_extrapolation --data data/tinyshakespeare [--context 128] [--steps 1000]
//       [--contexts 128 256 512 1024 2048] [--schemes none sinusoidal ...]
//       [--svg docs/lm-extrapolation.svg]
//
// Every scheme gets tapegrad-lm's model and recipe (models::language_model_recipe), the same
// seed, batches and steps; only the positions change.  A learned table has no rows past its
// context, so it is scored there as "cannot read".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../programs/cli.hpp"

using namespace tg;
namespace fs = std::filesystem;

namespace {

struct Study {
  std::vector<std::int64_t> train, valid;
  models::CharVocab vocab;
  std::size_t context = 128, steps = 1000, eval_every = 250;
  std::vector<std::size_t> contexts;  // ascending
  std::string out_dir;
  bool reuse = false;  // score a model already in out_dir instead of training it again
};

struct Run {
  // Nats per character at each of Study::contexts; none where the positions cannot read it.
  std::vector<std::optional<double>> loss;
  double seconds = 0;      // training
  std::string model_file;  // the best epoch's model, the one scored
};

// A scheme name of --positions, or "kernelized": kernelized attention with its relative bias.
models::LanguageModelOptions options_for(const std::string& scheme, const Study& s) {
  models::LanguageModelOptions o;
  if (scheme == "kernelized") {
    o.attention = nn::AttentionKind::kernelized;
    o.positions = nn::PositionScheme::relative;
  } else {
    o.positions = enum_from_name<nn::PositionScheme>(scheme);
  }
  o.context = o.max_len = s.context;
  return o;
}

std::vector<std::optional<double>> score(const models::LanguageModelPipeline& lm, const Study& s,
                                         std::size_t slide) {
  std::vector<std::optional<double>> out;
  for (std::size_t c : s.contexts) {
    if (c > lm.model().longest()) {
      out.emplace_back();
      continue;
    }
    const std::size_t stride = slide ? std::max<std::size_t>(c / slide, 1) : 0;
    out.emplace_back(lm.evaluate(s.valid, {.context = c, .stride = stride}).nats_per_token);
  }
  return out;
}

// One line a scheme as soon as it is scored, so that a study cut short keeps what it measured.
void print_scores(const std::string& scheme, std::uint64_t seed, const Study& s,
                  const std::vector<std::optional<double>>& loss) {
  std::printf("%s, seed %llu:", scheme.c_str(), static_cast<unsigned long long>(seed));
  for (std::size_t c = 0; c < s.contexts.size(); ++c)
    if (loss[c]) std::printf(" %zu: %.4f", s.contexts[c], *loss[c]);
    else std::printf(" %zu: cannot read", s.contexts[c]);
  std::printf("\n");
  std::fflush(stdout);
}

// Trains `scheme` with `seed` (or, with --reuse, takes the model an earlier run saved), then
// scores the best epoch's model (the one the loop saved) in windows that do not overlap.
Run train_and_score(const std::string& scheme, std::uint64_t seed, const Study& s) {
  nn::TrainOptions to = models::language_model_recipe();
  to.out = s.out_dir + "/" + scheme + "-seed" + std::to_string(seed) + ".npz";
  Run run;
  run.model_file = to.out;
  if (s.reuse && fs::exists(to.out)) {
    std::printf("\n== %s, seed %llu: scoring %s\n", scheme.c_str(),
                static_cast<unsigned long long>(seed), to.out.c_str());
    run.loss = score(*models::LanguageModelPipeline::load(to.out), s, 0);
    print_scores(scheme, seed, s, run.loss);
    return run;
  }
  fs::remove(to.out);  // a file from an earlier study is not this run's
  models::LanguageModelPipeline lm(s.vocab, options_for(scheme, s), seed);
  const models::WindowBatches batches{
      .context = s.context, .batch = 12, .steps = s.eval_every, .seed = seed};
  to.epochs = s.steps / s.eval_every;
  to.seed = seed;
  std::printf("\n== %s, seed %llu: %zu parameters\n", scheme.c_str(),
              static_cast<unsigned long long>(seed), lm.model().parameter_count());
  nn::Task task =
      models::language_model_task(lm, s.train, s.valid, batches, "lm_extrapolation " + scheme);
  const auto start = std::chrono::steady_clock::now();
  {
    // Ctrl-C stops this scheme's training (after saving its checkpoint); the study goes on with
    // the best epoch so far.
    const examples::StopOnSignals signals;
    task.stop = signals.flag();
    nn::train(task, to);
    task.stop = nullptr;
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.loss = score(*models::LanguageModelPipeline::load(to.out), s, 0);
  print_scores(scheme, seed, s, run.loss);
  return run;
}

// The mean of the seeds' losses, and half their spread after a second seed ("1.6012 ± 0.0040").
std::string cell(const std::vector<Run>& runs, std::size_t at) {
  if (!runs[0].loss[at]) return "cannot read";
  const double a = *runs[0].loss[at];
  char text[64];
  if (runs.size() == 1) {
    std::snprintf(text, sizeof text, "%.4f", a);
  } else {
    const double b = *runs[1].loss[at];
    std::snprintf(text, sizeof text, "%.4f ± %.4f", (a + b) / 2, std::abs(a - b) / 2);
  }
  return text;
}

// The mean over seeds, or NaN where the positions cannot read the context.
double mean_at(const std::vector<Run>& runs, std::size_t at) {
  double sum = 0;
  for (const Run& r : runs) {
    if (!r.loss[at]) return std::numeric_limits<double>::quiet_NaN();
    sum += *r.loss[at];
  }
  return sum / static_cast<double>(runs.size());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "lm_extrapolation: how each scheme of positions scores texts longer than the context a "
      "language model trained at");
  Study s;
  s.contexts = {128, 256, 512, 1024, 2048};
  s.out_dir = "runs/lm-extrapolation";
  std::string data_dir, svg;
  std::size_t threads = 0, slide = 4, best = 3;
  double close = 0.02;
  std::uint64_t seed = 1;
  std::vector<std::string> schemes = {"none",    "sinusoidal", "learned",  "mlp",
                                      "fourier", "cape",       "relative", "rope",
                                      "alibi",   "t5",         "xl",       "kernelized"};
  app.add_option("--data", data_dir, "folder with input.txt (its first 90% trains)")->required();
  app.add_option("--context", s.context, "the context every scheme trains at")
      ->capture_default_str();
  app.add_option("--steps", s.steps, "training steps per scheme (the same budget for each)")
      ->capture_default_str();
  app.add_option("--eval-every", s.eval_every, "steps between validations (divides --steps)")
      ->capture_default_str();
  app.add_option("--contexts", s.contexts, "the contexts to score at")->capture_default_str();
  app.add_option("--schemes", schemes,
                 "--positions names, and kernelized (kernelized attention, its own bias)");
  app.add_option("--slide", slide,
                 "the best schemes' sliding windows advance by context / slide, so each "
                 "character is read after at least context - context / slide others")
      ->capture_default_str();
  app.add_option("--best", best, "how many of the best schemes to score with sliding windows")
      ->capture_default_str();
  app.add_option("--close", close,
                 "schemes whose loss at the longest context lies within this of another's get a "
                 "second seed")
      ->capture_default_str();
  app.add_option("--seed", seed, "the first seed of every scheme")->capture_default_str();
  app.add_option("--threads", threads, "threads (0: all cores)");
  app.add_option("--out-dir", s.out_dir, "where the models go, one per scheme and seed")
      ->capture_default_str();
  app.add_option("--svg", svg, "draw the loss against the context");
  app.add_flag("--reuse", s.reuse,
               "score the models already in --out-dir instead of training them again (to finish a "
               "study that was stopped; their training time then reads 0)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  try {
    if (s.eval_every == 0 || s.steps % s.eval_every != 0)
      throw std::invalid_argument("--steps (" + std::to_string(s.steps) +
                                  ") must be a multiple of --eval-every (" +
                                  std::to_string(s.eval_every) + ")");
    if (slide == 0) throw std::invalid_argument("--slide must be at least 1");
    std::sort(s.contexts.begin(), s.contexts.end());
    s.contexts.erase(std::unique(s.contexts.begin(), s.contexts.end()), s.contexts.end());
    if (s.contexts.empty() || s.contexts.front() == 0)
      throw std::invalid_argument("--contexts must be positive");
    std::vector<std::string> distinct;
    for (const std::string& scheme : schemes) {
      options_for(scheme, s);  // an unknown name fails now, not after hours of training
      if (std::find(distinct.begin(), distinct.end(), scheme) == distinct.end())
        distinct.push_back(scheme);
    }
    schemes = distinct;
    const std::string path = data_dir + "/input.txt";
    const auto [train_text, valid_text] =
        models::split_text(models::read_text(path), models::kTrainShare);
    s.vocab = models::CharVocab::build(train_text);
    fs::create_directories(s.out_dir);
    s.train = s.vocab.encode(train_text, path + " (its first 90%)");
    s.valid = s.vocab.encode(valid_text, path + " (its last 10%)");
    std::printf(
        "%zu training and %zu validation characters; every scheme trains %zu steps of 12 windows "
        "of %zu characters\n",
        s.train.size(), s.valid.size(), s.steps, s.context);

    std::map<std::string, std::vector<Run>> runs;
    for (const std::string& scheme : schemes)
      runs[scheme].push_back(train_and_score(scheme, seed, s));

    // A second seed where the first does not separate two schemes at the longest context.
    const std::size_t last = s.contexts.size() - 1;
    for (const std::string& a : schemes)
      for (const std::string& b : schemes) {
        const auto& la = runs[a][0].loss[last];
        const auto& lb = runs[b][0].loss[last];
        if (a != b && la && lb && std::abs(*la - *lb) <= close && runs[a].size() == 1)
          runs[a].push_back(train_and_score(a, seed + 1, s));
      }

    // Sliding windows for the best at the longest context, their first seed's model.
    std::vector<std::string> ranked;
    for (const std::string& scheme : schemes)
      if (runs[scheme][0].loss[last]) ranked.push_back(scheme);
    std::sort(ranked.begin(), ranked.end(), [&](const std::string& a, const std::string& b) {
      return mean_at(runs[a], last) < mean_at(runs[b], last);
    });
    ranked.resize(std::min(best, ranked.size()));
    std::map<std::string, std::vector<std::optional<double>>> sliding;
    for (const std::string& scheme : ranked) {
      sliding[scheme] =
          score(*models::LanguageModelPipeline::load(runs[scheme][0].model_file), s, slide);
      print_scores(scheme + " (sliding)", seed, s, sliding[scheme]);
    }

    std::printf(
        "\nValidation loss (nats per character) by context, trained at %zu for %zu steps; "
        "windows that do not overlap (mean ± half the spread where two seeds ran):\n\n| scheme |",
        s.context, s.steps);
    for (std::size_t c : s.contexts) std::printf(" %zu |", c);
    std::printf(" training time |\n|---|");
    for (std::size_t c = 0; c <= s.contexts.size(); ++c) std::printf("---:|");
    std::printf("\n");
    for (const std::string& scheme : schemes) {
      std::printf("| %s |", scheme.c_str());
      for (std::size_t c = 0; c < s.contexts.size(); ++c)
        std::printf(" %s |", cell(runs[scheme], c).c_str());
      std::printf(" %.0f s |\n", runs[scheme][0].seconds);
    }
    std::printf("\nThe best %zu with sliding windows (each advancing context / %zu):\n\n| scheme |",
                ranked.size(), slide);
    for (std::size_t c : s.contexts) std::printf(" %zu |", c);
    std::printf("\n|---|");
    for (std::size_t c = 0; c < s.contexts.size(); ++c) std::printf("---:|");
    std::printf("\n");
    for (const std::string& scheme : ranked) {
      std::printf("| %s |", scheme.c_str());
      for (const auto& l : sliding[scheme]) std::printf(" %.4f |", *l);
      std::printf("\n");
    }
    if (!svg.empty()) {
      std::vector<std::string> x;
      for (std::size_t c : s.contexts) x.push_back(std::to_string(c));
      std::vector<std::vector<double>> y;
      for (const std::string& scheme : schemes) {
        y.emplace_back();
        for (std::size_t c = 0; c < s.contexts.size(); ++c)
          y.back().push_back(mean_at(runs[scheme], c));
      }
      models::write_lines_svg(svg, x, schemes, y,
                              "validation loss (nats per character) by context, trained at " +
                                  std::to_string(s.context));
      std::printf("\ndrew %s\n", svg.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lm_extrapolation: %s\n", e.what());
    return 1;
  }
  return 0;
}

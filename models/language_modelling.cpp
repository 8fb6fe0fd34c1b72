#include "language_modelling.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

#include "../autograd/ops.hpp"
#include "../autograd/tape.hpp"
#include "../nn/training/model_file.hpp"

namespace tg::models {
namespace {

// Rows of `ids` as a batch: row b holds ids[starts[b] + shift .. starts[b] + shift + T - 1]
// (the caller checks that they are inside the text).
Ids window_rows(const std::vector<std::int64_t>& ids, const std::vector<std::size_t>& starts,
                std::size_t T, std::size_t shift) {
  Ids out = Ids::from_shape({starts.size(), T});
  for (std::size_t b = 0; b < starts.size(); ++b)
    std::copy_n(ids.begin() + static_cast<std::ptrdiff_t>(starts[b] + shift), T, &out(b, 0));
  return out;
}

// The windows evaluate() reads: each one's start, and how many of its last targets it scores.
struct Window {
  std::size_t start = 0, scored = 0;
};

// Windows of L inputs over a text of n tokens (n - 1 targets), `stride` apart (see EvalOptions).
std::vector<Window> eval_windows(std::size_t n, std::size_t L, std::size_t stride) {
  std::vector<Window> windows;
  const std::size_t targets = n - 1;
  if (targets <= L) return {{0, targets}};
  for (std::size_t end = L, scored_to = 0;; end = std::min(end + stride, targets)) {
    windows.push_back({end - L, end - scored_to});  // targets scored_to + 1 .. end
    scored_to = end;
    if (end == targets) break;
  }
  return windows;
}

}  // namespace

LanguageModelPipeline::LanguageModelPipeline(TextVocab vocab, LanguageModelOptions options,
                                             std::uint64_t seed)
    : gen_(seed), vocab_(std::move(vocab)) {
  options.vocab = vocab_.size();
  model_ = std::make_unique<LanguageModel>(options, gen_);
}

std::unique_ptr<LanguageModelPipeline> LanguageModelPipeline::load(const std::string& path) {
  const nn::ModelFile file = nn::ModelFile::read(path, kKind);
  LanguageModelOptions options;
  file.get_options(options);
  auto p = std::make_unique<LanguageModelPipeline>(
      TextVocab::from_saved(file.text("vocab/characters"),
                            file.has_text("vocab/pieces") ? file.text("vocab/pieces") : "", path),
      options, 0);
  if (p->model_->options().vocab != options.vocab)
    throw std::runtime_error(path + ": the model has " + std::to_string(options.vocab) +
                             " tokens, its vocabulary " + std::to_string(p->vocab_.size()));
  file.load_for_inference(*p->model_);
  return p;
}

void LanguageModelPipeline::save(const std::string& path, const std::string& command) const {
  nn::ModelFile file(kKind);
  file.set_text("vocab/characters", vocab_.characters_text());
  if (vocab_.has_pieces()) {  // a reader of format 2 would take the model for one of characters
    file.set_text("vocab/pieces", vocab_.pieces_bytes());
    file.require_format(3);
  }
  file.set_options(model_->options());
  file.set_command(command);
  file.save(path, *model_);
}

std::vector<std::int64_t> LanguageModelPipeline::encode(const std::u32string& text,
                                                        const std::string& what) const {
  return vocab_.encode(text, what);
}

Tensor LanguageModelPipeline::loss(const std::vector<std::int64_t>& ids,
                                   const std::vector<std::size_t>& starts, std::size_t context) {
  for (std::size_t s : starts)
    if (s + context + 1 > ids.size())
      throw std::invalid_argument(
          "LanguageModelPipeline::loss: the window of " + std::to_string(context + 1) +
          " tokens (context " + std::to_string(context) + " + 1) at " + std::to_string(s) +
          " runs past the text's end (" + std::to_string(ids.size()) + " tokens)");
  return model_->loss(window_rows(ids, starts, context, 0), window_rows(ids, starts, context, 1));
}

Evaluation LanguageModelPipeline::evaluate(const std::vector<std::int64_t>& ids,
                                           const EvalOptions& o) const {
  const std::size_t L = o.context ? o.context : model_->options().context;
  const std::size_t stride = o.stride ? o.stride : L;
  if (ids.size() < 2)
    throw std::invalid_argument("evaluate: the text has " + std::to_string(ids.size()) +
                                " tokens; scoring needs at least 2");
  if (stride > L)
    throw std::invalid_argument("evaluate: the stride " + std::to_string(stride) +
                                " is longer than the context " + std::to_string(L) +
                                " (tokens between windows would not be scored)");
  model_->check_length(L, "evaluate at context " + std::to_string(L));
  const std::vector<Window> windows = eval_windows(ids.size(), L, stride);
  const std::size_t T = std::min(L, ids.size() - 1),
                    per_batch = std::max<std::size_t>(1, o.batch_tokens / T);
  NoGradGuard no_grad;
  nn::EvalMode evaluating(*model_);
  double nats = 0;  // summed in order, so that any batching or thread count gives the same sum
  std::vector<double> logp;
  for (std::size_t first = 0; first < windows.size(); first += per_batch) {
    std::vector<std::size_t> starts;
    for (std::size_t w = first; w < std::min(windows.size(), first + per_batch); ++w)
      starts.push_back(windows[w].start);
    const Tensor logits = model_->forward(window_rows(ids, starts, T, 0)).to(Dtype::f32);
    for (std::size_t b = 0; b < starts.size(); ++b)
      for (std::size_t t = T - windows[first + b].scored; t < T; ++t) {
        log_softmax_row(logits, b * T + t, logp);  // predicts ids[start + t + 1]
        nats -= logp[static_cast<std::size_t>(ids[starts[b] + t + 1])];
      }
  }
  const std::size_t characters = vocab_.characters_in(ids, 1);
  return {.nats_per_token = nats / static_cast<double>(ids.size() - 1),
          .bits_per_char = nats / static_cast<double>(characters) / std::numbers::ln2,
          .tokens = ids.size() - 1,
          .characters = characters,
          .windows = windows.size(),
          .context = L,
          .stride = stride};
}

Generation LanguageModelPipeline::generate(const std::u32string& prompt,
                                           const GenerateOptions& o) const {
  const auto clock = std::chrono::steady_clock::now();
  if (prompt.empty() && !vocab_.characters().contains(U'\n'))
    throw std::invalid_argument(
        "generate: an empty prompt starts from a newline, which this model's vocabulary lacks: "
        "give a prompt");
  std::vector<std::int64_t> text = encode(prompt.empty() ? U"\n" : prompt, "the prompt");
  const std::size_t limit = std::min(model_->longest(),
                                     o.window ? o.window : model_->options().context),
                    keep = std::max<std::size_t>(1, limit / 2);
  NoGradGuard no_grad;
  nn::EvalMode evaluating(*model_);
  Generator gen(o.sampling.seed);
  LanguageModelCache cache;
  std::size_t start = 0;  // the first token the model reads
  std::vector<double> logp;
  Generation out;
  for (std::size_t i = 0; i < o.tokens; ++i) {
    if (text.size() - start > limit) start = text.size() - keep, cache = {};  // read afresh
    // The tokens to run: with the cache, those it does not hold yet; else all the window.
    const std::size_t from = o.cache ? start + cache.length() : start;
    const std::vector<std::int64_t> run(text.begin() + static_cast<std::ptrdiff_t>(from),
                                        text.end());
    const Tensor logits =
        model_->forward(window_rows(run, {0}, run.size(), 0), o.cache ? &cache : nullptr);
    log_softmax_row(logits.to(Dtype::f32), run.size() - 1, logp);
    if (const std::int64_t unknown = vocab_.unknown_id(); unknown >= 0)
      logp[static_cast<std::size_t>(unknown)] = -std::numeric_limits<double>::infinity();
    const auto next = static_cast<std::int64_t>(draw(sampling_distribution(logp, o.sampling), gen));
    text.push_back(next);
    out.text += vocab_.token(next);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - clock).count();
  return out;
}

// ---- training -------------------------------------------------------------------------------

std::vector<std::vector<std::size_t>> random_windows(std::size_t text_length,
                                                     const WindowBatches& w, std::size_t epoch) {
  if (text_length < w.context + 1)
    throw std::invalid_argument("random_windows: a text of " + std::to_string(text_length) +
                                " tokens has no window of context " + std::to_string(w.context) +
                                " + 1 (needs at least " + std::to_string(w.context + 1) + ")");
  Generator gen(w.seed * 1000003 + epoch);
  std::vector<std::vector<std::size_t>> batches(w.steps, std::vector<std::size_t>(w.batch));
  for (auto& batch : batches)
    for (std::size_t& start : batch) start = gen.below(text_length - w.context);
  return batches;
}

nn::TrainOptions language_model_recipe() {
  return {.time_limit_minutes = 0,
          .lr = 1e-3,
          .warmup = 100,
          .lr_floor = 0.1,
          .weight_decay = 0.1,
          .decay_vectors = false,
          .beta2 = 0.99,
          .metric_name = "loss",
          .metric_is_loss = true};
}

nn::Task language_model_task(LanguageModelPipeline& lm, const std::vector<std::int64_t>& train,
                             const std::vector<std::int64_t>& valid, const WindowBatches& w,
                             const std::string& command) {
  lm.model().check_length(w.context, "train at context " + std::to_string(w.context));
  random_windows(train.size(), w, 0);  // checks that the text holds a window
  // The loop counts a window's tokens by its start (for tokens/s): every window has `context`.
  auto tokens = std::make_shared<std::vector<std::size_t>>(train.size(), w.context);
  nn::Task task{.model = &lm.model(), .gen = &lm.gen()};
  task.lengths = tokens.get();
  task.batches = [tokens, w](std::size_t epoch) {
    return random_windows(tokens->size(), w, epoch);
  };
  task.loss = [&lm, &train, w](const std::vector<std::size_t>& starts) {
    return lm.loss(train, starts, w.context);
  };
  task.evaluate = [&lm, &valid, w] {
    return lm.evaluate(valid, {.context = w.context}).nats_per_token;
  };
  task.save_model = [&lm, command](const std::string& path) { lm.save(path, command); };
  return task;
}

}  // namespace tg::models

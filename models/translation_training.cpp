#include "translation_training.hpp"

#include <algorithm>
#include <filesystem>

#include "data/batching.hpp"
#include "data/text.hpp"

namespace tg::models {

void ParallelFiles::in_folder(const std::string& dir, const std::string& source_lang,
                              const std::string& target_lang) {
  const auto in_dir = [&](const std::string& name) {
    return (std::filesystem::path(dir) / name).string();
  };
  if (train_source.empty()) train_source = in_dir("train." + source_lang);
  if (train_target.empty()) train_target = in_dir("train." + target_lang);
  if (dev_source.empty()) dev_source = in_dir("val." + source_lang);
  if (dev_target.empty()) dev_target = in_dir("val." + target_lang);
}

TranslationData TranslationData::read(const ParallelFiles& files, bool lower, BadLines* bad) {
  TranslationData d;
  for (auto& pair : read_parallel(files.train_source, files.train_target, lower, bad)) {
    d.sources.push_back(std::move(pair.source));
    d.targets.push_back(std::move(pair.target));
  }
  auto dev = read_aligned(files.dev_source, files.dev_target);
  d.dev_sources = std::move(dev.sources);
  d.dev_references = std::move(dev.references);
  d.train_source = files.train_source;
  return d;
}

void TranslationData::tokenize(const std::optional<SubwordVocab>& subwords, std::size_t max_len) {
  if (subwords)
    for (std::size_t i = 0; i < sources.size(); ++i)
      sources[i] = subwords->encode(sources[i]), targets[i] = subwords->encode(targets[i]);
  lengths.clear(), tokens.clear();
  for (std::size_t i = 0; i < sources.size(); ++i) {
    lengths.push_back(std::max(sources[i].size(),
                               targets[i].size() + 1));  // the decoder reads <s> and the target
    tokens.push_back(sources[i].size() + targets[i].size() + 1);
    if (lengths[i] + 1 > max_len)
      throw DataError(train_source, i + 1,
                      "the pair has " + std::to_string(lengths[i]) +
                          " tokens, more than the model's max_len " + std::to_string(max_len));
  }
}

double TranslationData::target_tokens(const std::vector<std::size_t>& batch) const {
  double n = 0;
  for (std::size_t i : batch) n += targets[i].size() + 1;
  return n;
}

namespace {

// One SentencePiece model for both languages, trained on the words of both sides.
SubwordVocab train_subwords(const TranslationData& data, std::size_t pieces) {
  std::vector<Words> both = data.sources;
  both.insert(both.end(), data.targets.begin(), data.targets.end());
  return SubwordVocab::train(both, pieces);
}

}  // namespace

std::unique_ptr<TranslationPipeline> prepare_translator(
    TranslationData& data, std::unique_ptr<TranslationPipeline> initial,
    const TranslatorRecipe& recipe) {
  if (initial) {
    data.tokenize(initial->subwords(), initial->model().options().max_len);
    return initial;
  }
  std::optional<SubwordVocab> subwords;
  if (recipe.subword_pieces > 0) subwords = train_subwords(data, recipe.subword_pieces);
  data.tokenize(subwords, recipe.options.max_len);
  // Every piece is kept: the subword model chose them by frequency already.
  const std::size_t min_count = subwords ? 1 : recipe.min_count;
  std::vector<std::string> specials = {"<s>", "</s>"};
  if (recipe.options.non_autoregressive) specials.push_back("<mask>");
  return std::make_unique<TranslationPipeline>(
      Vocab::build(data.sources, min_count, false),
      Vocab::build(data.targets, min_count, false, specials), recipe.lower, recipe.options,
      recipe.seed, std::move(subwords));
}

nn::Task translation_task(TranslationPipeline& t, const TranslationData& data,
                          const TranslationObjective& objective, std::size_t batch_tokens,
                          std::uint64_t seed, const std::string& command) {
  nn::Task task;
  task.model = &t.model();
  task.gen = &t.gen();
  task.batches = shuffled_batches(data.lengths, batch_tokens, 256, seed);
  auto step = std::make_shared<std::size_t>(0);  // the loop writes the optimizer's step count here
  task.step = step.get();
  task.loss = [&t, &data, objective, step](const std::vector<std::size_t>& batch) {
    std::vector<const Words*> xs, ys;
    for (std::size_t i : batch) xs.push_back(&data.sources[i]), ys.push_back(&data.targets[i]);
    if (objective.minimum_risk) return t.mrt_loss(xs, ys, objective.mrt);
    const double gold = objective.scheduled_k > 0 ? gold_share(*step, objective.scheduled_k) : 1.0;
    return t.loss(xs, ys, objective.word_dropout, gold);
  };
  // Cross-entropy is a mean over target tokens; minimum risk over sentences (the default weight).
  if (!objective.minimum_risk)
    task.weight = [&data](const std::vector<std::size_t>& batch) {
      return data.target_tokens(batch);
    };
  task.lengths = &data.tokens;
  task.evaluate = [&t, &data] {  // greedy: fast, and close to beam search's ranking of models
    return corpus_bleu(t.translate_lines(data.dev_sources, {.beam = 1}), data.dev_references, true)
               .score /
           100;
  };
  task.save_model = [&t, command](const std::string& path) { t.save(path, command); };
  return task;
}

}  // namespace tg::models

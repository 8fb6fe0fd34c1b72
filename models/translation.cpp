#include "translation.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "../autograd/tape.hpp"
#include "../nn/losses.hpp"
#include "../nn/training/model_file.hpp"
#include "blocks.hpp"
#include "data/text.hpp"

namespace tg::models {

TranslationPipeline::TranslationPipeline(Vocab source, Vocab target, bool lower,
                                         TranslatorOptions options, std::uint64_t seed,
                                         std::optional<SubwordVocab> subwords)
    : gen_(seed),
      source_(std::move(source)),
      target_(std::move(target)),
      lower_(lower),
      subwords_(std::move(subwords)) {
  if (target_.size() <= kEos || target_.word(kBos) != "<s>" || target_.word(kEos) != "</s>")
    throw std::invalid_argument(
        "TranslationPipeline: the target vocabulary must start with <pad> <unk> <s> </s>");
  if (options.non_autoregressive && (target_.size() <= kMask || target_.word(kMask) != "<mask>"))
    throw std::invalid_argument(
        "TranslationPipeline: a non-autoregressive model's target vocabulary must start with "
        "<pad> <unk> <s> </s> <mask>");
  options.src_vocab = source_.size();
  options.tgt_vocab = target_.size();
  model_ = std::make_unique<Translator>(options, gen_);
}

std::unique_ptr<TranslationPipeline> TranslationPipeline::load(const std::string& path) {
  const nn::ModelFile file = nn::ModelFile::read(path, kKind);
  TranslatorOptions options;
  file.get_options(
      options);  // dropout included: it acts only in training (train --init goes on with it)
  Vocab target = Vocab::from_text(file.text("vocab/target"), path);
  if (target.size() <= kEos || target.word(kBos) != "<s>" || target.word(kEos) != "</s>")
    throw std::runtime_error(path +
                             ": the target vocabulary does not start with <pad> <unk> <s> </s>");
  if (options.non_autoregressive && (target.size() <= kMask || target.word(kMask) != "<mask>"))
    throw std::runtime_error(
        path + ": a non-autoregressive model, but its target vocabulary has no <mask> after </s>");
  std::optional<SubwordVocab> subwords;
  if (file.has_text("subwords/model"))
    subwords = SubwordVocab::from_bytes(file.text("subwords/model"), path + ": 'subwords/model'");
  auto p = std::make_unique<TranslationPipeline>(Vocab::from_text(file.text("vocab/source"), path),
                                                 std::move(target), file.option("lowercase", true),
                                                 options, 0, std::move(subwords));
  file.load_for_inference(*p->model_);
  return p;
}

void TranslationPipeline::save(const std::string& path, const std::string& command) const {
  nn::ModelFile file(kKind);
  file.set_text("vocab/source", source_.to_text());
  file.set_text("vocab/target", target_.to_text());
  if (subwords_) file.set_text("subwords/model", subwords_->bytes());
  if (subwords_ || model_->options().non_autoregressive) file.require_format(3);
  file.set_options(model_->options());
  file.set_option("lowercase", lower_);
  file.set_command(command);
  file.save(path, *model_);
}

Words TranslationPipeline::tokenize(const std::string& line) const {
  return tokens_of(models::tokenize(line, lower_));
}

Words TranslationPipeline::tokens_of(const Words& words) const {
  return subwords_ ? subwords_->encode(words) : words;
}

Words TranslationPipeline::words_of(const Words& tokens) const {
  return subwords_ ? SubwordVocab::decode(tokens) : tokens;
}

namespace {

// The ids of sentences in one vocabulary, padded with 0 to the longest (at least 1): (B, T).
Ids ids_of(const std::vector<const Words*>& sentences, const Vocab& vocab) {
  std::size_t T = 1;
  for (const Words* s : sentences) T = std::max(T, s->size());
  Ids ids = xt::zeros<std::int64_t>({sentences.size(), T});
  for (std::size_t b = 0; b < sentences.size(); ++b)
    for (std::size_t j = 0; j < sentences[b]->size(); ++j) ids(b, j) = vocab.id((*sentences[b])[j]);
  return ids;
}

}  // namespace

Ids TranslationPipeline::source_ids(const std::vector<const Words*>& sentences) const {
  return ids_of(sentences, source_);
}

double gold_share(std::size_t step, double k) {
  if (!(k >= 1))
    throw std::invalid_argument("scheduled sampling: k must be >= 1, got " + std::to_string(k));
  return k / (k + std::exp(static_cast<double>(step) / k));
}

Ids mix_inputs(const Ids& tgt_in, const Ids& predicted, double gold_share, Generator& gen) {
  if (tgt_in.shape() != predicted.shape())
    throw std::invalid_argument("mix_inputs: tgt_in and predicted differ in shape");
  Ids mixed = tgt_in;
  const std::size_t B = tgt_in.shape()[0], T = tgt_in.shape()[1];
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 1; t < T; ++t)
      if (tgt_in(b, t) != 0 && gen.uniform() >= gold_share) mixed(b, t) = predicted(b, t - 1);
  return mixed;
}

MaskedTargets mask_targets(const Ids& tgt, std::int64_t mask, Generator& gen) {
  if (tgt.dimension() != 2)
    throw std::invalid_argument("mask_targets: tgt must be (B, T), got " +
                                shape_str(Shape(tgt.shape().begin(), tgt.shape().end())));
  MaskedTargets m{tgt, xt::zeros<std::int64_t>(tgt.shape())};
  for (std::size_t b = 0; b < tgt.shape()[0]; ++b) {
    std::vector<std::size_t> real;
    for (std::size_t t = 0; t < tgt.shape()[1]; ++t)
      if (tgt(b, t) != 0) real.push_back(t);
    if (real.empty()) continue;
    const std::size_t n = 1 + gen.below(real.size());
    for (std::size_t k = 0; k < n; ++k) {  // a partial Fisher-Yates shuffle: n distinct positions
      std::swap(real[k], real[k + gen.below(real.size() - k)]);
      m.gold(b, real[k]) = tgt(b, real[k]);
      m.input(b, real[k]) = mask;
    }
  }
  return m;
}

Tensor TranslationPipeline::loss(const std::vector<const Words*>& sources,
                                 const std::vector<const Words*>& targets, double word_dropout,
                                 double gold_share) {
  Ids src = source_ids(sources);
  if (model_->options().non_autoregressive) {  // the target as it is: no BOS, no EOS
    if (gold_share < 1)
      throw std::invalid_argument("scheduled sampling: needs an autoregressive model");
    const MaskedTargets masked = mask_targets(ids_of(targets, target_), kMask, gen_);
    drop_words(src, word_dropout, gen_);
    return model_->nat_loss(src, masked.input, masked.gold);
  }
  std::size_t T = 0;
  for (const Words* y : targets) T = std::max(T, y->size() + 1);
  Ids tgt_in = xt::zeros<std::int64_t>({targets.size(), T}), tgt_out = tgt_in;
  for (std::size_t b = 0; b < targets.size(); ++b) {
    const Words& y = *targets[b];
    tgt_in(b, 0) = kBos;  // the decoder reads <s> y1 ... yn and predicts y1 ... yn </s>
    for (std::size_t j = 0; j < y.size(); ++j) tgt_in(b, j + 1) = tgt_out(b, j) = target_.id(y[j]);
    tgt_out(b, y.size()) = kEos;
  }
  drop_words(src, word_dropout, gen_);
  if (gold_share < 1) {  // the first pass: the model's own guesses, with the gold prefix
    Ids predicted = Ids::from_shape(tgt_in.shape());
    {
      NoGradGuard no_grad;
      const Tensor guesses =
          model_->decode(tgt_in, model_->encode(src), key_padding_mask(src));  // (B, T, V)
      const auto& logits = guesses.data<float>();
      const std::size_t V = logits.shape()[2];
      for (std::size_t i = 0; i < predicted.size(); ++i) {
        const float* row = logits.data() + i * V;
        predicted.data()[i] = std::max_element(row, row + V) - row;
      }
    }
    tgt_in = mix_inputs(tgt_in, predicted, gold_share, gen_);
  }
  return model_->loss(src, tgt_in, tgt_out);
}

Tensor TranslationPipeline::mrt_loss(const std::vector<const Words*>& sources,
                                     const std::vector<const Words*>& references,
                                     const MrtOptions& options) {
  if (sources.size() != references.size())
    throw std::invalid_argument("mrt_loss: " + std::to_string(sources.size()) + " sources but " +
                                std::to_string(references.size()) + " references");
  if (options.samples == 0)
    throw std::invalid_argument("mrt_loss: needs at least one sample per sentence");
  if (model_->options().non_autoregressive)
    throw std::invalid_argument(
        "mrt_loss: needs an autoregressive model (candidates are sampled token by token)");
  std::vector<std::size_t> kept;  // sentences with words on both sides
  for (std::size_t i = 0; i < sources.size(); ++i)
    if (!sources[i]->empty() && !references[i]->empty()) kept.push_back(i);
  if (kept.empty())
    throw std::invalid_argument("mrt_loss: no sentence of the batch has a source and a reference");

  // The candidates: `samples` draws per sentence, duplicates dropped.
  std::vector<std::vector<std::int64_t>> source_ids, repeated;
  for (std::size_t i : kept) {
    source_ids.emplace_back();
    for (const auto& w : *sources[i]) source_ids.back().push_back(source_.id(w));
    for (std::size_t k = 0; k < options.samples; ++k) repeated.push_back(source_ids.back());
  }
  std::vector<Translation> drawn;
  {
    NoGradGuard no_grad;
    nn::EvalMode evaluating(*model_);
    SamplingOptions sampling = options.sampling;
    sampling.seed = gen_.below(std::uint64_t{1} << 62);
    drawn = sample_search(*model_, repeated, {.bos = kBos, .eos = kEos}, sampling);
  }
  const std::size_t N = kept.size();
  std::vector<std::vector<std::vector<std::int64_t>>> candidates(N);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < options.samples; ++k) {
      const auto& tokens = drawn[n * options.samples + k].tokens;
      if (std::find(candidates[n].begin(), candidates[n].end(), tokens) == candidates[n].end())
        candidates[n].push_back(tokens);
    }
  std::size_t K = 0, S = 0, T = 0;
  for (std::size_t n = 0; n < N; ++n) {
    K = std::max(K, candidates[n].size());
    S = std::max(S, source_ids[n].size());
    for (const auto& c : candidates[n]) T = std::max(T, c.size() + 1);
  }

  // One row per (sentence, candidate slot); an empty slot repeats candidate 0 and is masked.
  Ids src = xt::zeros<std::int64_t>({N * K, S}), tgt_in = xt::zeros<std::int64_t>({N * K, T}),
      tgt_out = tgt_in;
  Array<double> costs = xt::zeros<double>({N, K});
  Mask valid = xt::zeros<bool>({N, K});
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t row = n * K + k;
      const bool real = k < candidates[n].size();
      const auto& c = candidates[n][real ? k : 0];
      for (std::size_t s = 0; s < source_ids[n].size(); ++s) src(row, s) = source_ids[n][s];
      tgt_in(row, 0) = kBos;
      for (std::size_t t = 0; t < c.size(); ++t) tgt_in(row, t + 1) = tgt_out(row, t) = c[t];
      tgt_out(row, c.size()) = kEos;
      valid(n, k) = real;
      if (real) {
        Words words;
        for (std::int64_t id : c) words.push_back(target_.word(id));
        costs(n, k) = 1 - sentence_bleu(words_of(words), words_of(*references[kept[n]]));
      }
    }
  const Tensor log_probs = model_->sequence_log_probs(src, tgt_in, tgt_out);  // (N K)
  return nn::minimum_risk_loss(
      reshape(log_probs, {static_cast<std::int64_t>(N), static_cast<std::int64_t>(K)}), costs,
      valid, options.alpha);
}

std::vector<Words> TranslationPipeline::translate(const std::vector<Words>& sentences,
                                                  SearchOptions search) const {
  search.bos = kBos, search.eos = kEos, search.mask = kMask;
  std::vector<std::vector<std::int64_t>> sources;
  for (const auto& s : sentences) {
    sources.emplace_back();
    for (const auto& w : s) sources.back().push_back(source_.id(w));
  }
  // An empty sentence translates to nothing, without running the model on it.
  std::vector<std::size_t> real;
  std::vector<std::vector<std::int64_t>> real_sources;
  for (std::size_t i = 0; i < sources.size(); ++i)
    if (!sources[i].empty()) real.push_back(i), real_sources.push_back(sources[i]);
  std::vector<Words> out(sentences.size());
  if (real.empty()) return out;
  const auto found = model_->options().non_autoregressive
                         ? mask_predict(*model_, real_sources, search)
                     : search.beam == 1 ? greedy_search(*model_, real_sources, search)
                                        : beam_search(*model_, real_sources, search);
  for (std::size_t k = 0; k < real.size(); ++k)
    for (std::int64_t id : found[k].tokens) out[real[k]].push_back(target_.word(id));
  return out;
}

std::vector<std::vector<Words>> TranslationPipeline::sample(const std::vector<Words>& sentences,
                                                            SearchOptions search,
                                                            const SamplingOptions& sampling,
                                                            std::size_t count) const {
  search.bos = kBos, search.eos = kEos;
  std::vector<std::vector<std::int64_t>> sources;  // sample c of sentence i: source i * count + c
  std::vector<std::size_t> owner;
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    if (sentences[i].empty()) continue;  // nothing to translate
    std::vector<std::int64_t> ids;
    for (const auto& w : sentences[i]) ids.push_back(source_.id(w));
    for (std::size_t c = 0; c < count; ++c) sources.push_back(ids), owner.push_back(i);
  }
  std::vector<std::vector<Words>> out(sentences.size());
  if (sources.empty()) return out;
  const auto found = sample_search(*model_, sources, search, sampling);
  for (std::size_t k = 0; k < found.size(); ++k) {
    out[owner[k]].emplace_back();
    for (std::int64_t id : found[k].tokens) out[owner[k]].back().push_back(target_.word(id));
  }
  return out;
}

std::vector<std::string> TranslationPipeline::translate_lines(const std::vector<std::string>& lines,
                                                              const SearchOptions& search) const {
  std::vector<Words> sentences;
  for (const auto& line : lines) sentences.push_back(tokenize(line));
  std::vector<std::string> out;
  for (const auto& words : translate(sentences, search)) out.push_back(text_of(words));
  return out;
}

std::string TranslationPipeline::text_of(const Words& words) const {
  const std::string text = detokenize(words_of(words));
  return lower_ ? capitalize_first(text) : text;
}

std::vector<std::vector<double>> TranslationPipeline::cross_attention(const Words& source,
                                                                      const Words& target,
                                                                      std::size_t layer) const {
  NoGradGuard no_grad;
  const Ids src = source_ids({&source});
  // An autoregressive decoder reads <s> and the target; a non-autoregressive one the target.
  const std::size_t first = model_->options().non_autoregressive ? 0 : 1;
  Ids tgt = Ids::from_shape({1, std::max<std::size_t>(1, target.size() + first)});
  tgt(0, 0) = first ? kBos : kMask;
  for (std::size_t t = 0; t < target.size(); ++t) tgt(0, t + first) = target_.id(target[t]);
  std::vector<Tensor> weights;  // one (1, H, T, S) per layer
  model_->decode(tgt, model_->encode(src), key_padding_mask(src), nullptr, &weights);
  if (layer >= weights.size())
    throw std::runtime_error("cross-attention layer " + std::to_string(layer) +
                             ": the decoder has " + std::to_string(weights.size()) +
                             " layers (0 to " + std::to_string(weights.size() - 1) + ")");
  const auto& w = weights[layer].data<float>();
  const std::size_t H = w.shape()[1], T = w.shape()[2], S = w.shape()[3];
  std::vector<std::vector<double>> avg(T, std::vector<double>(S, 0.0));
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t s = 0; s < S; ++s) avg[t][s] += w(0, h, t, s) / H;
  return avg;
}

}  // namespace tg::models

// tapegrad-translate: translation with an encoder-decoder transformer, beam search and BLEU.
// The model, its files and the training loop are the library's (models/translation.hpp,
// nn/training/loop.hpp); this file is the command line and the scores.
//
//   tapegrad-translate train --data data/multi30k                (train.de/en, val.de/en)
//   tapegrad-translate eval --model translator.npz data/multi30k/val.de data/multi30k/val.en --out hyps.txt
//   tapegrad-translate predict --model translator.npz "Ein Hund läuft im Schnee."   (or lines on stdin)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli.hpp"

using namespace tg;
namespace fs = std::filesystem;

namespace {

struct Scored {
  models::Bleu bleu;
  std::vector<std::string> hypotheses;
  double seconds = 0;
};

// Translates source lines and scores them against reference lines; with `sampling`, each
// translation is one sample instead of the search's answer.
Scored score(const models::TranslationPipeline& t, const std::vector<std::string>& sources,
             const std::vector<std::string>& references, const models::SearchOptions& search, bool lower,
             const models::SamplingOptions* sampling = nullptr) {
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

// Source and reference lines, aligned, every source line a sentence.
std::pair<std::vector<std::string>, std::vector<std::string>> read_aligned(const std::string& source,
                                                                           const std::string& reference) {
  auto sources = models::read_lines(source);
  auto references = models::read_lines(reference);
  for (std::size_t i = 0; i < sources.size(); ++i)
    if (sources[i].empty()) throw models::DataError(source, i + 1, "empty line (every line must hold a sentence)");
  if (sources.size() != references.size())
    throw std::runtime_error(source + " has " + std::to_string(sources.size()) + " lines but " + reference + " has " +
                             std::to_string(references.size()) + " (the files must be aligned)");
  return {std::move(sources), std::move(references)};
}

// --sample METHOD and its settings, for predict, and for eval (the BLEU of one sample a sentence).
struct SampleChoice {
  std::string method;  // temperature, topk or nucleus; empty: search instead
  models::SamplingOptions sampling;
  std::size_t top_k = 10;
  double top_p = 0.9;

  // The options to sample with, or nullptr to search; a setting of another method is refused.
  const models::SamplingOptions* resolve(const CLI::App& cmd) {
    if (cmd.count("--top-k") && method != "topk") throw CLI::ValidationError("--top-k", "is for --sample topk");
    if (cmd.count("--top-p") && method != "nucleus") throw CLI::ValidationError("--top-p", "is for --sample nucleus");
    for (const char* name : {"--temperature", "--seed", "--samples"})  // (eval has no --samples)
      if (const CLI::Option* o = cmd.get_option_no_throw(name); method.empty() && o && o->count())
        throw CLI::ValidationError(name, "is for --sample");
    if (method.empty()) return nullptr;
    if (method == "topk") sampling.top_k = top_k;
    if (method == "nucleus") sampling.top_p = top_p;
    return &sampling;
  }
};

void add_sampling_options(CLI::App& cmd, SampleChoice& c) {
  cmd.add_option("--sample", c.method,
                 "draw each token instead of searching: temperature (from the whole distribution), topk (from the "
                 "--top-k most likely tokens) or nucleus (from the fewest most likely tokens whose probability "
                 "reaches --top-p), each renormalised")
      ->check(CLI::IsMember({"temperature", "topk", "nucleus"}));
  cmd.add_option("--temperature", c.sampling.temperature, "with --sample: softmax(log p / T), < 1 sharper, > 1 flatter")
      ->check(examples::positive)
      ->capture_default_str();
  cmd.add_option("--top-k", c.top_k, "with --sample topk: the k")->check(examples::positive)->capture_default_str();
  cmd.add_option("--top-p", c.top_p, "with --sample nucleus: the p")->check(CLI::Range(1e-9, 1.0))->capture_default_str();
  cmd.add_option("--seed", c.sampling.seed, "with --sample: the random seed")->capture_default_str();
}

void add_search_options(CLI::App& cmd, models::SearchOptions& s) {
  cmd.add_option("--beam", s.beam, "beam size (1: greedy); a non-autoregressive model: the lengths tried")
      ->check(examples::positive);
  cmd.add_option("--refine", s.refine, "a non-autoregressive model: mask-predict iterations (1: one pass)")
      ->check(examples::positive)
      ->capture_default_str();
  cmd.add_option("--length-penalty", s.length_penalty, "alpha of the length penalty ((5 + length) / 6)^alpha")
      ->check(examples::non_negative);
}

}  // namespace

int main(int argc, char** argv) {
  examples::Program program("tapegrad-translate", "tapegrad-translate: translation with an encoder-decoder transformer");

  auto* train_cmd = program.subcommand("train", "train a translator on aligned files");
  std::string data_dir, source_lang = "de", target_lang = "en", train_src, train_tgt, dev_src, dev_tgt;
  // The defaults: the best recipe measured (docs/results.md#translation): dropout 0.3 against
  // over-fitting Multi30k's 29,000 pairs, and the moving average of the weights.
  nn::TrainOptions to{.epochs = 30, .time_limit_minutes = 58, .lr = 1e-3, .warmup = 400, .out = "translator.npz",
                          .plot = "translator-curve.svg", .metric_name = "BLEU", .metric_percent = false, .average = 0.999};
  models::TranslatorOptions options{.dropout = 0.3};  // the rest of its defaults are the program's
  examples::DataChoice data{.min_count = 2, .batch_tokens = 2000};
  bool cased_model = false;
  models::SearchOptions final_search;
  train_cmd->add_option("--data", data_dir, "folder with train.SRC, train.TGT, val.SRC, val.TGT");
  train_cmd->add_option("--src", source_lang, "source language suffix");
  train_cmd->add_option("--tgt", target_lang, "target language suffix");
  train_cmd->add_option("--train-src", train_src, "training source file")->check(examples::readable_file);
  train_cmd->add_option("--train-tgt", train_tgt, "training target file")->check(examples::readable_file);
  train_cmd->add_option("--dev-src", dev_src, "development source file")->check(examples::readable_file);
  train_cmd->add_option("--dev-tgt", dev_tgt, "development target file")->check(examples::readable_file);
  examples::add_encoder_options(*train_cmd, options);
  train_cmd->add_option("--label-smoothing", options.label_smoothing, "label smoothing of the loss")
      ->check(CLI::Range(0.0, 0.5));
  train_cmd->add_flag("--cased", cased_model, "the model keeps the case of words (default: it reads and writes lowercase)");
  train_cmd->add_option("--final-beam", final_search.beam, "beam for the dev BLEU after training (0: skip)");
  // Alone, --scheduled-sampling takes k = 500: half the inputs are the model's own guesses near
  // step 3,100, the middle of the default 30 epochs of Multi30k.
  double scheduled_k = 0;
  constexpr double kDefaultScheduledK = 500;
  CLI::Option* scheduled_option =
      train_cmd
          ->add_option("--scheduled-sampling", scheduled_k,
                       "scheduled sampling with the inverse sigmoid decay k / (k + exp(step / k)) of gold tokens "
                       "(0: off, else k >= 1; alone: k = 500)")
          ->expected(0, 1)
          ->check(CLI::Validator(
              [](std::string& v) {
                return v.empty() || std::stod(v) == 0 || std::stod(v) >= 1 ? "" : "must be 0 or >= 1, got " + v;
              },
              "K"));
  std::string objective = "ce", init;
  models::MrtOptions mrt;
  train_cmd->add_option("--objective", objective,
                        "ce: label-smoothed cross-entropy; mrt: minimum risk training on sentence BLEU "
                        "(Shen et al. 2016), fine-tuning the model of --init")
      ->check(CLI::IsMember({"ce", "mrt"}))
      ->capture_default_str();
  train_cmd->add_option("--init", init, "start from this model file (its options and vocabularies)")
      ->check(examples::readable_file);
  train_cmd->add_option("--mrt-samples", mrt.samples, "with --objective mrt: candidates drawn per sentence")
      ->check(examples::positive)
      ->capture_default_str();
  train_cmd->add_option("--mrt-alpha", mrt.alpha, "with --objective mrt: sharpness of the model's distribution over them")
      ->check(examples::positive)
      ->capture_default_str();
  std::string decoder_kind = "autoregressive";
  train_cmd->add_option("--decoder", decoder_kind,
                        "autoregressive: token by token (beam search); nat: non-autoregressive, every token at once, "
                        "refined by mask-predict (Ghazvininejad et al. 2019), with a length classifier")
      ->check(CLI::IsMember({"autoregressive", "nat"}))
      ->capture_default_str();
  train_cmd->add_option("--length-weight", options.length_weight, "with --decoder nat: weight of the length loss")
      ->check(examples::non_negative)
      ->capture_default_str();
  std::string vocab_kind = "word";
  std::size_t vocab_size = 8000;
  train_cmd->add_option("--vocab", vocab_kind,
                        "word: a vocabulary of words (rare ones unknown); spm: of subword pieces, by a SentencePiece "
                        "unigram model trained on both languages' training text and stored in the model file")
      ->check(CLI::IsMember({"word", "spm"}))
      ->capture_default_str();
  train_cmd->add_option("--vocab-size", vocab_size, "with --vocab spm: pieces in the subword model")
      ->check(CLI::Range(8, 1 << 20))
      ->capture_default_str();
  examples::add_train_options(*train_cmd, to, data);

  auto* eval_cmd = program.subcommand("eval", "BLEU on any pair of aligned files");
  std::string model_path = "translator.npz", eval_src, eval_ref, hypotheses_path;
  models::SearchOptions search;
  bool case_sensitive = false, json = false;
  eval_cmd->add_option("--model", model_path, "model file")->check(examples::readable_file);
  eval_cmd->add_option("source", eval_src, "source file, a sentence per line")->required()->check(examples::readable_file);
  eval_cmd->add_option("reference", eval_ref, "reference translations, aligned")->required()->check(examples::readable_file);
  eval_cmd->add_option("--out", hypotheses_path, "write the translations here, a line each");
  eval_cmd->add_flag("--case-sensitive", case_sensitive, "case-sensitive BLEU (default: both sides lowercased)");
  eval_cmd->add_flag("--json", json, "print one JSON object instead of text");
  add_search_options(*eval_cmd, search);
  SampleChoice eval_sample;  // BLEU of one sample a sentence
  add_sampling_options(*eval_cmd, eval_sample);

  auto* predict_cmd = program.subcommand("predict", "translate sentences: the arguments, or each line of standard input");
  predict_cmd->alias("translate");  // its name before the programs shared one vocabulary
  examples::PredictChoice predict{.model = "translator.npz",
                                  .format_help = "text: a translation a line; json: {\"source\", \"translation\"} a line"};
  CLI::Option* layer_option = examples::add_predict_options(
      *predict_cmd, predict, "draw the first sentence's cross-attention (source against output) as an SVG heatmap");
  layer_option->description("which decoder layer's cross-attention to draw (default: the last)");
  add_search_options(*predict_cmd, search);
  SampleChoice sample;
  add_sampling_options(*predict_cmd, sample);
  std::size_t samples = 1;
  predict_cmd->add_option("--samples", samples, "with --sample: translations per sentence (text: tab-separated)")
      ->check(examples::positive);

  return program.run(argc, argv, [&] {
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
      if (objective == "mrt" && init.empty())
        throw CLI::ValidationError("--objective mrt", "fine-tunes a trained model: name it with --init");
      for (const char* decided : {"--decoder", "--length-weight", "--vocab", "--vocab-size"})
        if (!init.empty() && train_cmd->count(decided))
          throw CLI::ValidationError(decided, "the model of --init decides it");
      if (train_cmd->count("--length-weight") && decoder_kind != "nat")
        throw CLI::ValidationError("--length-weight", "is for --decoder nat");
      if (train_cmd->count("--vocab-size") && vocab_kind != "spm")
        throw CLI::ValidationError("--vocab-size", "is for --vocab spm");
      options.non_autoregressive = decoder_kind == "nat";
      // With --init, the model file decides the options, the vocabularies and the case.
      std::unique_ptr<models::TranslationPipeline> initial;
      if (!init.empty()) initial = models::TranslationPipeline::load(init);
      const bool nat = initial ? initial->model().options().non_autoregressive : options.non_autoregressive;
      if (scheduled_option->count() && scheduled_option->results().front().empty()) scheduled_k = kDefaultScheduledK;
      if (nat && scheduled_k > 0)
        throw CLI::ValidationError("--scheduled-sampling", "feeds the model's own earlier tokens: needs an autoregressive model");
      if (nat && objective == "mrt")
        throw CLI::ValidationError("--objective mrt", "samples candidates token by token: needs an autoregressive model");
      const bool lower = initial ? initial->lower() : !cased_model;
      const std::size_t max_len = initial ? initial->model().options().max_len : options.max_len;
      const auto pairs = models::read_parallel(train_src, train_tgt, lower, &data.bad_lines);
      examples::report_bad_lines(data.bad_lines);
      const auto [dev_sources, dev_references] = read_aligned(dev_src, dev_tgt);
      std::vector<models::Words> sources, targets;
      for (const auto& p : pairs) sources.push_back(p.source), targets.push_back(p.target);
      // Subword pieces: a model trained on the words of both sides (or the --init model's).
      std::optional<models::SubwordVocab> subwords;
      if (initial) subwords = initial->subwords();
      else if (vocab_kind == "spm") {
        std::vector<models::Words> both = sources;
        both.insert(both.end(), targets.begin(), targets.end());
        subwords = models::SubwordVocab::train(both, vocab_size);
      }
      if (subwords)
        for (std::size_t i = 0; i < pairs.size(); ++i)
          sources[i] = subwords->encode(sources[i]), targets[i] = subwords->encode(targets[i]);
      std::vector<std::size_t> lengths, tokens;  // padded length of a pair; its real tokens
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        lengths.push_back(std::max(sources[i].size(), targets[i].size() + 1));
        tokens.push_back(sources[i].size() + targets[i].size() + 1);
        if (lengths[i] + 1 > max_len)
          throw models::DataError(train_src, i + 1, "the pair has " + std::to_string(lengths[i]) +
                                                        " tokens, more than the model's max_len " + std::to_string(max_len));
      }
      if (!initial) {  // every piece is kept: the subword model chose them by frequency already
        const std::size_t min_count = subwords ? 1 : data.min_count;
        std::vector<std::string> specials = {"<s>", "</s>"};
        if (options.non_autoregressive) specials.push_back("<mask>");
        initial = std::make_unique<models::TranslationPipeline>(
            models::Vocab::build(sources, min_count, false), models::Vocab::build(targets, min_count, false, specials),
            lower, options, to.seed, subwords);
      }
      models::TranslationPipeline& t = *initial;
      if (!init.empty()) std::printf("starting from %s\n", init.c_str());
      std::printf("translator: %zu training pairs, %zu dev sentences, %s vocabularies %zu (source) and %zu (target), "
                  "%zu parameters\n", pairs.size(), dev_sources.size(), subwords ? "subword" : "word",
                  t.source_vocab().size(), t.target_vocab().size(), t.model().parameter_count());
      examples::announce_limits(to);
      nn::Task task{.model = &t.model(),
                        .gen = &t.gen(),
                        .batches = models::shuffled_batches(lengths, data.batch_tokens, 256, to.seed)};
      std::size_t step = 0;  // the loop writes the optimizer's step count here
      task.step = &step;
      task.loss = [&](const std::vector<std::size_t>& batch) {
        std::vector<const models::Words*> xs, ys;
        for (std::size_t i : batch) xs.push_back(&sources[i]), ys.push_back(&targets[i]);
        if (objective == "mrt") return t.mrt_loss(xs, ys, mrt);
        return t.loss(xs, ys, data.word_dropout, scheduled_k > 0 ? models::gold_share(step, scheduled_k) : 1.0);
      };
      if (objective == "ce")
        task.weight = [&](const std::vector<std::size_t>& batch) {  // the loss is a mean over target tokens
          double n = 0;
          for (std::size_t i : batch) n += targets[i].size() + 1;
          return n;
        };  // MRT's risk is a mean over sentences: the default weight
      task.lengths = &tokens;
      task.evaluate = [&] {  // greedy decoding (mask-predict of one length): fast, and close to beam search's ranking
        return score(t, dev_sources, dev_references, {.beam = 1}, true).bleu.score / 100;
      };
      task.save_model = [&](const std::string& path) { t.save(path, program.command_line()); };
      const nn::TrainResult result = nn::train(task, to);
      if (result.interrupted) return examples::kExitInterrupted;
      if (final_search.beam > 0 && tg::nn::ProcessGroup::world().is_root() && fs::exists(to.out)) {
        const auto best = models::TranslationPipeline::load(to.out);
        const Scored s = score(*best, dev_sources, dev_references, final_search, true);
        std::printf("%s on %s, beam %zu: %s  (%.1f s)\n%s\n", to.out.c_str(), dev_src.c_str(), final_search.beam,
                    s.bleu.to_string().c_str(), s.seconds, models::bleu_signature(true).c_str());
      }
      return 0;
    }
    if (*eval_cmd) {
      const auto t = models::TranslationPipeline::load(model_path);
      const auto [sources, references] = read_aligned(eval_src, eval_ref);
      const models::SamplingOptions* sampling = eval_sample.resolve(*eval_cmd);
      const Scored s = score(*t, sources, references, search, !case_sensitive, sampling);
      const std::string signature = models::bleu_signature(!case_sensitive);
      if (json) {
        const auto& b = s.bleu;
        std::printf("%s\n", nlohmann::json{{"file", eval_src}, {"sentences", sources.size()}, {"beam", search.beam},
                                           {"refine", t->model().options().non_autoregressive ? search.refine : 0},
                                           {"sample", eval_sample.method},
                                           {"bleu", b.score}, {"precisions", b.precisions},
                                           {"brevity_penalty", b.brevity_penalty}, {"hyp_length", b.hyp_length},
                                           {"ref_length", b.ref_length}, {"signature", signature}, {"seconds", s.seconds}}
                                .dump()
                                .c_str());
      } else {
        const std::string how = sampling ? "one sample each (" + eval_sample.method + ")" : "beam " + std::to_string(search.beam);
        std::printf("%s: %zu sentences, %s, %s BLEU\n%s\n%s\ntranslated in %.1f s (%.1f sentences/s)\n",
                    eval_src.c_str(), sources.size(), how.c_str(), case_sensitive ? "cased" : "lowercased",
                    s.bleu.to_string().c_str(), signature.c_str(), s.seconds, sources.size() / std::max(s.seconds, 1e-9));
      }
      if (!hypotheses_path.empty()) {
        std::ofstream out(hypotheses_path);
        for (const auto& h : s.hypotheses) out << h << '\n';
        if (!out) throw std::runtime_error(hypotheses_path + ": cannot write the translations");
        std::fprintf(stderr, "wrote %s\n", hypotheses_path.c_str());
      }
      return 0;
    }
    const models::SamplingOptions* sampling = sample.resolve(*predict_cmd);
    const auto t = models::TranslationPipeline::load(predict.model);
    std::vector<models::Words> sentences;
    const auto lines = examples::input_lines(predict.words);
    for (const auto& line : lines) sentences.push_back(t->tokenize(line));
    if (sampling) {  // a line per input line: its samples, tab-separated (json: an array)
      const auto drawn = t->sample(sentences, search, *sampling, samples);
      for (std::size_t i = 0; i < drawn.size(); ++i) {
        std::vector<std::string> texts;
        for (const auto& words : drawn[i]) texts.push_back(t->text_of(words));
        if (predict.format == "json") {
          std::printf("%s\n", nlohmann::json{{"source", lines[i]}, {"samples", texts}}.dump().c_str());
          continue;
        }
        std::string joined;
        for (std::size_t s = 0; s < texts.size(); ++s) joined += (s ? "\t" : "") + texts[s];
        std::printf("%s\n", joined.c_str());
      }
      return 0;
    }
    const auto translated = t->translate(sentences, search);
    for (std::size_t i = 0; i < translated.size(); ++i) {
      const std::string text = t->text_of(translated[i]);
      if (predict.format == "json") std::printf("%s\n", nlohmann::json{{"source", lines[i]}, {"translation", text}}.dump().c_str());
      else std::printf("%s\n", text.c_str());
    }
    if (!predict.attention_svg.empty() && !sentences.empty()) {
      const std::size_t layer = layer_option->count() ? predict.layer : t->model().options().layers - 1;
      std::vector<std::string> rows = translated[0];
      if (!t->model().options().non_autoregressive) rows.push_back("</s>");
      models::write_heatmap_svg(predict.attention_svg, rows, sentences[0], t->cross_attention(sentences[0], translated[0], layer),
                                "cross-attention, decoder layer " + std::to_string(layer) +
                                    ", mean over heads; output words (rows) attend to source words (columns)");
      std::fprintf(stderr, "wrote %s\n", predict.attention_svg.c_str());
    }
    return 0;
  });
}

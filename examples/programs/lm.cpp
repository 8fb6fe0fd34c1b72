// tapegrad-lm: a language model -- a decoder-only transformer (GPT) that writes text one token at
// a time, a token being a character or (--vocab spm) a SentencePiece piece.  The model, its file,
// its data and the training loop are the library's (models/language_modelling.hpp,
// models/data/text_vocab.hpp, nn/training/loop.hpp); this file is the command line.
//
//   tapegrad-lm train --data data/tinyshakespeare              (input.txt: 90% train, 10% valid)
//   tapegrad-lm train --data data/tinyshakespeare --vocab spm --vocab-size 512
//   tapegrad-lm train --train a.txt --valid b.txt --positions alibi --context 128
//   tapegrad-lm eval --model lm.npz data/tinyshakespeare/input.txt --part valid --context 256
//   tapegrad-lm generate --model lm.npz --prompt "ROMEO:" --tokens 500 --sample topk --top-k 20
#include <cstdio>
#include <memory>
#include <string>

#include "cli.hpp"

using namespace tg;

namespace {

// A text's characters, and where they came from (for messages).
struct Text {
  std::u32string chars;
  std::string name;
};

// The part of a text file that `part` names: all of it, or the first 90% (train) or the last 10%
// (valid).
Text read_part(const std::string& path, const std::string& part) {
  const std::u32string all = models::read_text(path);
  if (part == "all") return {all, path};
  const auto [train, valid] = models::split_text(all, models::kTrainShare);
  return part == "train" ? Text{train, path + " (its first 90%)"}
                         : Text{valid, path + " (its last 10%)"};
}

// ---- train ----------------------------------------------------------------------------------

// `train`'s choices.  The defaults are the half-hour recipe: 6 layers of width 192 (6 heads,
// feed-forward 768), rotary positions, GPT-2's initialisation, no dropout, context 128, batches of
// 16, 5,000 steps or 30 minutes; AdamW at 2e-3 with beta2 0.99, 100 steps of warm-up and a cosine
// decay to a tenth, weight decay 0.1 on matrices and tables only.  `--recipe nanogpt-cpu` is
// nanoGPT's recipe for a CPU instead (nanogpt_cpu below).
struct TrainChoice {
  std::string data_dir, train_file, valid_file;
  std::string vocab = "char";
  std::size_t vocab_size = 512;
  CLI::Option* vocab_size_option = nullptr;
  std::string recipe = "half-hour";
  models::LanguageModelOptions options{.d_model = 192,
                                       .heads = 6,
                                       .ff = 768,
                                       .layers = 6,
                                       .positions = nn::PositionScheme::rope,
                                       .gpt2_init = true};
  bool untied = false;
  CLI::Option* max_len = nullptr;
  models::WindowBatches batches{.context = 128, .batch = 16, .steps = 500};
  std::size_t steps = 5000;
  nn::TrainOptions to = [] {
    nn::TrainOptions o = models::language_model_recipe();
    o.lr = 2e-3;
    o.time_limit_minutes = 30;
    o.out = "lm.npz";
    o.plot = "lm-curve.svg";
    return o;
  }();
};

int train(TrainChoice& c, const CLI::App& cmd, const examples::Program& program);

examples::Command train_command(examples::Program& program) {
  const auto choice = std::make_shared<TrainChoice>();  // kept by the command
  TrainChoice& c = *choice;
  CLI::App* cmd =
      program.subcommand("train", "train a language model on text, of characters or pieces");
  cmd->add_option(
         "--recipe", c.recipe,
         "half-hour: the defaults shown here (validation loss about 1.5 on Tiny "
         "Shakespeare in 30 minutes on 2 cores); nanogpt-cpu: nanoGPT's recipe for a "
         "laptop CPU (4 layers, 4 heads, width 128, ff 512, learned positions, the "
         "library's initialisation, context 64, batch 12, 2,000 steps, eval-every 250, "
         "lr 1e-3, no time limit: about 3 minutes).  Options given as well win over the recipe's")
      ->check(CLI::IsMember({"half-hour", "nanogpt-cpu"}));
  cmd->add_option("--data", c.data_dir,
                  "folder with input.txt: its first 90% of characters train, the rest validate")
      ->check(examples::readable_folder("a folder with input.txt"));
  cmd->add_option("--train", c.train_file, "training text (UTF-8)")
      ->check(examples::readable("a UTF-8 text file"));
  cmd->add_option("--valid", c.valid_file, "validation text (UTF-8)")
      ->check(examples::readable("a UTF-8 text file"));
  cmd->add_option("--vocab", c.vocab,
                  "the tokens: char, the training text's characters; spm, subword pieces of a "
                  "SentencePiece unigram model trained on it (and the newline)")
      ->check(CLI::IsMember({"char", "spm"}));
  c.vocab_size_option =
      cmd->add_option("--vocab-size", c.vocab_size, "with --vocab spm: pieces in the model")
          ->check(examples::positive);
  examples::add_encoder_options(*cmd, c.options);
  c.max_len = cmd->add_option("--max-len", c.options.max_len,
                              "with --positions learned: the table's positions (default: the "
                              "context)")
                  ->check(examples::positive);
  cmd->add_option("--gpt2-init", c.options.gpt2_init,
                  "true: GPT-2's initialisation (N(0, 0.02^2), residual projections scaled by "
                  "1 / sqrt(2 layers), embeddings unscaled); false: the library's (Xavier, "
                  "embeddings scaled by sqrt(C))");
  cmd->add_flag("--untied", c.untied,
                "an output layer of its own (default: the embedding's table, transposed)");
  cmd->add_option("--context", c.batches.context, "tokens a training window reads")
      ->check(examples::positive);
  cmd->add_option("--batch", c.batches.batch, "windows per step")->check(examples::positive);
  cmd->add_option("--steps", c.steps, "optimizer steps (training also stops at --minutes)")
      ->check(examples::positive);
  cmd->add_option("--eval-every", c.batches.steps,
                  "steps between validations (--steps must be a multiple); the model of the "
                  "lowest validation loss is kept")
      ->check(examples::positive);
  examples::add_loop_options(*cmd, c.to);
  return {cmd, [choice, cmd, &program] { return train(*choice, *cmd, program); }};
}

// The training and validation texts: --train and --valid, or --data's input.txt split.
std::pair<Text, Text> read_texts(const TrainChoice& c) {
  if (!c.data_dir.empty()) {
    if (!c.train_file.empty() || !c.valid_file.empty())
      throw CLI::ValidationError("--data", "give --data, or --train and --valid, not both");
    const std::string path = c.data_dir + "/input.txt";
    examples::require_readable("--data", path, "the text to train on (UTF-8)");
    return {read_part(path, "train"), read_part(path, "valid")};
  }
  if (c.train_file.empty() || c.valid_file.empty())
    throw CLI::RequiredError("--data, or --train and --valid");
  return {read_part(c.train_file, "all"), read_part(c.valid_file, "all")};
}

// SentencePiece's pieces of the training text; a size it cannot make is --vocab-size's error.
models::TextVocab pieces(const std::u32string& text, std::size_t size) {
  try {
    return models::TextVocab::pieces(text, size);
  } catch (const std::invalid_argument& e) {
    throw CLI::ValidationError("--vocab-size", e.what());
  }
}

// nanoGPT's recipe for a laptop CPU, for each of its options that the command line did not give.
void nanogpt_cpu(TrainChoice& c, const CLI::App& cmd) {
  const auto unless_given = [&cmd](const char* option, auto& value, auto recipe) {
    if (!cmd.get_option(option)->count()) value = recipe;
  };
  unless_given("--d-model", c.options.d_model, 128);
  unless_given("--heads", c.options.heads, 4);
  unless_given("--ff", c.options.ff, 512);
  unless_given("--layers", c.options.layers, 4);
  unless_given("--positions", c.options.positions, nn::PositionScheme::learned);
  unless_given("--gpt2-init", c.options.gpt2_init, false);
  unless_given("--context", c.batches.context, 64);
  unless_given("--batch", c.batches.batch, 12);
  unless_given("--steps", c.steps, 2000);
  unless_given("--eval-every", c.batches.steps, 250);
  unless_given("--lr", c.to.lr, 1e-3);
  unless_given("--minutes", c.to.time_limit_minutes, 0.0);
}

int train(TrainChoice& c, const CLI::App& cmd, const examples::Program& program) {
  if (c.recipe == "nanogpt-cpu") nanogpt_cpu(c, cmd);
  if (c.steps % c.batches.steps != 0)
    throw CLI::ValidationError("--steps", std::to_string(c.steps) +
                                              " is not a multiple of "
                                              "--eval-every " +
                                              std::to_string(c.batches.steps));
  if (c.vocab_size_option->count() && c.vocab != "spm")
    throw CLI::ValidationError("--vocab-size", "is for --vocab spm");
  const auto [train_text, valid_text] = read_texts(c);
  c.options.context = c.batches.context;
  if (!c.max_len->count()) c.options.max_len = c.batches.context;
  c.options.tie_embeddings = !c.untied;
  c.batches.seed = c.to.seed;
  c.to.epochs = c.steps / c.batches.steps;
  models::LanguageModelPipeline lm(
      c.vocab == "spm" ? pieces(train_text.chars, c.vocab_size)
                       : models::TextVocab(models::CharVocab::build(train_text.chars)),
      c.options, c.to.seed);
  const auto train_ids = lm.encode(train_text.chars, train_text.name);
  const auto valid_ids = lm.encode(valid_text.chars, valid_text.name);
  const char* tokens = lm.vocab().has_pieces() ? "tokens" : "characters";
  std::printf(
      "language model: %zu training and %zu validation %s, %zu in the vocabulary; %zu "
      "layer%s of width %zu, positions %s, %zu parameters\n",
      train_ids.size(), valid_ids.size(), tokens, lm.vocab().size(), c.options.layers,
      c.options.layers == 1 ? "" : "s", c.options.d_model, enum_name(c.options.positions),
      lm.model().parameter_count());
  std::printf(
      "training for %zu steps of %zu windows of %zu %s (an epoch here: %zu steps, then the "
      "validation loss)",
      c.steps, c.batches.batch, c.batches.context, tokens, c.batches.steps);
  if (c.to.time_limit_minutes > 0) std::printf(" or %g minutes", c.to.time_limit_minutes);
  std::printf("\n");
  nn::Task task =
      models::language_model_task(lm, train_ids, valid_ids, c.batches, program.command_line());
  return examples::train(task, c.to, "--steps");
}

// ---- eval -----------------------------------------------------------------------------------

struct EvalChoice {
  std::string model = "lm.npz", file, part = "all";
  models::EvalOptions options;
  bool json = false;
};

int eval(const EvalChoice& e);

examples::Command eval_command(examples::Program& program) {
  const auto choice = std::make_shared<EvalChoice>();  // kept by the command
  EvalChoice& e = *choice;
  CLI::App* cmd = program.subcommand(
      "eval", "the loss on a text: nats per token and bits per character, at any context");
  examples::add_model_option(*cmd, e.model);
  cmd->add_option("file", e.file, "a UTF-8 text file")
      ->required()
      ->check(examples::readable("a UTF-8 text file"));
  cmd->add_option("--part", e.part,
                  "all of the file, or its first 90% of characters (train) or the rest (valid)")
      ->check(CLI::IsMember({"all", "train", "valid"}));
  cmd->add_option("--context", e.options.context,
                  "tokens a window reads (0: the context the model trained on)");
  cmd->add_option("--stride", e.options.stride,
                  "tokens between windows (0: the context, windows that do not overlap); each "
                  "token is scored once, after at least context - stride others");
  cmd->add_flag("--json", e.json, "print one JSON object instead of text");
  return {cmd, [choice] { return eval(*choice); }};
}

int eval(const EvalChoice& e) {
  const auto lm = models::LanguageModelPipeline::load(e.model);
  const Text text = read_part(e.file, e.part);
  const models::Evaluation r = lm->evaluate(lm->encode(text.chars, text.name), e.options);
  if (e.json) {
    const nlohmann::json j{{"file", e.file},
                           {"part", e.part},
                           {"tokens", r.tokens},
                           {"characters", r.characters},
                           {"context", r.context},
                           {"stride", r.stride},
                           {"windows", r.windows},
                           {"nats_per_token", r.nats_per_token},
                           {"bits_per_char", r.bits_per_char}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  const std::string scored =
      r.tokens == r.characters
          ? std::to_string(r.tokens) + " characters"
          : std::to_string(r.tokens) + " tokens (" + std::to_string(r.characters) + " characters)";
  std::printf(
      "%s: %s scored in %zu windows of %zu (stride %zu)\nloss %.4f nats per token, %.4f bits "
      "per character\n",
      text.name.c_str(), scored.c_str(), r.windows, r.context, r.stride, r.nats_per_token,
      r.bits_per_char);
  return 0;
}

// ---- generate -------------------------------------------------------------------------------

struct GenerateChoice {
  std::string model = "lm.npz", prompt, format = "text";
  std::size_t tokens = 256, window = 0;
  bool no_cache = false;
  examples::SampleChoice sample{.method = "temperature"};
};

int generate(GenerateChoice& g, const CLI::App& cmd);

examples::Command generate_command(examples::Program& program) {
  const auto choice = std::make_shared<GenerateChoice>();  // kept by the command
  GenerateChoice& g = *choice;
  CLI::App* cmd = program.subcommand("generate", "write text after a prompt, a token at a time");
  examples::add_model_option(*cmd, g.model);
  cmd->add_option("--prompt", g.prompt, "the text to go on from (empty: a newline)");
  cmd->add_option("--tokens", g.tokens, "tokens to write (characters, or pieces)")
      ->check(examples::positive);
  examples::add_sampling_options(*cmd, g.sample, "");
  cmd->add_option("--window", g.window,
                  "the most tokens the model reads at once (0: the context it trained on); past "
                  "it, generation goes on from the last window / 2 tokens, read afresh");
  cmd->add_flag("--no-cache", g.no_cache,
                "read the whole text again for every token instead of keeping the keys and "
                "values of the earlier ones (slower; the same text)");
  cmd->add_option("--format", g.format,
                  "text: the prompt and what follows it; json: {\"prompt\", \"text\", \"tokens\", "
                  "\"seconds\", \"tokens_per_second\", \"cache\"}")
      ->check(CLI::IsMember({"text", "json"}));
  return {cmd, [choice, cmd] { return generate(*choice, *cmd); }};
}

int generate(GenerateChoice& g, const CLI::App& cmd) {
  const models::SamplingOptions* sampling = g.sample.resolve(cmd);
  const auto lm = models::LanguageModelPipeline::load(g.model);
  std::u32string prompt;
  try {
    prompt = models::decode_utf8(g.prompt);
  } catch (const std::invalid_argument& e) {
    throw CLI::ValidationError("--prompt", e.what());
  }
  const models::Generation out = lm->generate(
      prompt,
      {.tokens = g.tokens, .sampling = *sampling, .cache = !g.no_cache, .window = g.window});
  const double per_second = g.tokens / std::max(out.seconds, 1e-9);
  if (g.format == "json") {
    const nlohmann::json j{
        {"prompt", g.prompt},     {"text", models::encode_utf8(out.text)}, {"tokens", g.tokens},
        {"seconds", out.seconds}, {"tokens_per_second", per_second},       {"cache", !g.no_cache}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s%s\n", g.prompt.c_str(), models::encode_utf8(out.text).c_str());
  std::fflush(stdout);  // the text before the line about it, where both go to one place
  std::fprintf(stderr, "%zu %s in %.2f s (%.0f a second, %s)\n", g.tokens,
               lm->vocab().has_pieces() ? "tokens" : "characters", out.seconds, per_second,
               g.no_cache ? "without the cache" : "with the key/value cache");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  examples::Program program("tapegrad-lm",
                            "a language model (a decoder-only transformer) of characters or "
                            "subword pieces");
  return program.run(argc, argv,
                     {train_command(program), eval_command(program), generate_command(program)});
}

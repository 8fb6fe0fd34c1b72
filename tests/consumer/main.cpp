// A program of a user's, built against the installed package:
//   1. a gradient through the installed headers and library;
//   2. a model trained with the library's training loop, saved as a model file and read back;
//   3. a model file that the installed tapegrad-tagger wrote (its path is the first argument),
//      loaded and used.
#include <tapegrad/tapegrad.hpp>

#include <iostream>

using namespace tg;

namespace {

bool check(bool ok, const std::string& what) {
  std::cout << (ok ? "consumer: ok: " : "consumer: FAILED: ") << what << "\n";
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer TAGGER_MODEL.npz\n";
    return 2;
  }
  bool ok = true;

  Tensor x = from_vector({1, 2, 3}, {3});
  x.set_requires_grad();
  {
    Tape tape;
    TapeGuard recording(tape);
    sum(x * x).backward();
  }
  const auto& g = x.grad_data<float>();
  ok &= check(g(0) == 2 && g(1) == 4 && g(2) == 6, "d/dx sum(x * x) = 2 x");

  // Tag each word with its class, in a toy language, with the programs' training loop.
  const std::vector<std::string> words = {"the", "a", "dog", "cat", "runs", "sleeps"};
  const std::vector<std::string> classes = {"DET", "DET", "NOUN", "NOUN", "VERB", "VERB"};
  std::vector<models::Words> sentences, tags;
  std::vector<std::size_t> lengths;
  Generator gen(1);
  for (int i = 0; i < 40; ++i) {
    sentences.emplace_back(), tags.emplace_back();
    for (int j = 0; j < 4; ++j) {
      const std::size_t k = gen.below(words.size());
      sentences.back().push_back(words[k]), tags.back().push_back(classes[k]);
    }
    lengths.push_back(4);
  }
  models::TaggingPipeline tagger(
      models::WordInput{models::Vocab::build(sentences, 1, false), {.buckets = 0}},
      models::Vocab::closed(classes),
      {.encoder =
           {.d_model = 16, .heads = 2, .ff = 32, .layers = 1, .dropout = 0.0, .conv_width = 0}},
      1, 2);
  const auto accuracy = [&](const models::TaggingPipeline& t) {
    const auto predicted = t.predict(sentences);
    std::size_t right = 0;
    for (std::size_t i = 0; i < sentences.size(); ++i)
      for (std::size_t j = 0; j < 4; ++j) right += t.tags().word(predicted[i][j]) == tags[i][j];
    return right / (4.0 * sentences.size());
  };
  nn::Task task;
  task.model = &tagger.net();
  task.gen = &tagger.gen();
  task.batches = [&](std::size_t) { return models::make_batches(lengths, 32, 8, nullptr); };
  task.loss = [&](const std::vector<std::size_t>& batch) {
    std::vector<const models::Words*> ws, ts;
    for (std::size_t i : batch) ws.push_back(&sentences[i]), ts.push_back(&tags[i]);
    return tagger.loss(ws, ts);
  };
  task.lengths = &lengths;
  task.evaluate = [&] { return accuracy(tagger); };
  task.save_model = [&](const std::string& path) { tagger.save(path, "consumer"); };
  const auto result =
      nn::train(task, {.epochs = 8, .lr = 1e-2, .warmup = 5, .out = "consumer-tagger.npz"});
  const auto mine = models::TaggingPipeline::load("consumer-tagger.npz");
  ok &= check(result.history.size() == 8 && accuracy(*mine) > 0.95,
              "a model trained with nn::train, saved and loaded");

  // The installed program's model file.
  const auto theirs = models::TaggingPipeline::load(argv[1]);
  const auto predicted = theirs->predict({{"the", "big", "dog", "runs", "."}});
  ok &= check(predicted.size() == 1 && predicted[0].size() == 5 && theirs->tags().size() == 5,
              std::string("a model file written by tapegrad-tagger: ") + argv[1]);
  return ok ? 0 : 1;
}

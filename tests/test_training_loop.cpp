#define BOOST_TEST_MODULE training_loop
#include <cstdio>
#include <fstream>

#include "fixtures.hpp"
#include "testing.hpp"

using namespace tg;

namespace {

// Tagging on a toy language (fixtures.hpp): each word's tag is its class; the loop must learn it.
struct Toy : fixtures::ToyTagging {
  Toy() : ToyTagging(5) {}
};

std::unique_ptr<models::TaggingPipeline> make(const Toy& toy) { return fixtures::toy_tagger(toy); }

double accuracy(const models::TaggingPipeline& t, const Toy& toy) {
  const auto predicted = t.predict(toy.words);
  std::size_t right = 0, total = 0;
  for (std::size_t i = 0; i < toy.words.size(); ++i)
    for (std::size_t j = 0; j < toy.words[i].size(); ++j, ++total)
      right += t.tags().word(predicted[i][j]) == toy.tags[i][j];
  return double(right) / total;
}

nn::Task task_of(models::TaggingPipeline& t, const Toy& toy) {
  nn::Task task;
  task.model = &t.net();
  task.gen = &t.gen();
  task.batches = [&toy](std::size_t epoch) {
    Generator shuffle(100 + epoch);
    return models::make_batches(toy.lengths, 40, 16, &shuffle);
  };
  task.loss = [&t, &toy](const std::vector<std::size_t>& batch) { return toy.loss(t, batch); };
  task.lengths = &toy.lengths;
  task.evaluate = [&t, &toy] { return accuracy(t, toy); };
  task.save_model = [&t](const std::string& path) { t.save(path); };
  return task;
}

std::size_t lines_with(const std::string& path, const std::string& part) {
  std::ifstream in(path);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) n += testing::contains(line, part);
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_loop_learns_saves_the_best_model_and_logs) {
  const Toy toy;
  auto t = make(toy);
  auto task = task_of(*t, toy);
  std::remove("loop.jsonl");
  const nn::TrainResult r = nn::train(
      task, {.epochs = 6, .lr = 1e-2, .warmup = 5, .out = "loop.npz", .plot = "loop.svg", .log = "loop.jsonl"});
  BOOST_TEST(!r.interrupted);
  BOOST_REQUIRE(r.history.size() == 6u);
  BOOST_TEST(r.history.back().train_loss < r.history.front().train_loss);
  double best = 0;
  for (const auto& e : r.history) best = std::max(best, e.dev_metric);
  BOOST_TEST(best > 0.95);  // the tag is a function of the word
  // the model file holds the best epoch's model: loaded, it scores the best dev accuracy
  BOOST_TEST(accuracy(*models::TaggingPipeline::load("loop.npz"), toy) == best);
  BOOST_TEST(lines_with("loop.jsonl", "\"event\":\"epoch\"") == 6u);
  BOOST_TEST(lines_with("loop.svg", "<polyline") == 2u);
}

// The cosine schedule spans the planned epochs: with the warm-up longer than 3 epochs, a run
// planned for 2 epochs and one planned for 3 take the same steps.
BOOST_AUTO_TEST_CASE(a_resumed_run_ends_where_an_uninterrupted_one_does) {
  const Toy toy;
  auto straight = make(toy);
  auto task = task_of(*straight, toy);
  const auto a = nn::train(task, {.epochs = 3, .lr = 1e-2, .warmup = 50, .out = "straight.npz"});
  auto resumed = make(toy);
  auto task2 = task_of(*resumed, toy);
  nn::train(task2, {.epochs = 2, .lr = 1e-2, .warmup = 50, .out = "resumed.npz"});
  auto again = make(toy);  // a new process: a fresh model, everything from the checkpoint
  auto task3 = task_of(*again, toy);
  const auto b = nn::train(task3, {.epochs = 3, .lr = 1e-2, .warmup = 50, .out = "resumed.npz", .resume = true});
  BOOST_REQUIRE(b.history.size() == 3u);
  BOOST_TEST(b.history[2].train_loss == a.history[2].train_loss);  // same steps, same order: same bits
  BOOST_TEST(b.history[2].dev_metric == a.history[2].dev_metric);
}

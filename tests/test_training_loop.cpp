#define BOOST_TEST_MODULE training_loop
#include <atomic>
#include <csignal>
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
  const nn::TrainResult r = nn::train(task, {.epochs = 6,
                                             .lr = 1e-2,
                                             .warmup = 5,
                                             .out = "loop.npz",
                                             .plot = "loop.svg",
                                             .log = "loop.jsonl"});
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

// A loss as the dev metric (metric_is_loss): the lowest is the best, the first epoch included
// whatever its value; it is shown as it is, not as a percentage.  A score keeps the highest.
BOOST_AUTO_TEST_CASE(a_loss_metric_keeps_the_lowest) {
  const Toy toy;
  for (bool is_loss : {true, false}) BOOST_TEST_CONTEXT("metric_is_loss " << is_loss) {
      auto t = make(toy);
      auto task = task_of(*t, toy);
      const std::vector<double> metrics = {2.5, 1.5, 1.75};
      std::vector<std::size_t> saved;  // the epochs whose model was saved
      std::size_t epoch = 0;
      task.evaluate = [&] { return metrics[epoch++]; };
      task.save_model = [&](const std::string&) { saved.push_back(epoch); };
      const nn::TrainResult r = nn::train(task, {.epochs = 3,
                                                 .out = "loss.npz",
                                                 .plot = "loss.svg",
                                                 .metric_name = "loss",
                                                 .metric_is_loss = is_loss});
      BOOST_TEST(r.history.size() == 3u);
      BOOST_TEST(saved == (is_loss ? std::vector<std::size_t>{1, 2} : std::vector<std::size_t>{1}));
      const std::string curve = testing::read_file("loss.svg");
      BOOST_TEST(testing::contains(curve, is_loss ? ">2.5<" : ">250%<"));  // the axis's top
    }
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
  const auto b = nn::train(
      task3, {.epochs = 3, .lr = 1e-2, .warmup = 50, .out = "resumed.npz", .resume = true});
  BOOST_REQUIRE(b.history.size() == 3u);
  BOOST_TEST(b.history[2].train_loss ==
             a.history[2].train_loss);  // same steps, same order: same bits
  BOOST_TEST(b.history[2].dev_metric == a.history[2].dev_metric);
}

// Task::stop, set in the middle of epoch 2 (by a signal handler in a program; here by the loss):
// the loop saves a checkpoint and returns `interrupted`, and the resumed run ends bit for bit
// where an uninterrupted one does.
BOOST_AUTO_TEST_CASE(a_stop_request_saves_a_checkpoint_that_resumes_exactly) {
  const Toy toy;
  const nn::TrainOptions options{.epochs = 3, .lr = 1e-2, .warmup = 5, .out = "stopped.npz"};
  auto straight = make(toy);
  auto task = task_of(*straight, toy);
  const auto a = nn::train(task, {.epochs = 3, .lr = 1e-2, .warmup = 5, .out = "unstopped.npz"});

  auto stopped = make(toy);
  auto task2 = task_of(*stopped, toy);
  const std::size_t per_epoch = task2.batches(0).size(), stop_after = per_epoch + 2;
  std::atomic<bool> stop{false};
  std::size_t calls = 0;
  const auto loss = task2.loss;
  task2.loss = [&](const std::vector<std::size_t>& batch) {
    if (++calls == stop_after) stop = true;  // the loop sees it before the next step
    return loss(batch);
  };
  task2.stop = &stop;
  std::remove("stopped.npz.ckpt");
  const auto b = nn::train(task2, options);
  BOOST_TEST(b.interrupted);
  BOOST_TEST(b.history.size() == 1u);  // epoch 1 finished, epoch 2 cut short
  BOOST_TEST(b.losses.size() == stop_after);

  auto again = make(toy);  // a new process: a fresh model, everything from the checkpoint
  auto task3 = task_of(*again, toy);
  nn::TrainOptions resume = options;
  resume.resume = true;
  const auto c = nn::train(task3, resume);
  BOOST_TEST(!c.interrupted);
  BOOST_TEST(c.losses.size() == 3 * per_epoch - stop_after);  // the steps left, no more
  BOOST_REQUIRE(c.history.size() == 3u);
  BOOST_TEST(c.history[2].train_loss == a.history[2].train_loss);
  BOOST_TEST(c.history[2].dev_metric == a.history[2].dev_metric);
  BOOST_TEST(c.losses.back() == a.losses.back());
}

// Signals are the program's business: after training, SIGINT, SIGTERM and SIGUSR1 are handled as
// before it (here: the default, which ends the process).
BOOST_AUTO_TEST_CASE(the_loop_installs_no_signal_handler) {
  for (int s : {SIGINT, SIGTERM, SIGUSR1}) std::signal(s, SIG_DFL);
  const Toy toy;
  auto t = make(toy);
  auto task = task_of(*t, toy);
  nn::train(task, {.epochs = 1, .warmup = 5, .out = "signals.npz"});
  for (int s : {SIGINT, SIGTERM, SIGUSR1})
    BOOST_TEST((std::signal(s, SIG_DFL) == SIG_DFL), "signal " << s);
}

// Weight decay, the schedule's floor and AdamW's betas are options, and their defaults are what
// the loop used when they were constants (0.01, 5% of the peak rate, 0.9 and 0.999).
BOOST_AUTO_TEST_CASE(weight_decay_the_learning_rate_floor_and_the_betas_are_options) {
  const nn::TrainOptions defaults;
  BOOST_TEST(defaults.weight_decay == 0.01);
  BOOST_TEST(defaults.lr_floor == 0.05);
  BOOST_TEST(defaults.beta1 == 0.9);
  BOOST_TEST(defaults.beta2 == 0.999);
  const Toy toy;
  const auto losses = [&](double weight_decay, double lr_floor, double beta1, double beta2) {
    auto t = make(toy);
    auto task = task_of(*t, toy);
    // Two epochs with a short warm-up: the cosine reaches the floor within the run.
    return nn::train(task, {.epochs = 2,
                            .lr = 1e-2,
                            .warmup = 2,
                            .lr_floor = lr_floor,
                            .weight_decay = weight_decay,
                            .beta1 = beta1,
                            .beta2 = beta2,
                            .out = "options.npz"})
        .losses;
  };
  const auto base = losses(0.01, 0.05, 0.9, 0.999);
  auto t = make(toy);
  auto task = task_of(*t, toy);
  BOOST_TEST(nn::train(task, {.epochs = 2, .lr = 1e-2, .warmup = 2, .out = "options.npz"}).losses ==
             base);
  BOOST_TEST(losses(0.5, 0.05, 0.9, 0.999) != base);
  BOOST_TEST(losses(0.01, 1.0, 0.9, 0.999) != base);
  BOOST_TEST(losses(0.01, 0.05, 0.5, 0.999) != base);
  BOOST_TEST(losses(0.01, 0.05, 0.9, 0.99) != base);
}

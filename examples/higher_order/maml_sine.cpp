// MAML (Finn et al. 2017) on their few-shot sine regression, with second-order MAML (the
// gradient flows through the inner step: Hessian-vector products of the task loss) against
// first-order MAML (the inner gradient taken as a constant).
//
// A task: y = A sin(x - phi), A in [0.1, 5], phi in [0, pi], x in [-5, 5]; K = 10 examples to
// adapt on and 10 to score.  The model: 1 -> 40 -> 40 -> 1 with ReLU.  Inner step: one SGD step
// of size 0.01 on the K examples; outer: Adam 1e-3 over batches of tasks.  Afterwards, on 100
// held-out tasks: the mean squared error on 100 points before adaptation and after 1 and 10
// inner steps.
//
//   build/examples/maml_sine [--iterations 10000] [--tasks-per-batch 10] [--seed 1]
#include <cmath>
#include <cstdio>
#include <numbers>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

using namespace tg;

namespace {

struct Task {
  double amplitude, phase;
};

Task draw_task(Generator& gen) {
  return {0.1 + 4.9 * gen.uniform(), std::numbers::pi * gen.uniform()};
}

// K points of a task: x (K, 1), y (K, 1).
std::pair<Tensor, Tensor> draw_points(const Task& task, std::size_t k, Generator& gen) {
  Tensor x = rand_uniform({k, 1}, -5.0, 5.0, gen);
  NoGradGuard no_grad;
  return {x, sin(x - task.phase) * task.amplitude};
}

using Params = std::vector<Tensor>;

Params init(std::uint64_t seed) {
  Generator gen(seed);
  Params p;
  for (auto [in, out] : {std::pair<std::size_t, std::size_t>{1, 40}, {40, 40}, {40, 1}}) {
    // Glorot's scale: with x up to 5 in size, a larger first layer makes the inner step of 0.01
    // overshoot.
    p.push_back((randn({in, out}, gen) * std::sqrt(2.0 / (in + out))).set_requires_grad());
    p.push_back(zeros({out}).set_requires_grad());
  }
  return p;
}

Tensor forward(const Params& p, const Tensor& x) {
  const Tensor h1 = relu(linear(x, p[0], p[1]));
  const Tensor h2 = relu(linear(h1, p[2], p[3]));
  return linear(h2, p[4], p[5]);
}

Tensor mse(const Params& p, const std::pair<Tensor, Tensor>& data) {
  const Tensor d = forward(p, data.first) - data.second;
  return mean(d * d);
}

// One inner SGD step.  second_order: the step's gradient is recorded (create_graph), so the
// outer gradient differentiates through it; else it is a constant.
Params adapt(const Params& p, const std::pair<Tensor, Tensor>& support, double alpha,
             bool second_order) {
  const Params g = grad({mse(p, support)}, p, {.create_graph = second_order});
  Params q;
  for (std::size_t i = 0; i < p.size(); ++i) q.push_back(p[i] - g[i] * alpha);
  return q;
}

Params meta_train(bool second_order, std::size_t iterations, std::size_t batch,
                  std::uint64_t seed) {
  Params p = init(seed);
  nn::NamedTensors named;
  for (std::size_t i = 0; i < p.size(); ++i) named.emplace_back(std::to_string(i), p[i]);
  nn::Adam adam(named, {.lr = 1e-3});
  Generator gen(seed + 100);
  for (std::size_t it = 0; it < iterations; ++it) {
    Tape tape;
    TapeGuard recording(tape);
    Tensor outer = scalar(0.0);
    for (std::size_t b = 0; b < batch; ++b) {
      const Task task = draw_task(gen);
      const auto support = draw_points(task, 10, gen), query = draw_points(task, 10, gen);
      outer = outer + mse(adapt(p, support, 0.01, second_order), query);
    }
    (outer / double(batch)).backward();
    adam.step();
    adam.zero_grad();
  }
  return p;
}

// Mean squared error on held-out tasks before and after 1 and 10 inner steps.
void evaluate(const char* name, const Params& trained, std::uint64_t seed) {
  Generator gen(seed + 7777);  // the same tasks for every model
  double before = 0, after1 = 0, after10 = 0;
  constexpr std::size_t tasks = 100;
  for (std::size_t t = 0; t < tasks; ++t) {
    const Task task = draw_task(gen);
    const auto support = draw_points(task, 10, gen), test = draw_points(task, 100, gen);
    Params p;
    for (const Tensor& w : trained) p.push_back(w.detach().set_requires_grad());
    Tape tape;
    TapeGuard recording(tape);
    before += mse(p, test).item();
    for (int step = 1; step <= 10; ++step) {
      p = adapt(p, support, 0.01, false);
      for (Tensor& w : p) w = w.detach().set_requires_grad();
      if (step == 1) after1 += mse(p, test).item();
    }
    after10 += mse(p, test).item();
  }
  std::printf("%-22s %10.3f %10.3f %10.3f\n", name, before / tasks, after1 / tasks,
              after10 / tasks);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("maml_sine: second-order against first-order MAML on few-shot sine regression");
  std::size_t iterations = 10000, batch = 10;
  std::uint64_t seed = 1;
  app.add_option("--iterations", iterations, "outer (meta) steps")->capture_default_str();
  app.add_option("--tasks-per-batch", batch, "tasks per outer step")->capture_default_str();
  app.add_option("--seed", seed, "weights and tasks")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::printf("held-out tasks: MSE on 100 points, after K = 10 examples\n");
  std::printf("%-22s %10s %10s %10s\n", "model", "before", "1 step", "10 steps");
  evaluate("no meta-training", init(seed), seed);
  evaluate("first-order MAML", meta_train(false, iterations, batch, seed), seed);
  evaluate("second-order MAML", meta_train(true, iterations, batch, seed), seed);
  return 0;
}

// Trains a small MLP to separate two interleaved spirals, then draws what it learned.
//
//   build/examples/spiral_mlp [steps] [seed]
//
// Everything here is tapegrad's autograd: a tape records each step's forward pass, backward
// replays it, and a hand-written SGD with momentum updates the parameters.  (The nn issue
// brings Module, Linear and the optimizers; this demo shows the engine underneath them.)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

using namespace tg;

struct Spirals {
  Tensor points;  // (N, 2)
  Ids labels;     // (N)
};

// Two spirals of n points each, arms half a turn apart, with a little noise.
Spirals make_spirals(std::size_t n, Generator& gen) {
  std::vector<double> xy;
  Ids labels = Ids::from_shape({2 * n});
  for (std::size_t k = 0; k < 2; ++k) {
    for (std::size_t i = 0; i < n; ++i) {
      const double t = 0.1 + 0.9 * static_cast<double>(i) / n;
      const double angle = 3.5 * t * std::numbers::pi + k * std::numbers::pi + 0.1 * gen.normal();
      xy.push_back(t * std::cos(angle));
      xy.push_back(t * std::sin(angle));
      labels(k * n + i) = static_cast<std::int64_t>(k);
    }
  }
  return {from_vector(xy, {2 * n, 2}), labels};
}

struct Mlp {
  std::vector<Tensor> params;  // w1 (2, H), b1 (H), w2 (H, H), b2 (H), w3 (H, 2), b3 (2)

  Mlp(std::size_t hidden, Generator& gen) {
    const auto layer = [&](std::size_t in, std::size_t out) {
      params.push_back(randn({in, out}, gen) * std::sqrt(2.0 / in));  // Kaiming-style scale
      params.push_back(zeros({out}));
    };
    layer(2, hidden);
    layer(hidden, hidden);
    layer(hidden, 2);
    for (Tensor& p : params) p.set_requires_grad();
  }

  // x: (N, 2) -> logits (N, 2)
  Tensor forward(const Tensor& x) const {
    Tensor h = gelu(matmul(x, params[0]) + params[1]);
    h = gelu(matmul(h, params[2]) + params[3]);
    return matmul(h, params[4]) + params[5];
  }
};

int main(int argc, char** argv) {
  CLI::App app{"spiral_mlp: an MLP written with raw tensors learns two spirals", "spiral_mlp"};
  app.option_defaults()->always_capture_default();
  int steps = 1500;
  std::uint64_t seed = 0;
  app.add_option("--steps", steps, "SGD steps")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "random seed");
  CLI11_PARSE(app, argc, argv);
  Generator gen(seed);
  const Spirals data = make_spirals(150, gen);
  Mlp model(32, gen);
  std::vector<Array<float>> velocity;
  for (const Tensor& p : model.params) velocity.push_back(xt::zeros_like(p.data<float>()));

  std::printf("Two spirals, 300 points; MLP 2-32-32-2 with GELU; SGD with momentum.\n\n");
  Tape tape;
  for (int step = 1; step <= steps; ++step) {
    tape.clear();
    TapeGuard recording(tape);
    Tensor loss = cross_entropy(model.forward(data.points), data.labels);
    if (step == 1) std::printf("The tape of one training step:\n%s\n", tape.listing().c_str());
    loss.backward();

    NoGradGuard no_grad;
    const float lr = step < steps / 2 ? 0.1f : 0.03f;
    for (std::size_t i = 0; i < model.params.size(); ++i) {
      Tensor& p = model.params[i];
      velocity[i] = 0.9f * velocity[i] + p.grad_data<float>();
      p.data<float>() -= lr * velocity[i];
      p.zero_grad();
    }
    if (step == 1 || step % (steps / 10 > 0 ? steps / 10 : 1) == 0)
      std::printf("step %5d  loss %.4f\n", step, loss.item());
  }

  // Accuracy on the training points, and a map of the learned regions.
  NoGradGuard no_grad;
  const Tensor logits = model.forward(data.points);
  std::size_t correct = 0;
  for (std::size_t i = 0; i < data.labels.size(); ++i) {
    const auto& l = logits.data<float>();
    correct += (l(i, 1) > l(i, 0)) == (data.labels(i) == 1);
  }
  std::printf("\ntraining accuracy: %.1f%%\n\n", 100.0 * correct / data.labels.size());

  constexpr int W = 64, H = 28;  // the square [-1, 1]^2, as characters
  std::vector<double> grid;
  for (int r = 0; r < H; ++r)
    for (int c = 0; c < W; ++c) {
      grid.push_back(-1.0 + 2.0 * (c + 0.5) / W);
      grid.push_back(1.0 - 2.0 * (r + 0.5) / H);
    }
  const Tensor p = softmax(model.forward(from_vector(grid, {W * H, 2})));
  std::vector<std::string> picture(H, std::string(W, ' '));
  for (int i = 0; i < W * H; ++i) picture[i / W][i % W] = p.data<float>()(i, 1) > 0.5 ? '.' : ' ';
  const auto& pts = data.points.data<float>();
  for (std::size_t i = 0; i < data.labels.size(); ++i) {
    const int c = static_cast<int>((pts(i, 0) + 1) / 2 * W),
              r = static_cast<int>((1 - pts(i, 1)) / 2 * H);
    if (c >= 0 && c < W && r >= 0 && r < H) picture[r][c] = data.labels(i) == 1 ? 'o' : 'x';
  }
  std::printf("What the model learned ('.' = region of class o, blank = class x):\n");
  std::printf("+%s+\n", std::string(W, '-').c_str());
  for (const auto& line : picture) std::printf("|%s|\n", line.c_str());
  std::printf("+%s+\n", std::string(W, '-').c_str());
  return 0;
}

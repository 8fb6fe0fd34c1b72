// What higher-order derivatives cost: a Hessian-vector product (forward mode over the gradient)
// against one gradient, for an MLP and a transformer block; and a Jacobian of f: R^n -> R^m by
// forward mode (one jvp per input) and by reverse mode (one vjp per output), for
// (n, m) = (10, 10000) and (10000, 10), and ten times n or m: forward mode's cost grows with n,
// reverse mode's with m.  A benchmark program, not a test:
//
//   build/bench/higher-order-bench [--threads 1] [--repeats 5]
//
// Each figure is the median of --repeats runs, in milliseconds; float32.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

using namespace tg;

namespace {

double median_ms(std::size_t repeats, const std::function<void()>& work) {
  work();  // warm up
  std::vector<double> ms;
  for (std::size_t r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    work();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

std::vector<Tensor> random_like(const std::vector<Tensor>& xs, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> out;
  for (const Tensor& x : xs) out.push_back(randn(x.shape(), gen) * 0.1);
  return out;
}

// The gradient of f over all its inputs, and H v, timed side by side.
void hvp_row(const char* name, const Function& f, const std::vector<Tensor>& params,
             std::size_t repeats) {
  const std::vector<Tensor> v = random_like(params, 99);
  const double grad_ms = median_ms(repeats, [&] { vjp(f, params); });
  const double hvp_ms = median_ms(repeats, [&] { hvp(f, params, v); });
  std::printf("%-34s %10.2f %10.2f %8.2fx\n", name, grad_ms, hvp_ms, hvp_ms / grad_ms);
}

// x: (64, 256) -> tanh(x W1 + b1) -> tanh(. W2 + b2) -> . w3: a scalar, sum of squares.
void mlp(std::size_t repeats) {
  Generator gen(1);
  const Tensor x = randn({64, 256}, gen);
  const std::vector<Tensor> params = {randn({256, 512}, gen) * 0.06, zeros({512}),
                                      randn({512, 512}, gen) * 0.04, zeros({512}),
                                      randn({512, 1}, gen) * 0.04};
  const Function f = [&](const std::vector<Tensor>& p) {
    const Tensor h1 = tanh(linear(x, p[0], p[1]));
    const Tensor h2 = tanh(linear(h1, p[2], p[3]));
    const Tensor y = linear(h2, p[4]);
    return sum(y * y);
  };
  hvp_row("MLP 256-512-512-1, batch 64", f, params, repeats);
}

// A pre-LayerNorm transformer block with fused self-attention and a GELU feed-forward:
// x: (8, 32, 128), 4 heads, ff 512; loss sum of squares of the output.
void transformer_block(std::size_t repeats) {
  Generator gen(2);
  const std::size_t C = 128, F = 512;
  const Tensor x = randn({8, 32, C}, gen);
  const std::vector<Tensor> params = {ones({C}),
                                      zeros({C}),
                                      randn({C, 3 * C}, gen) * 0.08,
                                      zeros({3 * C}),
                                      randn({C, C}, gen) * 0.08,
                                      zeros({C}),
                                      ones({C}),
                                      zeros({C}),
                                      randn({C, F}, gen) * 0.08,
                                      zeros({F}),
                                      randn({F, C}, gen) * 0.04,
                                      zeros({C})};
  const Function f = [&](const std::vector<Tensor>& p) {
    const Tensor a = layer_norm(x, p[0], p[1]);
    const Tensor attended =
        fused_self_attention(linear(a, p[2], p[3]), 4, {.scale = 1.0 / std::sqrt(32.0)});
    const Tensor h = x + linear(attended, p[4], p[5]);
    const Tensor b = layer_norm(h, p[6], p[7]);
    const Tensor y = h + linear(gelu(linear(b, p[8], p[9])), p[10], p[11]);
    return sum(y * y);
  };
  hvp_row("transformer block, (8, 32, 128)", f, params, repeats);
}

// f(x) = tanh(W x), W: (m, n): the Jacobian both ways.
void jacobian_row(std::size_t n, std::size_t m, std::size_t repeats) {
  Generator gen(3);
  const Tensor w = randn({m, n}, gen) * (1.0 / std::sqrt(double(n)));
  const Tensor x = randn({n, 1}, gen);
  const Function f = [&](const std::vector<Tensor>& in) { return tanh(matmul(w, in[0])); };
  const double forward_ms = median_ms(repeats, [&] { jacobian(f, x, JacobianMode::forward); });
  const double reverse_ms = median_ms(repeats, [&] { jacobian(f, x, JacobianMode::reverse); });
  std::printf("n = %5zu, m = %5zu %19s %10.1f %10.1f\n", n, m, "", forward_ms, reverse_ms);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("higher-order-bench: the cost of Hessian-vector products and Jacobians");
  std::size_t threads = 1, repeats = 5;
  app.add_option("--threads", threads, "threads for the kernels")->capture_default_str();
  app.add_option("--repeats", repeats, "timed runs per figure (the median is shown)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);
  std::printf("%-34s %10s %10s %9s\n", "Hessian-vector product", "grad ms", "hvp ms", "ratio");
  mlp(repeats);
  transformer_block(repeats);
  std::printf("\n%-34s %10s %10s\n", "Jacobian of tanh(W x)", "fwd ms", "rev ms");
  const std::size_t few = std::max<std::size_t>(1, repeats / 2);
  for (auto [n, m] :
       {std::pair<std::size_t, std::size_t>{10, 10000}, {100, 10000}, {10000, 10}, {10000, 100}})
    jacobian_row(n, m, few);
  return 0;
}

// A gradient penalty (Gulrajani et al. 2017) through a transformer block with fused attention:
// the critic D(x) = sum(w * block(x)), the penalty P = ||dD/dx||^2, and the gradient of P in
// the block's weights, which takes second derivatives of the fused attention kernel (PyTorch's
// fused attention has none: "derivative for aten::_scaled_dot_product_flash_attention_backward
// is not implemented").  The gradient is checked against central finite differences, in
// float64, along a random direction in all weights and element by element for the attention's
// projections (tg::gradcheck).
//
//   build/examples/gradient_penalty [--seed 1]
#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

using namespace tg;

namespace {

constexpr std::size_t B = 2, T = 5, C = 8, H = 2, F = 16;

// The weights of a pre-LayerNorm block: ln1 (gamma, beta), qkv (W, b), out (W, b), ln2, ff1, ff2.
std::vector<Tensor> block_weights(Generator& gen) {
  const auto w = [&](std::size_t in, std::size_t out) {
    return (randn({in, out}, gen, Dtype::f64) * (1.0 / std::sqrt(double(in)))).set_requires_grad();
  };
  const auto v = [&](std::size_t n, double scale) {
    return (randn({n}, gen, Dtype::f64) * scale + (scale == 0.1 ? 1.0 : 0.0)).set_requires_grad();
  };
  return {v(C, 0.1), v(C, 0.05), w(C, 3 * C), v(3 * C, 0.05), w(C, C), v(C, 0.05),
          v(C, 0.1), v(C, 0.05), w(C, F),     v(F, 0.05),     w(F, C), v(C, 0.05)};
}

// x: (B, T, C) -> (B, T, C): causal fused self-attention, then a GELU feed-forward.
Tensor block(const std::vector<Tensor>& p, const Tensor& x) {
  const AttentionArgs args{.scale = 1.0 / std::sqrt(double(C / H)), .causal = true};
  const Tensor a = layer_norm(x, p[0], p[1]);
  const Tensor h = x + linear(fused_self_attention(linear(a, p[2], p[3]), H, args), p[4], p[5]);
  const Tensor b = layer_norm(h, p[6], p[7]);
  return h + linear(gelu(linear(b, p[8], p[9])), p[10], p[11]);
}

// P(weights) = || d/dx sum(w * block(x)) ||^2, the gradient in x recorded (create_graph) so
// that P can be differentiated in the weights.
Tensor penalty(const std::vector<Tensor>& p, const Tensor& x, const Tensor& w) {
  const Function critic = [&](const std::vector<Tensor>& in) { return sum(block(p, in[0]) * w); };
  const Tensor dx = vjp(critic, {x}, Tensor(), /*create_graph=*/true).grads[0];
  return sum(dx * dx);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("gradient_penalty: second derivatives through fused attention, checked");
  std::uint64_t seed = 1;
  app.add_option("--seed", seed, "weights and inputs")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  Generator gen(seed);
  std::vector<Tensor> p = block_weights(gen);
  const Tensor x = randn({B, T, C}, gen, Dtype::f64), w = randn({B, T, C}, gen, Dtype::f64);

  // The analytic gradient of P in every weight, along a random direction v.
  std::vector<Tensor> g;
  double value = 0;
  {
    Tape tape;
    TapeGuard recording(tape);
    const Tensor pen = penalty(p, x, w);
    value = pen.item();
    g = grad({pen}, p);
  }
  double analytic = 0;
  std::vector<Tensor> v;
  for (std::size_t i = 0; i < p.size(); ++i) {
    v.push_back(randn(p[i].shape(), gen, Dtype::f64));
    analytic += xt::sum(g[i].data<double>() * v[i].data<double>())();
  }
  // (P(p + eps v) - P(p - eps v)) / (2 eps)
  const double eps = 1e-6;
  const auto moved = [&](double s) {
    std::vector<Tensor> q;
    for (std::size_t i = 0; i < p.size(); ++i)
      q.push_back(Tensor(Array<double>(p[i].data<double>() + s * eps * v[i].data<double>())));
    Tape tape;
    TapeGuard recording(tape);
    return penalty(q, x, w).item();
  };
  const double numeric = (moved(1) - moved(-1)) / (2 * eps);
  std::printf("penalty ||dD/dx||^2 = %.6f\n", value);
  std::printf(
      "directional derivative in all %zu weights: analytic %.10f, finite differences "
      "%.10f, relative error %.1e\n",
      p.size(), analytic, numeric, std::abs(analytic - numeric) / std::abs(numeric));

  // Element by element for the attention's projections (qkv and out weights).
  const auto r = gradcheck(
      [&](const std::vector<Tensor>& in) {
        std::vector<Tensor> q = p;
        q[2] = in[0];
        q[4] = in[1];
        return penalty(q, x, w);
      },
      {p[2], p[4]});
  std::printf("%s\n", r.report.c_str());
  const bool ok = r.ok && std::abs(analytic - numeric) <= 1e-6 * std::abs(numeric) + 1e-8;
  std::printf("%s\n", ok ? "gradient of the penalty: correct" : "gradient of the penalty: WRONG");
  return ok ? 0 : 1;
}

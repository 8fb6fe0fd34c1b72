// The seed paper's own experiment (Zheng, Ramasinghe and Lucey 2021, "Rethinking Positional
// Encoding"): a coordinate network regresses a 1-D signal of 512 samples, trained on every
// second sample and tested on the others, and a 2-D image (64 x 64, generated here: rings and
// a checkerboard corner), trained on every second pixel of each row and column, tested on the
// rest.  The coordinates go in through each encoding -- none, random Fourier features,
// learnable Fourier features, Gaussian shifted basis at several sigma -- then an MLP.
// Printed: train and test PSNR, and the stable rank and distance preservation of the encoding
// of every sample; --svg draws the 1-D reconstructions.
//
//   build/examples/coordinate_fit [--steps 2000] [--svg coordinate-fit.svg]
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <numbers>
#include <sstream>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

using namespace tg;
using namespace tg::nn;

namespace {

// The 1-D signal on [0, 1): smooth waves plus a sharp bump and a step, scaled to [0, 1].
Array<double> make_signal(std::size_t n) {
  Array<double> y = Array<double>::from_shape({n, 1});
  for (std::size_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(i) / n, pi = std::numbers::pi;
    y(i, 0) = 0.5 * std::sin(2 * pi * 3 * x) + 0.25 * std::sin(2 * pi * 17 * x + 1) +
              0.15 * std::cos(2 * pi * 41 * x) + 0.6 * std::exp(-std::pow((x - 0.3) / 0.01, 2)) +
              (x > 0.7 ? 0.3 : 0.0);
  }
  return (y - xt::amin(y)()) / (xt::amax(y)() - xt::amin(y)());
}

// The 2-D image (64 x 64) as (N, 1) grey values, N = 64 * 64, row by row, in [0, 1].
Array<double> make_image(std::size_t side) {
  Array<double> img = Array<double>::from_shape({side * side, 1});
  for (std::size_t r = 0; r < side; ++r)
    for (std::size_t c = 0; c < side; ++c) {
      const double y = (r + 0.5) / side - 0.5, x = (c + 0.5) / side - 0.5,
                   radius = std::sqrt(x * x + y * y);
      double v = 0.5 + 0.5 * std::cos(2 * std::numbers::pi * 6 * radius);
      if (r < side / 4 && c < side / 4)
        v = ((r / 4 + c / 4) % 2) ? 1.0 : 0.0;  // a checkerboard corner
      img(r * side + c, 0) = v;
    }
  return img;
}

// The coordinates' encoding: positions (N, M) in [0, 1] -> (N, E), as a tensor a model can learn
// through.
struct Encoding {
  std::string name;
  std::function<Tensor(const Tensor& coords)> encode;
  Module* module = nullptr;  // its learned parameters, if any
};

double psnr(const Array<double>& a, const Array<double>& b) {
  const double mse = xt::mean(xt::square(a - b))();
  return -10 * std::log10(std::max(mse, 1e-12));
}

struct Fit {
  double train_psnr, test_psnr;
  Array<double> prediction;
};

// Trains encoding + MLP(E, 128, 128, 1) with Adam on the training rows; predicts every row.
Fit fit(const Encoding& e, const Array<double>& coords, const Array<double>& target,
        const std::vector<std::size_t>& train, const std::vector<std::size_t>& test, int steps,
        Generator& gen) {
  const auto rows = [](const Array<double>& a, const std::vector<std::size_t>& idx) {
    Array<double> out = Array<double>::from_shape({idx.size(), a.shape()[1]});
    for (std::size_t i = 0; i < idx.size(); ++i)
      for (std::size_t k = 0; k < a.shape()[1]; ++k) out(i, k) = a(idx[i], k);
    return out;
  };
  const Tensor x_train = Tensor(rows(coords, train)).to(Dtype::f32),
               y_train = Tensor(rows(target, train)).to(Dtype::f32);
  const std::size_t E = e.encode(x_train).shape()[1];
  Mlp mlp({.widths = {E, 128, 128, 1}, .activation = Activation::relu}, gen);
  NamedTensors params = mlp.named_parameters();
  if (e.module)
    for (auto& p : e.module->named_parameters())
      params.push_back({"encoding." + p.first, p.second});
  Adam opt(params, {.lr = 2e-3});
  Tape tape;
  for (int s = 0; s < steps; ++s) {
    tape.clear();
    TapeGuard recording(tape);
    Tensor diff = mlp(e.encode(x_train)) - y_train;
    mean(diff * diff).backward();
    opt.step();
    opt.zero_grad();
  }
  NoGradGuard no_grad;
  Array<double> all = xt::cast<double>(mlp(e.encode(Tensor(coords).to(Dtype::f32))).data<float>());
  return {psnr(rows(all, train), rows(target, train)), psnr(rows(all, test), rows(target, test)),
          all};
}

// The encodings compared, for M-d coordinates.
std::vector<Encoding> encodings(std::size_t M, Generator& gen,
                                std::vector<std::unique_ptr<Module>>& keep) {
  std::vector<Encoding> out;
  out.push_back({"none", [](const Tensor& c) { return c; }});
  // Random Fourier features (Tancik et al. 2020): [cos 2 pi B x, sin 2 pi B x], B ~ N(0, 10^2),
  // fixed.
  const Tensor B = randn({M, 128}, gen) * 10.0;
  out.push_back({"random Fourier, s 10", [B](const Tensor& c) {
                   const Tensor proj = matmul(c, B.to(c.dtype())) * (2 * std::numbers::pi);
                   return concat({cos(proj), sin(proj)}, -1);
                 }});
  auto learnable = std::make_unique<FourierPositions>(
      FourierPositionsOptions{
          .dim = 128, .coords = M, .features = 256, .hidden = 128, .gamma = 0.1},
      gen);
  FourierPositions* lf = learnable.get();
  out.push_back({"learnable Fourier", [lf](const Tensor& c) { return lf->encode(c); }, lf});
  keep.push_back(std::move(learnable));
  // The Gaussian basis alone (no learned projection: the MLP reads psi), at several sigma.
  for (double sigma : {0.01, 0.002, 0.0003}) {
    auto g = std::make_unique<GaussianPositions>(
        GaussianPositionsOptions{
            .dim = 1, .coords = M, .centres = M == 1 ? 512u : 64u, .sigma = sigma, .scale = 1},
        gen);
    GaussianPositions* gp = g.get();
    char name[64];
    std::snprintf(name, sizeof name, "Gaussian, sigma %g", sigma);
    out.push_back({name, [gp](const Tensor& c) {
                     return Tensor(gp->basis(c.to(Dtype::f64).data<double>())).to(c.dtype());
                   }});
    keep.push_back(std::move(g));
  }
  return out;
}

void write_svg(const std::string& path, const Array<double>& target,
               const std::vector<std::pair<std::string, Array<double>>>& fits) {
  const double W = 900, H = 140 * fits.size() + 20, n = target.shape()[0];
  std::ostringstream os;
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
     << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' "
        "fill='white'/>\n";
  for (std::size_t f = 0; f < fits.size(); ++f) {
    const double top = 20 + 140 * f;
    os << "<text x='10' y='" << top + 10 << "'>" << fits[f].first
       << " (grey: signal, red: fit)</text>\n";
    for (const auto& [values, color] :
         {std::pair{&target, "#aaa"}, std::pair{&fits[f].second, "#d62728"}}) {
      os << "<polyline fill='none' stroke='" << color << "' stroke-width='1.2' points='";
      for (std::size_t i = 0; i < n; ++i)
        os << 10 + (W - 20) * i / n << ","
           << top + 120 - 100 * std::clamp((*values)(i, 0), -0.1, 1.1) << " ";
      os << "'/>\n";
    }
  }
  os << "</svg>\n";
  std::ofstream(path) << os.str();
}

void run(const char* title, const Array<double>& coords, const Array<double>& target,
         const std::vector<std::size_t>& train, const std::vector<std::size_t>& test, int steps,
         double window, const std::string& svg) {
  Generator gen(1);
  std::vector<std::unique_ptr<Module>> keep;
  std::printf("%s: %zu training and %zu test samples, %d Adam steps\n", title, train.size(),
              test.size(), steps);
  std::printf("%-22s %10s %10s %12s %12s\n", "encoding", "train dB", "test dB", "stable rank",
              "distances");
  std::vector<std::pair<std::string, Array<double>>> fits;
  for (const Encoding& e : encodings(coords.shape()[1], gen, keep)) {
    const Fit f = fit(e, coords, target, train, test, steps, gen);
    Array<double> psi;
    {
      NoGradGuard no_grad;
      psi = e.encode(Tensor(coords).to(Dtype::f32)).to(Dtype::f64).data<double>();
    }
    std::printf("%-22s %10.2f %10.2f %12.2f %12.3f\n", e.name.c_str(), f.train_psnr, f.test_psnr,
                stable_rank(psi), distance_preservation(coords, psi, window));
    fits.push_back({e.name, f.prediction});
  }
  if (!svg.empty()) {
    write_svg(svg, target, fits);
    std::printf("wrote %s\n", svg.c_str());
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "coordinate_fit: positional encodings of a coordinate network, 1-D signal and 2-D image",
      "coordinate_fit"};
  app.option_defaults()->always_capture_default();
  int steps = 2000;
  std::string svg = "coordinate-fit.svg";
  bool image = true;
  app.add_option("--steps", steps, "Adam steps per encoding")->check(CLI::PositiveNumber);
  app.add_option("--svg", svg, "draw the 1-D fits here ('' for none)");
  app.add_flag("!--no-image", image, "skip the 2-D image");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(2);

  const std::size_t n = 512;
  Array<double> x = Array<double>::from_shape({n, 1});
  std::vector<std::size_t> train, test;
  for (std::size_t i = 0; i < n; ++i) {
    x(i, 0) = static_cast<double>(i) / n;
    (i % 2 == 0 ? train : test).push_back(i);
  }
  run("1-D signal", x, make_signal(n), train, test, steps, 4.0 / n, svg);

  if (image) {
    const std::size_t side = 64;
    Array<double> xy = Array<double>::from_shape({side * side, 2});
    std::vector<std::size_t> img_train, img_test;
    for (std::size_t r = 0; r < side; ++r)
      for (std::size_t c = 0; c < side; ++c) {
        xy(r * side + c, 0) = (r + 0.5) / side;
        xy(r * side + c, 1) = (c + 0.5) / side;
        ((r % 2 == 0 && c % 2 == 0) ? img_train : img_test).push_back(r * side + c);
      }
    run("2-D image (64 x 64)", xy, make_image(side), img_train, img_test, steps, 3.0 / side, "");
  }
  return 0;
}

// How attention's cost grows with the sequence length: one forward and backward of softmax
// attention (tg::fused_attention, the (n, n) weights) against kernelized attention with
// relative positions (Luo et al. 2021: random features and Toeplitz products by FFT), for
// n = 256 .. 16384, with the growth exponent of each: the slope of log time (and log memory)
// against log n, fitted by least squares over n >= --fit-from.
//
// Each measurement runs in a child process, so that its peak resident memory is its own.
//
//   build/bench/attention-scaling [--min-n 256] [--max-n 16384] [--heads 1] [--dim 32] [--features
//   64]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

using namespace tg;

namespace {

struct Setup {
  std::size_t heads = 1, dim = 32, features = 64, repeats = 3;
};

// Seconds of the fastest of `repeats` forward + backward passes at length n.
double time_attention(const std::string& kind, std::size_t n, const Setup& s) {
  Generator gen(1);
  const Shape shape{1, s.heads, n, s.dim};
  Tensor q = randn(shape, gen), k = randn(shape, gen), v = randn(shape, gen);
  for (Tensor* t : {&q, &k, &v}) t->set_requires_grad(true);
  const Tensor omega(nn::orthogonal_gaussian_features(s.features, s.dim, gen));
  Tensor bias = randn({s.heads, 2 * n - 1}, gen) * 0.1;  // b_r for every offset
  bias.set_requires_grad(true);
  const Tensor w = randn(shape, gen);  // the loss sum(z w): a gradient of every element
  double best = 1e30;
  for (std::size_t r = 0; r < s.repeats; ++r) {
    Tape tape;
    TapeGuard recording(tape);
    const auto start = std::chrono::steady_clock::now();
    Tensor z;
    if (kind == "softmax") {
      z = fused_attention(q, k, v, {.scale = 1.0 / std::sqrt(double(s.dim))});
    } else {
      z = nn::kernelized_attention(nn::favor_features(q, omega.to(q.dtype()), true),
                                   nn::favor_features(k, omega.to(q.dtype()), false), v, exp(bias),
                                   std::nullopt, false);
    }
    sum(z * w).backward();
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

struct Measure {
  double seconds = 0, peak_mb = 0;
};

// Runs time_attention in a child; the parent reads its time from a pipe and its peak memory
// from wait4.
Measure measure(const std::string& kind, std::size_t n, const Setup& s) {
  int fd[2];
  if (pipe(fd) != 0) throw std::runtime_error("attention-scaling: pipe failed");
  const pid_t child = fork();
  if (child == 0) {
    close(fd[0]);
    const double seconds = time_attention(kind, n, s);
    if (write(fd[1], &seconds, sizeof seconds) != sizeof seconds) _exit(1);
    _exit(0);
  }
  close(fd[1]);
  Measure m;
  const bool got = read(fd[0], &m.seconds, sizeof m.seconds) == sizeof m.seconds;
  close(fd[0]);
  int status = 0;
  rusage usage{};
  wait4(child, &status, 0, &usage);
  if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("attention-scaling: the run of " + kind +
                             " at n = " + std::to_string(n) + " failed");
  m.peak_mb = usage.ru_maxrss / 1024.0;
  return m;
}

// The least-squares slope of log y against log x.
double growth_exponent(const std::vector<double>& x, const std::vector<double>& y) {
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    mx += std::log(x[i]) / x.size(), my += std::log(y[i]) / x.size();
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (std::log(x[i]) - mx) * (std::log(y[i]) - my);
    sxx += std::pow(std::log(x[i]) - mx, 2);
  }
  return sxx > 0 ? sxy / sxx : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "attention-scaling: time and memory of softmax and kernelized attention against sequence "
      "length");
  Setup s;
  std::size_t min_n = 256, max_n = 16384, fit_from = 1024, threads = 0;
  app.add_option("--min-n", min_n, "shortest sequence");
  app.add_option("--max-n", max_n, "longest sequence (lengths double from --min-n)");
  app.add_option("--fit-from", fit_from, "fit the growth exponents over n >= this");
  app.add_option("--heads", s.heads, "heads (batch 1)");
  app.add_option("--dim", s.dim, "head dimension D");
  app.add_option("--features", s.features, "kernelized: random features m");
  app.add_option("--repeats", s.repeats, "passes per measurement; the fastest counts");
  app.add_option("--threads", threads, "threads (0: all cores)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);
  const std::size_t baseline_n = 16;  // a run this small shows the process's own memory

  try {
    const double base_mb = measure("softmax", baseline_n, s).peak_mb;
    std::printf(
        "one forward + backward, batch 1, %zu head(s), D = %zu, m = %zu features, %zu thread(s); "
        "peak memory above a %.0f MB process\n\n",
        s.heads, s.dim, s.features, num_threads(), base_mb);
    std::printf(
        "| n | softmax time | kernelized time | softmax memory | kernelized memory "
        "|\n|---:|---:|---:|---:|---:|\n");
    std::vector<double> ns, t_soft, t_kern, m_soft, m_kern;
    for (std::size_t n = min_n; n <= max_n; n *= 2) {
      const Measure a = measure("softmax", n, s), b = measure("kernelized", n, s);
      std::printf("| %zu | %.4f s | %.4f s | %.1f MB | %.1f MB |\n", n, a.seconds, b.seconds,
                  a.peak_mb - base_mb, b.peak_mb - base_mb);
      std::fflush(stdout);
      if (n >= fit_from) {
        ns.push_back(double(n));
        t_soft.push_back(a.seconds), t_kern.push_back(b.seconds);
        m_soft.push_back(std::max(a.peak_mb - base_mb, 1.0)),
            m_kern.push_back(std::max(b.peak_mb - base_mb, 1.0));
      }
    }
    if (ns.size() >= 2)
      std::printf(
          "\ngrowth exponents over n >= %zu (time ~ n^a, memory ~ n^b):\n"
          "  softmax:    time %.2f, memory %.2f\n  kernelized: time %.2f, memory %.2f\n",
          fit_from, growth_exponent(ns, t_soft), growth_exponent(ns, m_soft),
          growth_exponent(ns, t_kern), growth_exponent(ns, m_kern));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}

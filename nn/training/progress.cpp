#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace tg::nn {

std::string clock_text(double seconds) {
  const auto s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

Progress::Progress(std::size_t epoch, std::size_t epochs, std::size_t steps, bool shown)
    : epoch_(epoch),
      epochs_(epochs),
      steps_(steps),
      shown_(shown),
      tty_(isatty(fileno(stdout))),
      start_(Clock::now()),
      last_(start_) {}

void Progress::update(std::size_t step, double loss, std::size_t tokens) {
  tokens_ += tokens;
  if (!shown_) return;
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  if (since < (tty_ ? 0.2 : 30.0) && step + 1 < steps_) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = elapsed / (step + 1) * (steps_ - step - 1);
  const double rate = tokens_ / std::max(elapsed, 1e-9);
  if (tty_) {
    const int width = 24,
              filled = static_cast<int>(width * (step + 1) / std::max<std::size_t>(steps_, 1));
    std::printf("\r epoch %zu/%zu [%s%s] %zu/%zu  loss %.4f  %.0f tok/s  ETA %s   ", epoch_,
                epochs_, std::string(filled, '=').c_str(), std::string(width - filled, ' ').c_str(),
                step + 1, steps_, loss, rate, clock_text(eta).c_str());
  } else {
    std::printf("epoch %zu/%zu step %zu/%zu loss %.4f %.0f tok/s ETA %s\n", epoch_, epochs_,
                step + 1, steps_, loss, rate, clock_text(eta).c_str());
  }
  std::fflush(stdout);
}

void Progress::finish() {
  if (shown_ && tty_) std::printf("\n");
}

}  // namespace tg::nn

// The training loop's progress line (loop.hpp): how far the epoch is, its loss, tokens/s and
// the time left.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace tg::nn {

// Seconds as a clock reads: "4:05", "1:02:03".
std::string clock_text(double seconds);

// One epoch's progress: a bar redrawn in place on a terminal; a plain line every 30 s otherwise
// (logs, CI, a pipe).
class Progress {
 public:
  // Shows nothing when `shown` is false (every rank but 0 in data-parallel training).
  Progress(std::size_t epoch, std::size_t epochs, std::size_t steps, bool shown);
  // After step `step` (0-based) of the epoch: the epoch's mean loss so far and the step's tokens.
  void update(std::size_t step, double loss, std::size_t tokens);
  void finish();  // ends the terminal's line

 private:
  using Clock = std::chrono::steady_clock;
  std::size_t epoch_, epochs_, steps_, tokens_ = 0;
  bool shown_, tty_;
  Clock::time_point start_, last_;
};

}  // namespace tg::nn

// Learning-rate schedules: the rate for step t = 1, 2, ...  A schedule is a pure function of
// the step, so resuming from a checkpoint needs only the step count.
//
//   for (std::size_t t = 1; ...; ++t) { opt.set_lr(schedule.lr(t)); ... opt.step(); }
#pragma once

#include <cstddef>

namespace tg::nn {

class Schedule {
 public:
  virtual ~Schedule() = default;
  virtual double lr(std::size_t step) const = 0;  // step >= 1
};

class ConstantLr : public Schedule {
 public:
  explicit ConstantLr(double lr);
  double lr(std::size_t step) const override;

 private:
  double lr_;
};

// Linear warm-up to `peak` over `warmup` steps, then decay as 1 / sqrt(step):
//   lr(t) = peak min(t / warmup, sqrt(warmup / t)).
// Vaswani et al. 2017 use peak = 1 / sqrt(d_model warmup): see vaswani().
class WarmupInverseSqrt : public Schedule {
 public:
  WarmupInverseSqrt(double peak, std::size_t warmup);
  static WarmupInverseSqrt vaswani(std::size_t d_model, std::size_t warmup, double scale = 1.0);
  double lr(std::size_t step) const override;

 private:
  double peak_;
  std::size_t warmup_;
};

// Linear warm-up to `peak` over `warmup` steps, then a half cosine down to `floor` at `total`
// steps (and `floor` after that).
class WarmupCosine : public Schedule {
 public:
  WarmupCosine(double peak, std::size_t warmup, std::size_t total, double floor = 0.0);
  double lr(std::size_t step) const override;

 private:
  double peak_;
  std::size_t warmup_, total_;
  double floor_;
};

}  // namespace tg::nn

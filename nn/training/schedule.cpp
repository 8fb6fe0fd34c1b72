#include "schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "../../autograd/shape.hpp"

namespace tg::nn {
namespace {

void check_step(const char* who, std::size_t step) {
  if (step == 0) fail(who, "steps count from 1");
}

void check_rate(const char* who, double lr) {
  if (!(lr >= 0) || !std::isfinite(lr))
    fail(who, "the rate must be finite and >= 0, got " + std::to_string(lr));
}

}  // namespace

ConstantLr::ConstantLr(double lr) : lr_(lr) { check_rate("ConstantLr", lr); }

double ConstantLr::lr(std::size_t step) const {
  check_step("ConstantLr", step);
  return lr_;
}

WarmupInverseSqrt::WarmupInverseSqrt(double peak, std::size_t warmup)
    : peak_(peak), warmup_(warmup) {
  check_rate("WarmupInverseSqrt", peak);
  if (warmup == 0) fail("WarmupInverseSqrt", "warmup must be at least 1 step");
}

WarmupInverseSqrt WarmupInverseSqrt::vaswani(std::size_t d_model, std::size_t warmup,
                                             double scale) {
  return WarmupInverseSqrt(scale / std::sqrt(static_cast<double>(d_model) * warmup), warmup);
}

double WarmupInverseSqrt::lr(std::size_t step) const {
  check_step("WarmupInverseSqrt", step);
  const double t = static_cast<double>(step), w = static_cast<double>(warmup_);
  return peak_ * std::min(t / w, std::sqrt(w / t));
}

WarmupCosine::WarmupCosine(double peak, std::size_t warmup, std::size_t total, double floor)
    : peak_(peak), warmup_(warmup), total_(total), floor_(floor) {
  check_rate("WarmupCosine", peak);
  check_rate("WarmupCosine", floor);
  if (total <= warmup)
    fail("WarmupCosine", "total (" + std::to_string(total) + ") must exceed warmup (" +
                             std::to_string(warmup) + ")");
}

double WarmupCosine::lr(std::size_t step) const {
  check_step("WarmupCosine", step);
  if (step <= warmup_) return peak_ * static_cast<double>(step) / std::max<std::size_t>(warmup_, 1);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_) / (total_ - warmup_));
  return floor_ + (peak_ - floor_) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
}

}  // namespace tg::nn

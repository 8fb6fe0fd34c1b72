#include "average.hpp"

#include <algorithm>
#include <cmath>

#include "../../autograd/runtime/kernels.hpp"

namespace tg::nn {

ParameterAverage::ParameterAverage(NamedTensors params, double decay)
    : params_(std::move(params)), decay_(decay) {
  if (!(decay >= 0 && decay < 1))
    fail("ParameterAverage", "decay must be in [0, 1), got " + std::to_string(decay));
  for (const auto& [name, p] : params_) {
    if (!p.defined()) fail("ParameterAverage", "parameter '" + name + "' is undefined");
    averages_.push_back(p.impl()->value);  // a copy: the average starts at the initial weights
  }
}

void ParameterAverage::update() {
  ++steps_;
  const double d = std::min(decay_, (1.0 + steps_) / (10.0 + steps_));
  for (std::size_t i = 0; i < params_.size(); ++i)
    dispatch(params_[i].second.dtype(), [&]<class T>() {
      const T* p = params_[i].second.data<T>().data();
      T* a = std::get<Array<T>>(averages_[i]).data();
      const T keep = static_cast<T>(d), take = static_cast<T>(1 - d);
      parallel_range(params_[i].second.numel(), [&](std::size_t lo, std::size_t hi) {
        for (std::size_t j = lo; j < hi; ++j) a[j] = keep * a[j] + take * p[j];
      });
    });
}

void ParameterAverage::swap() {
  for (std::size_t i = 0; i < params_.size(); ++i)
    std::swap(params_[i].second.impl()->value, averages_[i]);
}

StateDict ParameterAverage::state() const {
  StateDict out;
  for (std::size_t i = 0; i < params_.size(); ++i) out[params_[i].first] = averages_[i];
  out["steps"] = Array<double>(static_cast<double>(steps_));
  out["decay"] = Array<double>(decay_);
  return out;
}

void ParameterAverage::load_state(const StateDict& state) {
  const char* who = "ParameterAverage::load_state";
  for (const auto& [name, p] : params_) state_entry(who, state, name, p);
  const double steps = state_scalar(who, state, "steps");
  const double decay = state_scalar(who, state, "decay");
  if (decay != decay_)
    fail(who, "the averages were kept with decay " + std::to_string(decay) +
                  ", this average's decay is " + std::to_string(decay_));
  if (state.size() != params_.size() + 2)
    fail(who, "expected " + std::to_string(params_.size()) +
                  " averages, 'steps' and 'decay', got " + std::to_string(state.size()) +
                  " entries");
  // Everything checked: now assign.
  for (std::size_t i = 0; i < params_.size(); ++i) averages_[i] = state.at(params_[i].first);
  steps_ = static_cast<std::size_t>(steps);
}

}  // namespace tg::nn

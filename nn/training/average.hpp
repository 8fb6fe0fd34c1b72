// Parameter averaging (Polyak and Juditsky 1992), as an exponential moving average kept beside
// the parameters and updated after every optimizer step:
//
//   t = 1, 2, ...:   d = min(decay, (1 + t) / (10 + t)),   avg = d avg + (1 - d) p
//
// (the early steps average faster, so the first weights do not linger).  Evaluating with the
// averages instead of the last step's weights smooths out the noise of the last updates; it
// costs one copy of the parameters.
//
//   tg::nn::ParameterAverage average(model.named_parameters(), 0.999);
//   ... opt.step(); average.update();
//   average.swap();  evaluate(model);  average.swap();   // evaluate with the averages, then back
#pragma once

#include "../module.hpp"
#include "optim.hpp"

namespace tg::nn {

class ParameterAverage {
 public:
  ParameterAverage(NamedTensors params, double decay);

  void update();  // after each optimizer step
  // Exchanges the parameters' values with the averages (in place; tensors held elsewhere see it).
  // Call it again to swap back.
  void swap();
  double decay() const { return decay_; }
  std::size_t steps() const { return steps_; }

  // "<parameter name>" for every average, "steps" and "decay"; for checkpoints.
  StateDict state() const;
  // Checks every name, shape and dtype, and that the decay is this one's, first; on any
  // mismatch throws and changes nothing.
  void load_state(const StateDict& state);

 private:
  NamedTensors params_;
  std::vector<AnyArray> averages_;
  double decay_;
  std::size_t steps_ = 0;
};

}  // namespace tg::nn

// Ensemble: several copies of one model, each initialised from its own draws of the generator,
// trained side by side on the same batches (the loss is the mean of the members' losses) and
// predicting together (the mean of their probabilities).  Members start from different weights
// and see different dropout masks, so they make different mistakes, and the mean of their
// predictions is more often right than any one of them; on small data sets this is the most
// reliable gain there is, at N times the compute.
//
//   models::Ensemble<models::Tagger> net(2, options, gen);
//   train net (it is a Module);   for (Tagger* m : net.members()) ... m->forward(ids) ...
//   Tensor p = net.mean([&](Tagger& m) { return softmax(m.forward(ids)); });
//
// One member is the model itself (its parameters keep their names, "embed.weight"); with more,
// member i's names start with "i." ("0.embed.weight", "1.embed.weight", ...).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../autograd/ops.hpp"
#include "../nn/module.hpp"

namespace tg::models {

template <class Model>
class Ensemble : public nn::Module {
 public:
  template <class Options>
  Ensemble(std::size_t members, const Options& options, Generator& gen) {
    if (members == 0) fail("Ensemble", "needs at least one member");
    for (std::size_t i = 0; i < members; ++i) {
      owned_.push_back(std::make_unique<Model>(options, gen));
      members_.push_back(owned_.back().get());
      if (members == 1) adopt(*owned_.back());
      else register_module(std::to_string(i), *owned_.back());
    }
  }

  const std::vector<Model*>& members() const { return members_; }
  std::size_t size() const { return members_.size(); }
  Model& front() const { return *members_.front(); }

  // The members' mean of f(member): of their losses in training, of their probabilities in
  // prediction.  f(m) returns a Tensor; every member's must have the same shape.
  template <class F>
  Tensor mean(F&& f) const {
    Tensor total;
    for (Model* m : members_) {
      const Tensor t = f(*m);
      total = total.defined() ? total + t : t;
    }
    return members_.size() == 1 ? total : total * (1.0 / members_.size());
  }

 private:
  std::vector<std::unique_ptr<Model>> owned_;
  std::vector<Model*> members_;
};

// Bagging (Breiman 1996), the sampling kind: member `member` trains on example `example` when
// this says so -- each member keeps its own random `fraction` of the examples, fixed by the
// seed.  Members that learned from different samples disagree more, which is what makes their
// mean better than each of them.
inline bool in_bag(std::uint64_t seed, std::size_t member, std::size_t example, double fraction) {
  if (fraction >= 1) return true;
  std::uint64_t z =
      seed ^ (0x9E3779B97F4A7C15ULL * (member + 1)) ^ (0xD1B54A32D192ED03ULL * (example + 1));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;  // SplitMix64's finaliser
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53 < fraction;
}

}  // namespace tg::models

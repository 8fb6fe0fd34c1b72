// Generator: an explicit, seeded source of random numbers.  Everything random in tapegrad
// (initialisation, dropout, shuffling) takes one, so the same seed gives the same numbers,
// bit for bit, on every platform (the distributions are written here, not left to the
// standard library, whose distributions differ between implementations).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../tensor.hpp"

namespace tg {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) { seed_with(seed); }
  void seed_with(std::uint64_t seed);

  std::uint64_t next_u64();              // xoshiro256** (Blackman and Vigna 2018)
  double uniform();                      // [0, 1) with 53 random bits
  double normal();                       // standard normal (Box-Muller)
  std::uint64_t below(std::uint64_t n);  // uniform in [0, n), n > 0

  // The whole state as text, and back (for checkpoints that resume exactly).
  std::string state() const;
  void set_state(const std::string& state);
  // The same state: the same numbers to come.
  bool operator==(const Generator& other) const = default;

 private:
  void check_replayable() const;  // see detail::replayable below

  std::uint64_t s_[4];
  double spare_normal_ = 0;
  bool has_spare_ = false;
};

namespace detail {
// While activation checkpointing runs a segment (tg::checkpoint, activation_checkpoint.hpp), the
// generators it replays in backward; a draw from any other generator on this thread throws, since
// backward could not draw the same numbers again.  nullptr: any generator may draw.
inline thread_local const std::vector<Generator*>* replayable = nullptr;
}  // namespace detail

// Random tensors (new leaves).
Tensor randn(const Shape& shape, Generator& gen, Dtype dtype = Dtype::f32);  // N(0, 1)
Tensor rand_uniform(const Shape& shape, double low, double high, Generator& gen,
                    Dtype dtype = Dtype::f32);

}  // namespace tg

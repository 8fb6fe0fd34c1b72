#include "generator.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

namespace tg {
namespace {

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

void Generator::seed_with(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);  // spreads any seed over the 256-bit state
  has_spare_ = false;
}

void Generator::check_replayable() const {
  const auto& gens = *detail::replayable;
  if (std::find(gens.begin(), gens.end(), this) == gens.end())
    fail("checkpoint",
         "the segment drew from a generator that is not among the " + std::to_string(gens.size()) +
             " it was given to replay (CheckpointOptions::generators), so backward would draw "
             "other numbers (other dropout masks); pass every generator the segment draws from "
             "(nn::checkpoint passes a module's)");
}

std::uint64_t Generator::next_u64() {
  if (detail::replayable) check_replayable();
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  if (has_spare_) {
    if (detail::replayable) check_replayable();
    has_spare_ = false;
    return spare_normal_;
  }
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  spare_normal_ = r * std::sin(2.0 * std::numbers::pi * u2);
  has_spare_ = true;
  return r * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t Generator::below(std::uint64_t n) {
  if (n == 0) fail("Generator::below", "n must be positive");
  // Rejection sampling: no modulo bias.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t x = next_u64();
  while (x >= limit) x = next_u64();
  return x % n;
}

std::string Generator::state() const {
  std::ostringstream os;
  os << s_[0] << ' ' << s_[1] << ' ' << s_[2] << ' ' << s_[3] << ' ' << has_spare_ << ' ';
  os.precision(17);
  os << std::hexfloat << spare_normal_;
  return os.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream is(state);
  std::uint64_t s[4];
  bool spare = false;
  std::string spare_text;
  if (!(is >> s[0] >> s[1] >> s[2] >> s[3] >> spare >> spare_text))
    fail("Generator::set_state", "not a generator state: '" + state + "'");
  std::copy(s, s + 4, s_);
  has_spare_ = spare;
  spare_normal_ = std::strtod(spare_text.c_str(), nullptr);
}

Tensor randn(const Shape& shape, Generator& gen, Dtype dtype) {
  return dispatch(dtype, [&]<class T>() {
    Array<T> a = Array<T>::from_shape(shape);
    for (auto& v : a) v = static_cast<T>(gen.normal());
    return Tensor(std::move(a));
  });
}

Tensor rand_uniform(const Shape& shape, double low, double high, Generator& gen, Dtype dtype) {
  if (!(low < high))
    fail("rand_uniform",
         "needs low < high, got low " + std::to_string(low) + ", high " + std::to_string(high));
  return dispatch(dtype, [&]<class T>() {
    Array<T> a = Array<T>::from_shape(shape);
    for (auto& v : a) v = static_cast<T>(low + (high - low) * gen.uniform());
    return Tensor(std::move(a));
  });
}

}  // namespace tg

#include "init.hpp"

namespace tg::nn::init {
namespace {

// Sets every element to draw(), in row-major order, in the tensor's own dtype.
template <class Draw>
void fill(Tensor& t, Draw draw) {
  dispatch(t.dtype(), [&]<class T>() {
    for (T& v : t.data<T>()) v = static_cast<T>(draw());
  });
}

void check_fans(const char* op, const Tensor& t) {
  if (!t.defined() || t.dim() < 1 || t.numel() == 0)
    fail(op, "needs a non-empty tensor of at least 1 dim");
}

}  // namespace

std::size_t fan_out(const Tensor& t) { return t.dim() == 0 ? 1 : t.shape().back(); }
std::size_t fan_in(const Tensor& t) { return t.dim() < 2 ? 1 : t.numel() / fan_out(t); }

void uniform(Tensor& t, double low, double high, Generator& gen) {
  if (!(low <= high)) fail("init::uniform", "needs low <= high");
  fill(t, [&] { return low + (high - low) * gen.uniform(); });
}

void normal(Tensor& t, double mean, double std, Generator& gen) {
  if (!(std >= 0)) fail("init::normal", "needs std >= 0");
  fill(t, [&] { return mean + std * gen.normal(); });
}

void constant(Tensor& t, double value) {
  fill(t, [&] { return value; });
}

void xavier_uniform(Tensor& t, Generator& gen, double gain) {
  check_fans("init::xavier_uniform", t);
  const double a = gain * std::sqrt(6.0 / static_cast<double>(fan_in(t) + fan_out(t)));
  uniform(t, -a, a, gen);
}

void xavier_normal(Tensor& t, Generator& gen, double gain) {
  check_fans("init::xavier_normal", t);
  normal(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in(t) + fan_out(t))), gen);
}

void kaiming_uniform(Tensor& t, Generator& gen, double gain) {
  check_fans("init::kaiming_uniform", t);
  const double b = gain * std::sqrt(3.0 / static_cast<double>(fan_in(t)));
  uniform(t, -b, b, gen);
}

void kaiming_normal(Tensor& t, Generator& gen, double gain) {
  check_fans("init::kaiming_normal", t);
  normal(t, 0.0, gain / std::sqrt(static_cast<double>(fan_in(t))), gen);
}

}  // namespace tg::nn::init

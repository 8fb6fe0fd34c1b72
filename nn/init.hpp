// Parameter initialisation, in place, from an explicit seeded generator: the same seed gives
// the same model bit for bit.  Values are drawn in row-major order.
//
// Fans: tapegrad's weights are (in, out) (y = x W), so fan_in = the product of all dims but the
// last, fan_out = the last dim.
#pragma once

#include <cmath>

#include "../autograd/runtime/generator.hpp"

namespace tg::nn::init {

void uniform(Tensor& t, double low, double high, Generator& gen);
void normal(Tensor& t, double mean, double std, Generator& gen);
void constant(Tensor& t, double value);

// Glorot and Bengio 2010: keeps activation variance across layers of tanh-like units.
// uniform: U(-a, a), a = gain sqrt(6 / (fan_in + fan_out));  normal: std = gain sqrt(2 / (fan_in +
// fan_out))
void xavier_uniform(Tensor& t, Generator& gen, double gain = 1.0);
void xavier_normal(Tensor& t, Generator& gen, double gain = 1.0);

// He et al. 2015, for ReLU-like units (gain sqrt(2)).
// uniform: U(-b, b), b = gain sqrt(3 / fan_in);  normal: std = gain / sqrt(fan_in)
void kaiming_uniform(Tensor& t, Generator& gen, double gain = std::sqrt(2.0));
void kaiming_normal(Tensor& t, Generator& gen, double gain = std::sqrt(2.0));

std::size_t fan_in(const Tensor& t);
std::size_t fan_out(const Tensor& t);

}  // namespace tg::nn::init

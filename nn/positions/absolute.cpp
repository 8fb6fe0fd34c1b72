#include "absolute.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "../../autograd/ops.hpp"
#include "../init.hpp"

namespace tg::nn {

PositionalEncoding::PositionalEncoding(std::size_t dim) : dim_(dim) {
  if (dim == 0) fail("PositionalEncoding", "dim must be positive");
}

void PositionalEncoding::check_positions(const char* who, const Tensor& positions) const {
  if (!positions.defined() || positions.dim() != 2 || positions.shape()[1] != coordinate_dims())
    fail(who, "positions must be (T, " + std::to_string(coordinate_dims()) + "), got " +
                  (positions.defined() ? shape_str(positions.shape()) : "undefined"));
}

Tensor PositionalEncoding::forward(const Tensor& x, std::size_t offset) {
  if (!x.defined() || x.dim() != 3 || x.shape()[2] != dim_)
    fail("PositionalEncoding", "x must be (B, T, C) with C = " + std::to_string(dim_) + ", got " +
                                   (x.defined() ? shape_str(x.shape()) : "undefined"));
  if (coordinate_dims() != 1)
    fail("PositionalEncoding", "this encoding takes " + std::to_string(coordinate_dims()) +
                                   "-d positions: call encode(positions) with them");
  const std::size_t T = x.shape()[1];
  Tensor positions = add(reshape(arange(T, x.dtype()), {-1, 1}), static_cast<double>(offset));
  return x + encode(positions);  // (B, T, C) + (T, C)
}

// ---- sinusoidal ------------------------------------------------------------------------

SinusoidalPositions::SinusoidalPositions(std::size_t dim, double base)
    : PositionalEncoding(dim), base_(base) {
  if (!(base > 1)) fail("SinusoidalPositions", "base must be > 1");
}

Tensor SinusoidalPositions::encode(const Tensor& positions) {
  check_positions("SinusoidalPositions", positions);
  const std::size_t T = positions.shape()[0], C = dim();
  return dispatch(positions.dtype(), [&]<class T_>() {
    const Array<T_>& p = positions.data<T_>();
    Array<T_> pe = Array<T_>::from_shape({T, C});
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t i = 0; i < C; ++i) {
        const double freq = std::pow(base_, -static_cast<double>(i - i % 2) / C);  // base^(-2k/C)
        const double angle = static_cast<double>(p(t, 0)) * freq;
        pe(t, i) = static_cast<T_>(i % 2 == 0 ? std::sin(angle) : std::cos(angle));
      }
    return Tensor(std::move(pe));
  });
}

// ---- CAPE ------------------------------------------------------------------------------

CapePositions::CapePositions(const CapeOptions& o, Generator& gen)
    : PositionalEncoding(o.dim), options_(o), sinusoid_(o.dim, o.base), gen_(&gen) {
  if (!(o.global_shift >= 0 && o.local_shift >= 0 && o.max_scale >= 1))
    fail("CapePositions", "shifts must be >= 0 and max_scale >= 1");
  draws_from(gen);  // the shifts and scales of training
}

Tensor CapePositions::encode(const Tensor& positions) { return sinusoid_.encode(positions); }

Tensor CapePositions::forward(const Tensor& x, std::size_t offset) {
  if (!is_training()) return PositionalEncoding::forward(x, offset);  // plain positions
  if (!x.defined() || x.dim() != 3 || x.shape()[2] != dim())
    fail("CapePositions", "x must be (B, T, C) with C = " + std::to_string(dim()) + ", got " +
                              (x.defined() ? shape_str(x.shape()) : "undefined"));
  const std::size_t B = x.shape()[0], T = x.shape()[1];
  const auto between = [&](double a) { return a * (2 * gen_->uniform() - 1); };  // U[-a, a]
  Array<double> p = Array<double>::from_shape({B * T, 1});
  for (std::size_t b = 0; b < B; ++b) {
    const double shift = between(options_.global_shift);
    const double scale = std::exp(between(std::log(options_.max_scale)));
    for (std::size_t t = 0; t < T; ++t)
      p(b * T + t, 0) =
          scale * (static_cast<double>(offset + t) + shift + between(options_.local_shift));
  }
  const Tensor pe = encode(Tensor(p).to(x.dtype()));  // (B T, C)
  return x + reshape(pe, {static_cast<std::int64_t>(B), static_cast<std::int64_t>(T),
                          static_cast<std::int64_t>(dim())});
}

// ---- learned table ---------------------------------------------------------------------

LearnedPositions::LearnedPositions(std::size_t max_len, std::size_t dim, Generator& gen)
    : PositionalEncoding(dim), max_len_(max_len) {
  if (max_len == 0) fail("LearnedPositions", "max_len must be positive");
  table = register_parameter("table", zeros({max_len, dim}));
  init::normal(table, 0.0, 0.02, gen);
}

Tensor LearnedPositions::encode(const Tensor& positions) {
  check_positions("LearnedPositions", positions);
  Ids ids = Ids::from_shape({positions.shape()[0]});
  for (std::size_t t = 0; t < ids.size(); ++t) {
    const double p =
        dispatch(positions.dtype(), [&]<class T>() { return double(positions.data<T>()(t, 0)); });
    if (p < 0 || p != std::floor(p))
      fail("LearnedPositions", "position " + std::to_string(p) + " is not a whole number >= 0");
    if (p >= static_cast<double>(max_len_))
      fail("LearnedPositions", "position " + std::to_string(static_cast<std::size_t>(p)) +
                                   " is beyond the table's maximum length " +
                                   std::to_string(max_len_) + " (positions 0 to " +
                                   std::to_string(max_len_ - 1) +
                                   "); use a longer table or a scheme that extrapolates");
    ids(t) = static_cast<std::int64_t>(p);
  }
  return embedding(table, ids);
}

// ---- MLP of the position ---------------------------------------------------------------

MlpPositions::MlpPositions(const MlpPositionsOptions& options, Generator& gen)
    : PositionalEncoding(options.dim),
      fc1(1, options.hidden, gen),
      fc2(options.hidden, options.dim, gen),
      scale_(options.scale) {
  if (!(options.scale > 0)) fail("MlpPositions", "scale must be > 0");
  register_module("fc1", fc1);
  register_module("fc2", fc2);
}

Tensor MlpPositions::encode(const Tensor& positions) {
  check_positions("MlpPositions", positions);
  return fc2(gelu(fc1(positions * (1.0 / scale_))));
}

// ---- learnable Fourier features --------------------------------------------------------

FourierPositions::FourierPositions(const FourierPositionsOptions& options, Generator& gen)
    : PositionalEncoding(options.dim),
      wr(LinearOptions{std::max<std::size_t>(options.coords, 1),
                       std::max<std::size_t>(options.features / 2, 1), false},
         gen),
      fc1(std::max<std::size_t>(options.features, 1), std::max<std::size_t>(options.hidden, 1),
          gen),
      fc2(std::max<std::size_t>(options.hidden, 1),
          options.dim / std::max<std::size_t>(options.groups, 1), gen),
      options_(options) {
  if (options.coords == 0 || options.groups == 0 || options.features < 2 ||
      options.features % 2 != 0 || options.hidden == 0 || options.dim % options.groups != 0)
    fail("FourierPositions", "needs coords >= 1, an even features >= 2, hidden >= 1, and dim (" +
                                 std::to_string(options.dim) + ") divisible by groups (" +
                                 std::to_string(options.groups) + ")");
  if (!(options.gamma > 0)) fail("FourierPositions", "gamma must be > 0");
  init::normal(wr.weight, 0.0, 1.0 / options.gamma, gen);  // W_r ~ N(0, gamma^-2)
  register_module("wr", wr);
  register_module("fc1", fc1);
  register_module("fc2", fc2);
}

Tensor FourierPositions::encode(const Tensor& positions) {
  check_positions("FourierPositions", positions);
  const auto T = static_cast<std::int64_t>(positions.shape()[0]);
  const auto G = static_cast<std::int64_t>(options_.groups),
             M = static_cast<std::int64_t>(options_.coords);
  Tensor x = reshape(positions, {T, G, M});  // (T, G, M)
  Tensor proj = wr(x);                       // (T, G, F/2)
  Tensor r = concat({cos(proj), sin(proj)}, -1) *
             (1.0 / std::sqrt(static_cast<double>(options_.features)));
  Tensor y = fc2(gelu(fc1(r)));                              // (T, G, C / G)
  return reshape(y, {T, static_cast<std::int64_t>(dim())});  // (T, C)
}

// ---- Gaussian shifted basis --------------------------------------------------------------

GaussianPositions::GaussianPositions(const GaussianPositionsOptions& o, Generator& gen)
    : PositionalEncoding(o.dim),
      proj(LinearOptions{std::max<std::size_t>(o.coords * o.centres, 1), o.dim, false}, gen),
      options_(o) {
  if (o.coords == 0 || o.centres < 2 || !(o.sigma > 0) || !(o.scale > 0))
    fail("GaussianPositions", "needs coords >= 1, centres >= 2, sigma > 0 and scale > 0");
  register_module("proj", proj);
}

Array<double> GaussianPositions::basis(const Array<double>& positions) const {
  const std::size_t T = positions.shape()[0], M = options_.coords, K = options_.centres;
  Array<double> psi = Array<double>::from_shape({T, M * K});
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t m = 0; m < M; ++m) {
      const double x = positions(t, m) / options_.scale;
      double norm = 0;
      for (std::size_t k = 0; k < K; ++k) {
        const double d = x - static_cast<double>(k) / (K - 1);
        psi(t, m * K + k) = std::exp(-d * d / (2 * options_.sigma * options_.sigma));
        norm += psi(t, m * K + k) * psi(t, m * K + k);
      }
      norm = std::sqrt(std::max(norm, 1e-300));
      for (std::size_t k = 0; k < K; ++k) psi(t, m * K + k) /= norm;
    }
  return psi;
}

Tensor GaussianPositions::encode(const Tensor& positions) {
  check_positions("GaussianPositions", positions);
  const Array<double> psi =
      basis(positions.to(Dtype::f64).data<double>());  // constant: no gradient to positions
  return proj(Tensor(psi).to(positions.dtype()));      // (T, M K) -> (T, C)
}

// ---- by name ---------------------------------------------------------------------------

std::unique_ptr<PositionalEncoding> make_positional_encoding(const PositionOptions& o,
                                                             Generator& gen) {
  if (position_kind(o.scheme) != PositionKind::absolute)
    return nullptr;  // nothing to add to the input
  switch (o.scheme) {
    case PositionScheme::sinusoidal: return std::make_unique<SinusoidalPositions>(o.dim);
    case PositionScheme::learned: return std::make_unique<LearnedPositions>(o.max_len, o.dim, gen);
    case PositionScheme::mlp:
      return std::make_unique<MlpPositions>(MlpPositionsOptions{o.dim, o.mlp_hidden, o.mlp_scale},
                                            gen);
    case PositionScheme::fourier:
      return std::make_unique<FourierPositions>(
          FourierPositionsOptions{.dim = o.dim,
                                  .features = o.fourier_features,
                                  .hidden = o.fourier_hidden,
                                  .gamma = o.fourier_gamma},
          gen);
    case PositionScheme::cape:
      return std::make_unique<CapePositions>(CapeOptions{.dim = o.dim}, gen);
    case PositionScheme::gaussian:
      return std::make_unique<GaussianPositions>(
          GaussianPositionsOptions{
              .dim = o.dim, .sigma = 1.0 / 128, .scale = static_cast<double>(o.max_len)},
          gen);
    default: break;
  }
  fail("make_positional_encoding", std::string("the absolute scheme '") + enum_name(o.scheme) +
                                       "' has no module: add its case here");
}

}  // namespace tg::nn

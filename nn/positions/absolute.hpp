// Absolute positional encodings: the schemes that add an encoding of each position to the
// input (scheme.hpp says which).  Each is a module with the same two calls:
//
//   P = pe.encode(positions);   // positions (T, M) -> encodings (T, C)
//   x = pe.forward(x, offset);  // x (B, T, C) + the encodings of positions offset .. offset + T-1
//
// so any one can be swapped for another (see make_positional_encoding).  The other schemes live
// inside self-attention (in_attention.hpp, ../attention/multihead.hpp).
#pragma once

#include <memory>
#include <string>

#include "../../autograd/runtime/generator.hpp"
#include "../linear.hpp"
#include "../module.hpp"
#include "scheme.hpp"

namespace tg::nn {

class PositionalEncoding : public Module {
 public:
  // positions: (T, M) coordinates -> (T, C)
  virtual Tensor encode(const Tensor& positions) = 0;
  // x: (B, T, C) -> x + encode(offset, ..., offset + T - 1)   (sequences: M = 1)
  virtual Tensor forward(const Tensor& x, std::size_t offset = 0);
  Tensor operator()(const Tensor& x, std::size_t offset = 0) { return forward(x, offset); }
  std::size_t dim() const { return dim_; }                   // C
  virtual std::size_t coordinate_dims() const { return 1; }  // M

 protected:
  explicit PositionalEncoding(std::size_t dim);
  // Checks positions: (T, M) against this encoding's M, naming `who`.
  void check_positions(const char* who, const Tensor& positions) const;

 private:
  std::size_t dim_;
};

// Vaswani et al. 2017, fixed:  PE[p, 2i] = sin(p / base^(2i/C)),  PE[p, 2i+1] = cos(p /
// base^(2i/C)).
class SinusoidalPositions : public PositionalEncoding {
 public:
  explicit SinusoidalPositions(std::size_t dim, double base = 10000.0);
  Tensor encode(const Tensor& positions) override;

 private:
  double base_;
};

// CAPE (Likhomanenko et al. 2021): the sinusoidal encoding of continuous positions, augmented
// in training only.  Each sequence's positions p are moved to
//   p' = lambda (p + Delta + eps_p),  Delta ~ U[-global_shift, global_shift] per sequence,
//   eps_p ~ U[-local_shift, local_shift] per token,  log lambda ~ U[-log max_scale, log max_scale]
// (the defaults are the paper's for text), drawn from the module's generator, so the model
// cannot lean on exact absolute positions.  In evaluation it is the sinusoidal encoding.
struct CapeOptions {
  std::size_t dim = 0;  // C
  double global_shift = 5, local_shift = 0.25, max_scale = 1.03;
  double base = 10000;
};

class CapePositions : public PositionalEncoding {
 public:
  CapePositions(const CapeOptions& options, Generator& gen);
  Tensor encode(const Tensor& positions) override;  // the plain sinusoid of the given positions
  // x: (B, T, C) -> x + the encodings of each sequence's augmented positions (training), or of
  // offset .. offset + T - 1 (evaluation).
  Tensor forward(const Tensor& x, std::size_t offset = 0) override;

 private:
  CapeOptions options_;
  SinusoidalPositions sinusoid_;
  Generator* gen_;
};

// A learned vector per position 0 .. max_len - 1 (as in BERT).  Positions beyond the table are
// an error: it has nothing to say about them.
class LearnedPositions : public PositionalEncoding {
 public:
  LearnedPositions(std::size_t max_len, std::size_t dim, Generator& gen);
  Tensor encode(const Tensor& positions) override;
  Tensor table;  // (max_len, C)

 private:
  std::size_t max_len_;
};

// A small MLP of the (scaled) position, trained with the model:  MLP(p / scale), with
// Linear(1, hidden), GELU, Linear(hidden, C).  Defined for any position.
struct MlpPositionsOptions {
  std::size_t dim = 0;  // C
  std::size_t hidden = 64;
  double scale = 512.0;  // positions are divided by it
};

class MlpPositions : public PositionalEncoding {
 public:
  MlpPositions(const MlpPositionsOptions& options, Generator& gen);
  Tensor encode(const Tensor& positions) override;  // (T, 1) -> (T, C)
  Linear fc1, fc2;                                  // the MLP

 private:
  double scale_;
};

// Learnable Fourier features (Li et al. 2021, arXiv 2106.02795), for positions of M continuous
// coordinates (M = 1: sequences; M = 2: grids such as image patches), split into G groups:
//   r(x) = [cos(x W_r^T), sin(x W_r^T)] / sqrt(F),  W_r: (F/2, M) drawn from N(0, gamma^-2),
//   then Linear(F, hidden), GELU, Linear(hidden, C / G) per group, groups concatenated.
struct FourierPositionsOptions {
  std::size_t dim = 0;        // C
  std::size_t coords = 1;     // M
  std::size_t groups = 1;     // G (C must divide by G)
  std::size_t features = 64;  // F (even)
  std::size_t hidden = 128;
  double gamma = 1.0;
};

// positions: (T, G M) -> (T, C)
class FourierPositions : public PositionalEncoding {
 public:
  FourierPositions(const FourierPositionsOptions& options, Generator& gen);
  Tensor encode(const Tensor& positions) override;
  std::size_t coordinate_dims() const override { return options_.coords * options_.groups; }
  Linear wr, fc1, fc2;  // wr: (M, F/2), no bias (x W_r^T); fc1, fc2: the MLP

 private:
  FourierPositionsOptions options_;
};

// Shifted-basis embeddings (Zheng, Ramasinghe and Lucey 2021, "Rethinking Positional
// Encoding"): each coordinate x, scaled to [0, 1] by 1 / scale, becomes K Gaussian bumps at
// evenly spaced centres t_k = k / (K - 1),
//   psi(x)_k = exp(-(x - t_k)^2 / (2 sigma^2)),   divided by the L2 norm of the K values,
// the M coordinates' bases side by side (M K values), then a learned Linear(M K, C).  sigma
// trades smoothness for detail: wide bumps interpolate between training points, narrow ones
// memorise them.  positions: (T, M) -> (T, C)
struct GaussianPositionsOptions {
  std::size_t dim = 0;        // C
  std::size_t coords = 1;     // M
  std::size_t centres = 128;  // K per coordinate
  double sigma = 1.0 / 128;   // in units of the scaled coordinate
  double scale = 512;         // coordinates are divided by this (sequences: the longest length)
};

class GaussianPositions : public PositionalEncoding {
 public:
  GaussianPositions(const GaussianPositionsOptions& options, Generator& gen);
  Tensor encode(const Tensor& positions) override;
  std::size_t coordinate_dims() const override { return options_.coords; }
  // The basis alone, without the projection: positions (T, M) -> psi (T, M K).
  Array<double> basis(const Array<double>& positions) const;
  Linear proj;  // (M K, C), no bias

 private:
  GaussianPositionsOptions options_;
};

struct PositionOptions {
  PositionScheme scheme = PositionScheme::sinusoidal;
  std::size_t dim = 0;
  std::size_t max_len = 512;                                // learned; gaussian's scale
  std::size_t mlp_hidden = 64;                              // mlp
  double mlp_scale = 512.0;                                 // mlp
  std::size_t fourier_features = 64, fourier_hidden = 128;  // fourier
  double fourier_gamma = 1.0;
};

// The module of an absolute scheme (scheme.hpp); nullptr for the others, which add nothing to
// the input.
std::unique_ptr<PositionalEncoding> make_positional_encoding(const PositionOptions& options,
                                                             Generator& gen);

}  // namespace tg::nn

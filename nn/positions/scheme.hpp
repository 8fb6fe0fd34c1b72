// The schemes of positions, by name, and what each one is: the one place that lists them.
//
// Self-attention is blind to order, so a transformer needs positions from somewhere.  A scheme
// either adds an encoding of each position to the input (an absolute scheme: a module of
// absolute.hpp, made by make_positional_encoding), or lives inside self-attention and adds
// nothing to the input (the helpers of in_attention.hpp; MultiheadAttention builds what the
// scheme's kind asks for).  A model passes the scheme and its settings through to both; each
// side asks position_kind() whether the scheme is its business.  (Kernelized attention brings
// relative positions of its own, which "relative" then names: see AttentionOptions::positions.)
#pragma once

#include "../../autograd/named_enum.hpp"

namespace tg::nn {

enum class PositionScheme {
  none,
  sinusoidal,
  learned,
  mlp,
  fourier,
  relative,
  rope,
  alibi,
  t5,
  xl,
  cape,
  gaussian
};
constexpr auto enum_table(PositionScheme) {
  using enum PositionScheme;
  return named_values<PositionScheme>("position scheme", {{none, "none"},
                                                          {sinusoidal, "sinusoidal"},
                                                          {learned, "learned"},
                                                          {mlp, "mlp"},
                                                          {fourier, "fourier"},
                                                          {relative, "relative"},
                                                          {rope, "rope"},
                                                          {alibi, "alibi"},
                                                          {t5, "t5"},
                                                          {xl, "xl"},
                                                          {cape, "cape"},
                                                          {gaussian, "gaussian"}});
}

// What a scheme is, and so where a model holds it.
enum class PositionKind {
  none,      // no positions: the model reads a bag of tokens
  absolute,  // a module adding an encoding of each position to the input
  shaw,      // inside attention: learned embeddings of the clipped offset j - i, added to keys
             // and values (Shaw et al. 2018), offsets clipped to [-relative_k, relative_k]
  bias,      // inside attention: a bias of the offset added to the logits (fixed or learned)
  rotation,  // inside attention: queries and keys turned by angles of their positions
  xl,        // inside attention: Transformer-XL's terms of the offset and of the content
};
constexpr auto enum_table(PositionKind) {
  using enum PositionKind;
  return named_values<PositionKind>("kind of positions", {{none, "none"},
                                                          {absolute, "absolute"},
                                                          {shaw, "shaw"},
                                                          {bias, "bias"},
                                                          {rotation, "rotation"},
                                                          {xl, "xl"}});
}

// Each scheme's kind.  A scheme added to the enum must be given one here: the compiler warns
// of a switch that misses it, and tests/test_position_scheme.cpp checks every scheme of the
// table against a model built with it.
constexpr PositionKind position_kind(PositionScheme scheme) {
  switch (scheme) {
    case PositionScheme::none: return PositionKind::none;
    case PositionScheme::sinusoidal:  // Vaswani et al. 2017
    case PositionScheme::learned:     // a table, as in BERT
    case PositionScheme::mlp:         // an MLP of the position
    case PositionScheme::fourier:     // Li et al. 2021
    case PositionScheme::cape:        // Likhomanenko et al. 2021
    case PositionScheme::gaussian:    // Zheng, Ramasinghe and Lucey 2021
      return PositionKind::absolute;
    case PositionScheme::relative: return PositionKind::shaw;  // Shaw et al. 2018
    case PositionScheme::alibi:                                // Press et al. 2022: fixed slopes
    case PositionScheme::t5:  // Raffel et al. 2020: a learned table
      return PositionKind::bias;
    case PositionScheme::rope: return PositionKind::rotation;  // Su et al. 2021
    case PositionScheme::xl: return PositionKind::xl;          // Dai et al. 2019
  }
  return PositionKind::none;  // not reached: every scheme has a case
}

}  // namespace tg::nn

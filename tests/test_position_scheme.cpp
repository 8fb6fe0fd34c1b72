// What each scheme of positions declares (nn/positions/scheme.hpp: its kind) against what a
// model built with it has.  Every scheme of the enum's table, with softmax and with kernelized
// attention, goes through the models' own path (models/blocks.hpp: the sentence encoder, the
// translator), so a scheme added to the table is checked here without a line of this file.
#define BOOST_TEST_MODULE position_scheme
#include <map>
#include <string>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using testing::randn64;

namespace {

constexpr std::size_t kDim = 8, kHeads = 2, kHeadDim = kDim / kHeads, kRelativeK = 3;

models::SentenceEncoderOptions encoder_options(PositionScheme scheme, AttentionKind attention) {
  return {.vocab = 12,
          .d_model = kDim,
          .heads = kHeads,
          .ff = 12,
          .layers = 1,
          .dropout = 0.0,
          .positions = scheme,
          .relative_k = kRelativeK,
          .attention = attention,
          .kernel_features = 8,
          .max_len = 16,
          .subword_buckets = 0,
          .subword_groups = {},
          .conv_width = 0};
}

// What an attention's positions added to it: its parameters beyond the two projections.
std::map<std::string, Shape> added_parameters(const MultiheadAttention& attn) {
  std::map<std::string, Shape> added;
  for (const auto& [name, p] : attn.named_parameters())
    if (!name.starts_with("in_proj.") && !name.starts_with("out_proj.")) added[name] = p.shape();
  return added;
}

// What attention should hold for a scheme of this kind (k = relative_k, H heads, D head dim).
// A bias is either fixed (alibi: nothing) or a learned table with a column per head (t5).
void check_added(const std::map<std::string, Shape>& added, PositionKind kind, bool kernelized) {
  using Added = std::map<std::string, Shape>;
  const std::size_t rows = 2 * kRelativeK + 1;
  if (kernelized) {  // its bias b_r is its relative positions, whatever else the scheme is
    BOOST_TEST((added == Added{{"kernel_bias", {rows, kHeads}}}));
    return;
  }
  switch (kind) {
    case PositionKind::none:
    case PositionKind::absolute:
    case PositionKind::rotation: BOOST_TEST(added.empty()); break;
    case PositionKind::shaw:
      BOOST_TEST((added == Added{{"rel_key", {rows, kHeadDim}}, {"rel_value", {rows, kHeadDim}}}));
      break;
    case PositionKind::xl:
      BOOST_TEST((added == Added{{"xl_proj.weight", {kDim, kDim}},
                                 {"xl_u", {kHeads, kHeadDim}},
                                 {"xl_v", {kHeads, kHeadDim}}}));
      break;
    case PositionKind::bias:
      BOOST_TEST(added.size() <= 1u);
      for (const auto& [name, shape] : added)
        BOOST_TEST((shape.size() == 2 && shape[1] == kHeads), name);
      break;
  }
}

// The encoder's outputs (1, T, C) for ids (1, T), in float64.
Array<double> encode(models::SentenceEncoder& encoder, const Ids& ids) {
  return encoder.forward(ids, nullptr, nullptr, "test_position_scheme").data<double>();
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_scheme_is_what_it_declares) {
  for (const auto& [scheme, name] : enum_table(PositionScheme{}).values)
    for (AttentionKind attention : {AttentionKind::softmax, AttentionKind::kernelized})
      BOOST_TEST_CONTEXT(name << " with " << enum_name(attention) << " attention") {
        const PositionKind kind = position_kind(scheme);
        const bool kernelized = attention == AttentionKind::kernelized;
        Generator gen(1);
        if (kernelized && kind != PositionKind::none && kind != PositionKind::absolute &&
            kind != PositionKind::shaw) {
          // a bias, a rotation or XL's terms would change the logits kernelized attention never
          // forms
          CHECK_THROWS_WITH(models::SentenceEncoder(encoder_options(scheme, attention), gen),
                            "kernelized attention has its own relative positions");
          continue;
        }
        models::SentenceEncoder encoder(encoder_options(scheme, attention), gen);
        // Absolute: a module on the input.  Otherwise: nothing there.
        BOOST_TEST((encoder.positions != nullptr) == (kind == PositionKind::absolute));
        check_added(added_parameters(encoder.encoder.layers[0]->self_attn), kind, kernelized);

        // The translator takes the same path: the same in every self-attention, nothing in
        // cross-attention, a module on each input for an absolute scheme.
        models::Translator translator({.src_vocab = 12,
                                       .tgt_vocab = 12,
                                       .d_model = kDim,
                                       .heads = kHeads,
                                       .ff = 12,
                                       .layers = 1,
                                       .positions = scheme,
                                       .relative_k = kRelativeK,
                                       .max_len = 16,
                                       .attention = attention,
                                       .kernel_features = 8},
                                      gen);
        BOOST_TEST((translator.src_positions != nullptr) == (kind == PositionKind::absolute));
        BOOST_TEST((translator.tgt_positions != nullptr) == (kind == PositionKind::absolute));
        check_added(added_parameters(translator.encoder.layers[0]->self_attn), kind, kernelized);
        check_added(added_parameters(translator.decoder.layers[0]->self_attn), kind, kernelized);
        BOOST_TEST(added_parameters(translator.decoder.layers[0]->cross_attn).empty());

        // What the positions do.  Every parameter random (T5's table and XL's u and v start at
        // zero, which would hide them), float64, no dropout.
        encoder.to(Dtype::f64);
        encoder.eval();
        std::uint64_t seed = 10;
        for (Tensor& p : encoder.parameters())
          p.data<double>() = 0.5 * randn64(p.shape(), seed++, false).data<double>();
        // Rotated, not reversed: ALiBi's bias is symmetric, so a reversed sentence reads the same.
        const Ids ids = {{3, 7, 5, 9, 4}}, rotated = {{7, 5, 9, 4, 3}},
                  shifted = {{0, 0, 0, 3, 7, 5, 9, 4}};
        const Array<double> y = encode(encoder, ids), y_rotated = encode(encoder, rotated),
                            y_shifted =
                                encode(encoder, shifted);  // the same tokens after 3 of padding
        double order = 0, shift = 0;                       // the largest changes
        for (std::size_t t = 0; t < 5; ++t)
          for (std::size_t c = 0; c < kDim; ++c) {
            order = std::max(order, std::abs(y(0, (t + 1) % 5, c) - y_rotated(0, t, c)));
            shift = std::max(shift, std::abs(y(0, t, c) - y_shifted(0, t + 3, c)));
          }
        // Without positions the model reads a bag of tokens: rotating them rotates the outputs.
        // Every scheme sees order (and kernelized attention does by its bias, whatever the scheme).
        if (kind == PositionKind::none && !kernelized) BOOST_TEST(order < 1e-12);
        else BOOST_TEST(order > 1e-6);
        // Positions inside attention see offsets only: padding in front (masked) changes
        // nothing.  An absolute scheme sees where the sentence starts.
        if (kind == PositionKind::absolute) BOOST_TEST(shift > 1e-6);
        else BOOST_TEST(shift < 1e-9);
      }
}

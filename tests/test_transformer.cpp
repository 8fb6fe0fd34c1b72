#define BOOST_TEST_MODULE transformer
#include "same_bits.hpp"
#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using testing::randn64;
using Inputs = std::vector<Tensor>;

namespace {

TransformerOptions small(bool pre_norm, std::size_t relative_k = 0) {
  TransformerOptions o{.d_model = 4, .heads = 2, .ff = 6, .layers = 2, .pre_norm = pre_norm};
  o.dropout = o.attention_dropout = 0.0;
  if (relative_k > 0) {
    o.positions = PositionScheme::relative;
    o.relative_k = relative_k;
  }
  return o;
}

template <class M>
std::vector<Tensor> with_parameters(const Tensor& x, M& module) {
  std::vector<Tensor> inputs = {x};
  for (const Tensor& p : module.parameters()) inputs.push_back(p);
  return inputs;
}

double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b), {0, 1, 2}).item(); }

double largest(const Tensor& t) { return max(abs(reshape(t, {-1})), {0}).item(); }

}  // namespace

BOOST_AUTO_TEST_CASE(encoder_layers_and_stack_gradcheck_pre_and_post_norm) {
  for (bool pre : {true, false})
    for (std::size_t k : {0u, 2u}) {
      BOOST_TEST_CONTEXT("pre_norm " << pre << ", relative_k " << k) {
        Generator gen(1);
        EncoderLayer layer(small(pre, k), gen);
        layer.to(Dtype::f64);
        Mask pad = padding_mask({3, 2}, 3);
        CHECK_GRAD([&](const Inputs& in) { return layer.forward(in[0], pad); },
                   with_parameters(randn64({2, 3, 4}, 2), layer));
        Encoder enc(small(pre, k), gen);
        enc.to(Dtype::f64);
        BOOST_TEST((enc.final_norm != nullptr) == pre);
        CHECK_GRAD([&](const Inputs& in) { return enc.forward(in[0], pad); },
                   with_parameters(randn64({2, 3, 4}, 3), enc));
      }
    }
}

BOOST_AUTO_TEST_CASE(decoder_layer_and_stack_gradcheck) {
  for (bool pre : {true, false}) {
    Generator gen(4);
    Decoder dec(small(pre, 2), gen);
    dec.to(Dtype::f64);
    Tensor memory = randn64({2, 5, 4}, 5);
    Mask src_pad = padding_mask({5, 3}, 5);
    CHECK_GRAD(
        [&](const Inputs& in) { return dec.forward(in[0], memory, {.memory_mask = src_pad}); },
        with_parameters(randn64({2, 3, 4}, 6), dec));
    CHECK_GRAD(
        [&](const Inputs& in) {
          return dec.forward(randn64({2, 3, 4}, 7, false), in[0]);
        },
        {memory});
  }
}

// With set_checkpointing every layer is one checkpoint: the same bits, with dropout, for a tape
// that keeps only the layers' inputs.
BOOST_AUTO_TEST_CASE(checkpointed_stacks_give_the_same_bits_and_keep_less) {
  TransformerOptions o{.d_model = 8, .heads = 2, .ff = 16, .layers = 3};
  o.dropout = 0.2, o.attention_dropout = 0.1;
  Generator gen(10);
  Encoder enc(o, gen);
  Decoder dec(o, gen);
  Generator data(11);
  Tensor src = randn({2, 5, 8}, data).set_requires_grad();
  Tensor tgt = randn({2, 4, 8}, data).set_requires_grad();
  const Mask src_pad = padding_mask({5, 3}, 5);
  std::vector<Tensor> wrt = {src, tgt};
  for (const Module* m : {static_cast<const Module*>(&enc), static_cast<const Module*>(&dec)})
    for (const Tensor& p : m->parameters()) wrt.push_back(p);
  const auto step = [&](bool checkpointed, std::size_t& saved, std::size_t& ops) {
    enc.set_checkpointing(checkpointed), dec.set_checkpointing(checkpointed);
    for (Tensor t : wrt) t.zero_grad();
    gen.seed_with(12);
    Tape tape;
    TapeGuard recording(tape);
    Tensor out = dec.forward(tgt, enc.forward(src, src_pad), {.memory_mask = src_pad});
    saved = tape.saved_bytes(), ops = tape.size();
    sum(out * out).backward();
    std::vector<Tensor> results = {out};
    for (const Tensor& t : wrt) results.push_back(t.grad());
    return results;
  };
  std::size_t plain_saved = 0, plain_ops = 0, saved = 0, ops = 0;
  const std::vector<Tensor> plain = step(false, plain_saved, plain_ops);
  const std::vector<Tensor> checkpointed = step(true, saved, ops);
  for (std::size_t i = 0; i < plain.size(); ++i)
    BOOST_TEST((plain[i].data<float>() == checkpointed[i].data<float>()), "result " << i);
  BOOST_TEST(ops < plain_ops / 10);
  BOOST_TEST(saved * 3 < plain_saved);
  // Asked for attention weights, the layers run as they are.
  std::vector<Tensor> weights;
  {
    Tape tape;
    TapeGuard recording(tape);
    enc.forward(src, src_pad, &weights);
  }
  BOOST_TEST(weights.size() == 3u);
}

BOOST_AUTO_TEST_CASE(the_decoder_is_causal_exactly) {
  Generator gen(8);
  Decoder dec(small(true, 2), gen);
  Generator data(9);
  Tensor memory = randn({1, 4, 4}, data), y = randn({1, 5, 4}, data);
  Array<float> changed = y.data<float>();
  for (std::size_t c = 0; c < 4; ++c) changed(0, 4, c) -= 3.0f;  // the last position only
  Tensor a = dec.forward(y, memory), b = dec.forward(Tensor(changed), memory);
  BOOST_TEST((slice(a, 1, 0, 4).data<float>() == slice(b, 1, 0, 4).data<float>()));
  BOOST_TEST(!(slice(a, 1, 4, 5).data<float>() == slice(b, 1, 4, 5).data<float>()));
}

BOOST_AUTO_TEST_CASE(encoder_ignores_the_contents_of_padding) {
  Generator gen(10);
  Encoder enc(small(true, 2), gen);
  Generator data(11);
  Tensor x = randn({2, 6, 4}, data);
  Array<float> changed = x.data<float>();
  for (std::size_t t = 4; t < 6; ++t)
    for (std::size_t c = 0; c < 4; ++c) changed(0, t, c) = 50.0f;
  Mask pad = padding_mask({4, 6}, 6);
  Tensor a = enc.forward(x, pad), b = enc.forward(Tensor(changed), pad);
  BOOST_TEST((slice(slice(a, 0, 0, 1), 1, 0, 4).data<float>() ==
              slice(slice(b, 0, 0, 1), 1, 0, 4).data<float>()));
}

// Skipping padding (EncodeOptions::packing): in training, with dropout in every place it
// happens, the real tokens' outputs have the padded pass's bits, the padding's are zeros, and
// the gradients agree (to float32 rounding: the weight gradients' sums over rows skip padding
// rows that add zeros), checkpointed or not, pre- and post-norm, with positions inside attention
// (relative, rope, alibi, t5 and xl: the fused kernel and the composed path) or none.  Without
// checkpoints, the tape keeps less.
BOOST_AUTO_TEST_CASE(skipping_padding_keeps_the_real_tokens_bits) {
  using P = PositionScheme;
  for (bool pre : {true, false})
    for (P scheme : {P::none, P::relative, P::rope, P::alibi, P::t5, P::xl})
      for (bool checkpointed : {false, true}) {
        BOOST_TEST_CONTEXT("pre_norm " << pre << ", positions " << enum_name(scheme)
                                       << ", checkpointed " << checkpointed) {
          TransformerOptions o = small(pre, scheme == P::relative ? 3 : 0);
          o.positions = scheme;
          o.d_model = 8, o.ff = 16;
          o.dropout = 0.2, o.attention_dropout = 0.1;
          Generator gen(20);
          Encoder enc(o, gen);
          enc.set_checkpointing(checkpointed);
          Generator data(21);
          Tensor x = randn({3, 6, 8}, data).set_requires_grad();
          const Mask pad = padding_mask({6, 2, 4}, 6);
          const TokenPacking packing(pad);
          BOOST_TEST(packing.tokens() == 12u);
          // A loss that reads real tokens only (as every model's does): g_out zero at padding.
          const Tensor g_out = packing.unpack(packing.pack(randn({3, 6, 8}, data)));
          const auto run = [&](bool skip, std::size_t& saved) {
            gen.seed_with(22);  // the same dropout draws for both
            for (Tensor p : enc.parameters()) p.zero_grad();
            x.zero_grad();
            Tape tape;
            TapeGuard recording(tape);
            Tensor y = enc.forward(
                x, {.mask = pad, .packing = skip ? std::optional(packing) : std::nullopt});
            saved = tape.saved_bytes();
            sum(y * g_out).backward();
            std::vector<Tensor> out = {y, x.grad()};
            for (const Tensor& p : enc.parameters()) out.push_back(p.grad());
            return out;
          };
          std::size_t padded_saved = 0, packed_saved = 0;
          const std::vector<Tensor> padded = run(false, padded_saved);
          const std::vector<Tensor> packed = run(true, packed_saved);
          const std::vector<Tensor> real = {packing.pack(padded[0]), packing.pack(packed[0])};
          BOOST_TEST(testing::same_bits_or_close(real[0], real[1]));
          const Tensor zero = mul(packed[0], 0.0);
          BOOST_TEST((packed[0].data<float>() == packing.unpack(real[1]).data<float>()));
          BOOST_TEST(!(packed[0].data<float>() == zero.data<float>()));
          for (std::size_t i = 1; i < padded.size(); ++i) {
            const double scale = largest(padded[i]) + 1e-30;
            BOOST_TEST(largest(padded[i] - packed[i]) / scale <= 1e-5, "gradient " << i);
          }
          if (!checkpointed) BOOST_TEST(packed_saved < padded_saved);
        }
      }
}

BOOST_AUTO_TEST_CASE(incremental_decoding_equals_the_full_pass) {
  for (std::size_t k : {0u, 2u})
    for (bool pre : {true, false}) {
      BOOST_TEST_CONTEXT("relative_k " << k << ", pre_norm " << pre) {
        Generator gen(12);
        Decoder dec(small(pre, k), gen);
        dec.to(Dtype::f64);
        dec.eval();
        Tensor memory = randn64({2, 3, 4}, 13, false), y = randn64({2, 5, 4}, 14, false);
        Mask src_pad = padding_mask({3, 2}, 3);
        Tensor full = dec.forward(y, memory, {.memory_mask = src_pad});
        DecoderCache cache;
        std::vector<Tensor> steps;
        for (std::int64_t t = 0; t < 5; ++t)
          steps.push_back(dec.forward(slice(y, 1, t, t + 1), memory,
                                      {.memory_mask = src_pad, .cache = &cache}));
        BOOST_TEST(cache.length() == 5u);
        BOOST_TEST(max_abs_diff(full, concat(steps, 1)) < 1e-12);
        // Two positions at a time works too.
        DecoderCache cache2;
        Tensor first =
            dec.forward(slice(y, 1, 0, 2), memory, {.memory_mask = src_pad, .cache = &cache2});
        Tensor rest =
            dec.forward(slice(y, 1, 2, 5), memory, {.memory_mask = src_pad, .cache = &cache2});
        BOOST_TEST(max_abs_diff(full, concat({first, rest}, 1)) < 1e-12);
      }
    }
}

// A decoder-only stack: an encoder whose self-attention is causal, one position at a time with
// a cache per layer, gives the full causal pass; a cache needs causal attention.
BOOST_AUTO_TEST_CASE(a_causal_encoder_decodes_with_a_cache) {
  for (std::size_t k : {0u, 2u})
    for (bool pre : {true, false}) BOOST_TEST_CONTEXT("relative_k " << k << ", pre_norm " << pre) {
        Generator gen(16);
        Encoder enc(small(pre, k), gen);
        enc.to(Dtype::f64);
        enc.eval();
        const Tensor y = randn64({2, 5, 4}, 17, false);
        const Tensor full = enc.forward(y, EncodeOptions{.causal = true});
        std::vector<KvCache> cache;
        std::vector<Tensor> steps;
        for (std::int64_t t = 0; t < 5; ++t)
          steps.push_back(enc.forward(slice(y, 1, t, t + 1), {.causal = true, .cache = &cache}));
        BOOST_TEST(cache.size() == 2u);
        BOOST_TEST(cache[0].length() == 5u);
        BOOST_TEST(max_abs_diff(full, concat(steps, 1)) < 1e-12);
        // causal: not what the bidirectional pass gives
        BOOST_TEST(max_abs_diff(full, enc.forward(y)) > 1e-3);
        CHECK_THROWS_WITH(enc.forward(y, {.cache = &cache}),
                          "Encoder: a cache decodes one position after another");
      }
}

BOOST_AUTO_TEST_CASE(cross_attention_weights_are_returned_for_plots) {
  Generator gen(15);
  Decoder dec(small(true), gen);
  std::vector<Tensor> weights;
  dec.forward(zeros({1, 3, 4}), ones({1, 5, 4}), {.cross_weights = &weights});
  BOOST_TEST(weights.size() == 2u);
  BOOST_TEST(weights[0].shape() == (Shape{1, 2, 3, 5}));
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused) {
  Generator gen(16);
  CHECK_THROWS_WITH(Encoder({.d_model = 4, .heads = 2, .ff = 0}, gen),
                    "d_model, ff and layers must be positive");
}

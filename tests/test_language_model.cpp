// The decoder-only language model (models/language_model.hpp): causal for every scheme of
// positions, its key/value cache equal to the full pass (past the trained context too, where the
// scheme has no end), gradients, and a learned table that refuses positions past its end.
#define BOOST_TEST_MODULE language_model
#include <cmath>

#include "testing.hpp"

using namespace tg;
using models::LanguageModel;
using models::LanguageModelOptions;
using nn::AttentionKind;
using nn::PositionScheme;
namespace tt = boost::test_tools;

namespace {

constexpr std::size_t kVocab = 7, kTrained = 8;  // the learned table: kTrained positions

// A scheme of positions with softmax attention, or kernelized attention with a scheme it takes.
struct Variant {
  PositionScheme positions;
  AttentionKind attention = AttentionKind::softmax;
};

std::vector<Variant> every_variant() {
  std::vector<Variant> out;
  for (const auto& [scheme, name] : enum_table(PositionScheme{}).values) out.push_back({scheme});
  for (PositionScheme p :
       {PositionScheme::none, PositionScheme::relative, PositionScheme::sinusoidal})
    out.push_back({p, AttentionKind::kernelized});
  return out;
}

std::string name(const Variant& v) {
  return std::string(enum_name(v.positions)) +
         (v.attention == AttentionKind::kernelized ? ", kernelized" : "");
}

LanguageModelOptions tiny(const Variant& v) {
  return {.vocab = kVocab,
          .d_model = 8,
          .heads = 2,
          .ff = 16,
          .layers = 2,
          .positions = v.positions,
          .relative_k = 3,
          .attention = v.attention,
          .kernel_features = 16,
          .max_len = kTrained,
          .mlp_scale = 8,
          .fourier_features = 8,
          .fourier_hidden = 8,
          .context = kTrained};
}

// A tiny model in evaluation mode, its parameters that start at zero (T5's table, XL's u and v,
// kernelized attention's bias) drawn at random so that they matter.
std::unique_ptr<LanguageModel> make(const Variant& v, Generator& gen) {
  auto m = std::make_unique<LanguageModel>(tiny(v), gen);
  for (auto& [param_name, p] : m->named_parameters())
    for (const char* zero_at_start : {"t5_bias", "xl_u", "xl_v", "kernel_bias"})
      if (testing::contains(param_name, zero_at_start))
        p.data<float>() = randn(p.shape(), gen).data<float>() * 0.5f;
  m->eval();
  return m;
}

Ids random_ids(std::size_t B, std::size_t T, std::uint64_t seed) {
  Generator gen(seed);
  Ids ids = Ids::from_shape({B, T});
  for (auto& id : ids) id = static_cast<std::int64_t>(gen.below(kVocab));
  return ids;
}

// Columns [from, to) of ids (B, T).
Ids columns(const Ids& ids, std::size_t from, std::size_t to) {
  Ids out = Ids::from_shape({ids.shape()[0], to - from});
  for (std::size_t b = 0; b < ids.shape()[0]; ++b)
    for (std::size_t t = from; t < to; ++t) out(b, t - from) = ids(b, t);
  return out;
}

// The largest |a - b| over logits (B, T, V) at positions [from, to).
double max_diff(const Tensor& a, const Tensor& b, std::size_t from, std::size_t to) {
  const auto& x = a.data<float>();
  const auto& y = b.data<float>();
  double d = 0;
  for (std::size_t i = 0; i < x.shape()[0]; ++i)
    for (std::size_t t = from; t < to; ++t)
      for (std::size_t v = 0; v < x.shape()[2]; ++v)
        d = std::max(d, std::abs(double(x(i, t, v)) - double(y(i, t, v))));
  return d;
}

// How many tokens a variant may read: its table's length (learned), else past the trained context.
std::size_t longest_test(const Variant& v) {
  return v.positions == PositionScheme::learned ? kTrained : 3 * kTrained;
}

}  // namespace

// Changing the token at position 6 changes no logit before it -- and does change the logits at
// 6, so the comparison can see a change.
BOOST_AUTO_TEST_CASE(a_later_token_changes_no_earlier_logit) {
  for (const Variant& v : every_variant()) BOOST_TEST_CONTEXT(name(v)) {
      Generator gen(1);
      auto m = make(v, gen);
      NoGradGuard no_grad;
      const Ids ids = random_ids(2, kTrained, 2);
      Ids changed = ids;
      for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t t = 6; t < kTrained; ++t) changed(b, t) = (ids(b, t) + 1) % kVocab;
      const Tensor a = m->forward(ids), b = m->forward(changed);
      BOOST_TEST(max_diff(a, b, 0, 6) < 2e-5);
      BOOST_TEST(max_diff(a, b, 6, 7) > 1e-3);
    }
}

// Decoding with the cache -- a prompt of 5 tokens in one call, then one token a call -- gives
// the logits of the full pass, up to float32 rounding; past the trained context too, for every
// scheme that has no end.
BOOST_AUTO_TEST_CASE(the_cache_gives_the_full_pass) {
  for (const Variant& v : every_variant()) BOOST_TEST_CONTEXT(name(v)) {
      Generator gen(3);
      auto m = make(v, gen);
      NoGradGuard no_grad;
      const std::size_t T = longest_test(v);
      const Ids ids = random_ids(2, T, 4);
      const Tensor full = m->forward(ids);
      models::LanguageModelCache cache;
      std::vector<Tensor> steps{m->forward(columns(ids, 0, 5), &cache)};
      for (std::size_t t = 5; t < T; ++t)
        steps.push_back(m->forward(columns(ids, t, t + 1), &cache));
      BOOST_TEST(cache.length() == T);
      BOOST_TEST(max_diff(full, concat(steps, 1), 0, T) < 1e-4);
    }
}

BOOST_AUTO_TEST_CASE(a_learned_table_refuses_positions_past_its_end) {
  Generator gen(5);
  auto m = make({PositionScheme::learned}, gen);
  NoGradGuard no_grad;
  CHECK_THROWS_WITH(m->forward(random_ids(1, kTrained + 1, 6)),
                    "LanguageModel: positions 'learned' are a table of 8 positions (0 to 7) and "
                    "cannot read a sequence of 9 tokens (positions up to 8)");
  models::LanguageModelCache cache;
  m->forward(random_ids(1, kTrained, 7), &cache);  // a full table: the next token has no position
  CHECK_THROWS_WITH(m->forward(random_ids(1, 1, 8), &cache), "cannot read a sequence of 9 tokens");
  BOOST_TEST(m->longest() == kTrained);
  BOOST_TEST(make({PositionScheme::rope}, gen)->longest() > 1000000u);
}

BOOST_AUTO_TEST_CASE(bad_input_gets_a_clear_message) {
  Generator gen(9);
  auto m = make({PositionScheme::rope}, gen);
  CHECK_THROWS_WITH(m->forward(Ids::from_shape({2})), "LanguageModel: ids must be (B, T)");
  Ids out_of_range = random_ids(1, 3, 10);
  out_of_range(0, 1) = kVocab;
  BOOST_CHECK_THROW(m->forward(out_of_range), std::invalid_argument);
  CHECK_THROWS_WITH(m->loss(random_ids(1, 3, 11), random_ids(1, 4, 12)),
                    "LanguageModel::loss: inputs are (1, 3) and targets (1, 4)");
  LanguageModelOptions none = tiny({PositionScheme::none});
  none.vocab = 0;
  CHECK_THROWS_WITH(LanguageModel(none, gen), "the vocabulary is empty");
  models::LanguageModelCache cache;
  m->forward(random_ids(2, 3, 13), &cache);
  CHECK_THROWS_WITH(m->forward(random_ids(1, 1, 14), &cache), "the cache holds 2 sequences");
}

// The model composes existing ops only; its gradients still go through the tied embedding (used
// twice), the positions and causal attention: checked on tiny float64 models, tied and not.
BOOST_AUTO_TEST_CASE(gradients) {
  for (const Variant& v : {Variant{PositionScheme::learned}, Variant{PositionScheme::alibi},
                           Variant{PositionScheme::relative}})
    for (bool tied : {true, false}) BOOST_TEST_CONTEXT(name(v) << (tied ? ", tied" : "")) {
        Generator gen(15);
        LanguageModelOptions o = tiny(v);
        o.d_model = 4, o.ff = 6, o.layers = 1, o.tie_embeddings = tied;
        LanguageModel m(o, gen);
        m.to(Dtype::f64);
        const Ids inputs = random_ids(2, 4, 16), targets = random_ids(2, 4, 17);
        CHECK_GRAD([&](const std::vector<Tensor>&) { return m.loss(inputs, targets); },
                   m.parameters());
      }
}

// Tied: the output layer is the embedding's table, so there is no head and no extra parameters.
BOOST_AUTO_TEST_CASE(tied_embeddings_share_the_table) {
  Generator gen(18);
  LanguageModelOptions o = tiny({PositionScheme::none});
  LanguageModel tied(o, gen);
  o.tie_embeddings = false;
  LanguageModel untied(o, gen);
  BOOST_TEST(!tied.head);
  BOOST_TEST(untied.parameter_count() - tied.parameter_count() == 8 * kVocab + kVocab);
  NoGradGuard no_grad;
  const Ids ids = random_ids(1, 3, 19);
  const Tensor h = tied.states(ids), logits = tied.forward(ids);
  const auto& e = tied.embed.weight.data<float>();
  double d = 0;  // logits[t, v] = h[t] . e[v]
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t v = 0; v < kVocab; ++v) {
      double dot = 0;
      for (std::size_t c = 0; c < 8; ++c) dot += double(h.data<float>()(0, t, c)) * e(v, c);
      d = std::max(d, std::abs(dot - logits.data<float>()(0, t, v)));
    }
  BOOST_TEST(d < 1e-5);
}

// GPT-2's initialisation: matrices and tables N(0, 0.02^2), the projections into the residual
// stream N(0, (0.02 / sqrt(2 layers))^2), biases 0 and layer norms 1; the option survives a model
// file (read without it, the embeddings would be scaled by sqrt(C) = 8 and the logits differ).
BOOST_AUTO_TEST_CASE(gpt2_initialisation) {
  Generator gen(20);
  LanguageModelOptions o = tiny({PositionScheme::learned});
  o.d_model = 64, o.ff = 256, o.heads = 4, o.gpt2_init = true;
  LanguageModel m(o, gen);
  const auto std_of = [](const Tensor& p) {
    const auto& v = p.data<float>();
    double s = 0, s2 = 0;
    for (float x : v) s += x, s2 += double(x) * x;
    const double n = static_cast<double>(v.size()), mean = s / n;
    return std::sqrt(s2 / n - mean * mean);
  };
  const double into_residual = 0.02 / std::sqrt(2.0 * 2);
  std::size_t matrices = 0;
  for (const auto& [name, p] : m.named_parameters()) {
    BOOST_TEST_CONTEXT(name) {
      if (p.dim() < 2) {
        const float expected = testing::contains(name, "norm") && name.ends_with("weight") ? 1 : 0;
        for (float x : p.data<float>()) BOOST_TEST(x == expected);
        continue;
      }
      ++matrices;
      const bool last = name.ends_with("out_proj.weight") || name.ends_with("ff.1.weight");
      BOOST_TEST(std_of(p) == (last ? into_residual : 0.02), tt::tolerance(0.12));
    }
  }
  BOOST_TEST(matrices == 2u + 2 * 4);  // the embedding, the positions, 4 a layer

  models::LanguageModelPipeline lm(models::CharVocab::build(U"abcdefg"), o, 21);
  lm.model().eval();
  lm.save("gpt2.npz");
  const auto read = models::LanguageModelPipeline::load("gpt2.npz");
  BOOST_TEST(read->model().options().gpt2_init);
  NoGradGuard no_grad;
  const Ids ids = random_ids(2, 5, 22);
  BOOST_TEST(max_diff(lm.model().forward(ids), read->model().forward(ids), 0, 5) == 0.0);
}

#define BOOST_TEST_MODULE ops_fused_attention
#include <cmath>

#include "same_bits.hpp"
#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using testing::randn64;
using Inputs = std::vector<Tensor>;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  BOOST_REQUIRE(a.shape() == b.shape());
  Tensor d = abs(a.to(Dtype::f64) - b.to(Dtype::f64));
  return d.numel() == 0 ? 0.0
                        : max(d,
                              [&] {
                                std::vector<std::int64_t> axes(d.dim());
                                for (std::size_t i = 0; i < axes.size(); ++i)
                                  axes[i] = static_cast<std::int64_t>(i);
                                return axes;
                              }())
                              .item();
}

struct Case {
  const char* name;
  std::size_t T, S, k;  // k > 0: relative positions (self-attention: T <= S)
  bool causal, pad;
  double dropout;
};

// The table row of every (query, key) pair, (T, S): clip(j - pos_i, -k, k) + k, pos_i = i + S - T.
Ids table_rows(std::size_t T, std::size_t S, std::size_t k) {
  const auto K = static_cast<std::int64_t>(k);
  Ids rows = Ids::from_shape({T, S});
  for (std::size_t i = 0; i < T; ++i)
    for (std::size_t j = 0; j < S; ++j)
      rows(i, j) = std::clamp<std::int64_t>(
                       static_cast<std::int64_t>(j) - static_cast<std::int64_t>(i + S - T), -K, K) +
                   K;
  return rows;
}

// The composed ops of nn/attention/multihead.cpp, written out: the reference the fused op must
// match.
Tensor composed(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& a) {
  const std::size_t T = q.shape()[2], S = k.shape()[2];
  Tensor logits = matmul(q, transpose(k));
  if (a.rel_key.defined()) {
    Tensor R_k = embedding(a.rel_key, table_rows(T, S, a.relative_k));  // (T, S, D)
    const auto B = static_cast<std::int64_t>(q.shape()[0]),
               H = static_cast<std::int64_t>(q.shape()[1]);
    const auto Ti = static_cast<std::int64_t>(T), D = static_cast<std::int64_t>(q.shape()[3]);
    logits = logits + sum(reshape(q, {B, H, Ti, 1, D}) * R_k, {-1});  // (B, H, T, S)
  }
  logits = logits * a.scale;
  std::optional<Mask> m;
  if (a.mask) m = *a.mask;
  if (a.causal) m = m ? mask_and(*m, causal_mask(T, S)) : causal_mask(T, S);
  Tensor w = m ? masked_softmax(logits, *m) : softmax(logits);
  if (a.gen) w = dropout(w, a.dropout, *a.gen, a.training);
  Tensor out = matmul(w, v);
  if (a.rel_value.defined()) {
    Tensor R_v = embedding(a.rel_value, table_rows(T, S, a.relative_k));  // (T, S, D)
    const auto B = static_cast<std::int64_t>(w.shape()[0]),
               H = static_cast<std::int64_t>(w.shape()[1]);
    out =
        out +
        sum(reshape(w, {B, H, static_cast<std::int64_t>(T), static_cast<std::int64_t>(S), 1}) * R_v,
            {3});  // (B, H, T, D)
  }
  return out;
}

const std::vector<Case> kCases = {
    {"plain", 4, 6, 0, false, false, 0.0},
    {"padding", 5, 5, 0, false, true, 0.0},
    {"causal", 5, 5, 0, true, false, 0.0},
    {"causal, fewer queries (a cache)", 2, 6, 0, true, true, 0.0},
    {"relative", 6, 6, 2, false, true, 0.0},
    {"relative, causal", 6, 6, 2, true, false, 0.0},
    {"relative, causal, cache", 3, 7, 3, true, true, 0.0},
    {"dropout", 5, 5, 0, false, true, 0.3},
    {"relative, dropout", 6, 6, 2, true, true, 0.3},
};

// Runs fused and composed on the same inputs (dtype of q) and returns the outputs and every
// input's gradient of sum(out * r), r fixed.
struct Run {
  Tensor out;
  std::vector<Tensor> grads;
};

// Case c's inputs: q (B, 2, T, D), k and v (B, 2, S, D), then with c.k > 0 the relative
// tables for keys and values (2k + 1, D).
std::vector<Tensor> case_inputs(const Case& c, std::size_t D, std::size_t B = 2) {
  std::vector<Tensor> in = {randn64({B, 2, c.T, D}, 1), randn64({B, 2, c.S, D}, 2),
                            randn64({B, 2, c.S, D}, 3)};
  if (c.k > 0) {
    in.push_back(randn64({2 * c.k + 1, D}, 4));
    in.push_back(randn64({2 * c.k + 1, D}, 5));
  }
  return in;
}

// Case c's attention arguments over inputs `in` (from case_inputs); `pad` and `gen` must outlive
// them.
AttentionArgs case_args(const Case& c, double scale, const Mask& pad, Generator& gen,
                        const std::vector<Tensor>& in) {
  AttentionArgs args{.scale = scale,
                     .mask = c.pad ? &pad : nullptr,
                     .causal = c.causal,
                     .dropout = c.dropout,
                     .gen = &gen,
                     .training = c.dropout > 0};
  if (c.k > 0) {
    args.rel_key = in[3];
    args.rel_value = in[4];
    args.relative_k = c.k;
  }
  return args;
}

Run run(bool fused, const Case& c, Dtype dtype, std::uint64_t dropout_seed) {
  std::vector<Tensor> in = case_inputs(c, 4);
  for (Tensor& t : in) t = t.to(dtype).set_requires_grad();
  Mask pad = padding_mask({c.S, c.S - 2}, c.S);
  Generator gen(dropout_seed);
  const AttentionArgs args = case_args(c, 0.5, pad, gen, in);
  Tape tape;
  TapeGuard recording(tape);
  Tensor out =
      fused ? fused_attention(in[0], in[1], in[2], args) : composed(in[0], in[1], in[2], args);
  sum(out * randn64(out.shape(), 9, false).to(dtype)).backward();
  Run r{out, {}};
  for (const Tensor& t : in) r.grads.push_back(t.grad());
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fused_equals_composed_outputs_and_gradients) {
  for (const Case& c : kCases)
    for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
      BOOST_TEST_CONTEXT(c.name << (dtype == Dtype::f64 ? ", float64" : ", float32")) {
        // The same generator seed: both draw the same dropout mask.
        const Run fused = run(true, c, dtype, 42), ref = run(false, c, dtype, 42);
        const double tol = dtype == Dtype::f64 ? 1e-12 : 2e-5;  // sums in other orders
        BOOST_TEST(max_abs_diff(fused.out, ref.out) <= tol);
        for (std::size_t i = 0; i < ref.grads.size(); ++i)
          BOOST_TEST(max_abs_diff(fused.grads[i], ref.grads[i]) <= tol, "gradient of input " << i);
      }
    }
}

BOOST_AUTO_TEST_CASE(fused_attention_gradcheck) {
  // Reverse mode checks the backward kernel; forward mode the jvp rule (the composed tangent).
  for (const Case& c : kCases) {
    BOOST_TEST_CONTEXT(c.name) {
      const Mask pad = padding_mask({c.S, c.S - 2}, c.S);
      CHECK_GRAD(
          [&](const Inputs& x) {
            Generator gen(7);  // a fresh generator per call: the same dropout mask every time
            return fused_attention(x[0], x[1], x[2], case_args(c, 0.7, pad, gen, x));
          },
          case_inputs(c, 3), {.modes = CheckModes::both});
    }
  }
}

BOOST_AUTO_TEST_CASE(a_query_that_sees_no_key_gets_zeros_and_zero_gradients) {
  Tensor q = randn64({1, 1, 3, 2}, 1), k = randn64({1, 1, 3, 2}, 2), v = randn64({1, 1, 3, 2}, 3);
  const Mask none_for_row_1 = {{true, true, true}, {false, false, false}, {true, false, true}};
  Tape tape;
  TapeGuard recording(tape);
  Tensor out = fused_attention(q, k, v, {.mask = &none_for_row_1});
  sum(out * out).backward();
  for (std::size_t d = 0; d < 2; ++d) {
    BOOST_TEST(out.data<double>()(0, 0, 1, d) == 0.0);
    BOOST_TEST(q.grad().data<double>()(0, 0, 1, d) == 0.0);
  }
  const Tensor g_k = k.grad();  // a tensor that lives through the loop
  for (double g : g_k.data<double>()) BOOST_TEST(std::isfinite(g));
}

BOOST_AUTO_TEST_CASE(one_thread_and_two_give_the_same_bits) {
  // Blocks are cut by the sizes, never by the thread count, and the table gradients are one
  // product over all blocks: float32 results must not change with the threads.
  const Case c{"relative, dropout", 24, 24, 4, true, true, 0.1};
  std::vector<Run> runs;
  for (std::size_t threads : {1u, 2u}) {
    set_num_threads(threads);
    runs.push_back(run(true, c, Dtype::f32, 3));
  }
  set_num_threads(0);
  BOOST_TEST((runs[0].out.data<float>() == runs[1].out.data<float>()));
  for (std::size_t i = 0; i < runs[0].grads.size(); ++i)
    BOOST_TEST((runs[0].grads[i].data<float>() == runs[1].grads[i].data<float>()),
               "gradient of input " << i);
}

BOOST_AUTO_TEST_CASE(the_module_gives_the_same_with_and_without_fusion_in_training) {
  // Same weights, same generator seed: dropout drops the same weights on both paths.
  for (std::size_t k : {0u, 3u}) {
    Generator g1(21), g2(21);
    const PositionScheme positions = k > 0 ? PositionScheme::relative : PositionScheme::none;
    const auto options = [&](bool fuse) {
      return AttentionOptions{.d_model = 8,
                              .heads = 2,
                              .dropout = 0.2,
                              .positions = positions,
                              .relative_k = k,
                              .fused = fuse};
    };
    MultiheadAttention fused(options(true), g1), composed(options(false), g2);
    Tensor x = randn64({2, 6, 8}, 22, false).to(Dtype::f32);
    Mask pad = padding_mask({6, 4}, 6);
    BOOST_TEST(max_abs_diff(fused.forward(x, {.mask = pad, .causal = true}),
                            composed.forward(x, {.mask = pad, .causal = true})) < 1e-5);
  }
}

BOOST_AUTO_TEST_CASE(bad_arguments_name_the_op_and_the_shapes) {
  Tensor q = randn64({2, 2, 3, 4}, 1), k = randn64({2, 2, 5, 4}, 2);
  CHECK_THROWS_WITH(fused_attention(q, k, randn64({2, 2, 4, 4}, 3), {}),
                    "fused_attention: needs q (B, H, T, D), k and v (B, H, S, D): got q (2, 2, 3, "
                    "4), k (2, 2, 5, 4), v (2, 2, 4, 4)");
  const Mask wrong = xt::ones<bool>({3, 4});
  CHECK_THROWS_WITH(fused_attention(q, k, k, {.mask = &wrong}),
                    "fused_attention: the mask (3, 4) does not broadcast to the logits (B, H, T, "
                    "S) = (2, 2, 3, 5)");
  CHECK_THROWS_WITH(fused_attention(k, q, q, {.causal = true}),
                    "fused_attention: causal attention with more queries (5) than keys (3)");
  CHECK_THROWS_WITH(
      fused_attention(
          q, k, k,
          {.rel_key = randn64({5, 4}, 4), .rel_value = randn64({3, 4}, 5), .relative_k = 2}),
      "fused_attention: relative tables must be (2k + 1, D) = (5, 4) for k 2: got rel_key (5, 4), "
      "rel_value (3, 4)");
  CHECK_THROWS_WITH(fused_attention(q, k, k, {.rel_key = randn64({5, 4}, 4)}),
                    "fused_attention: relative positions need both tables");
  CHECK_THROWS_WITH(fused_attention(q, k, k, {.dropout = 1.0}),
                    "fused_attention: dropout must be in [0, 1), got 1.0");
}

BOOST_AUTO_TEST_CASE(self_attention_on_packed_heads_equals_split_heads) {
  // qkv (B, T, 3C) read in place against q, k, v cut out and permuted to (B, H, T, D) first.
  const std::int64_t B = 2, T = 5, H = 2, D = 3, C = H * D;
  for (std::size_t k : {0u, 2u}) {
    BOOST_TEST_CONTEXT("relative k " << k) {
      std::vector<Tensor> in = {randn64({2, 5, 18}, 1)};
      if (k > 0) {
        in.push_back(randn64({2 * k + 1, 3}, 2));
        in.push_back(randn64({2 * k + 1, 3}, 3));
      }
      const Mask pad = padding_mask({5, 3}, 5);
      const auto args = [&](const Inputs& x, Generator& gen) {
        AttentionArgs a{.scale = 0.6,
                        .mask = &pad,
                        .causal = k > 0,
                        .dropout = 0.25,
                        .gen = &gen,
                        .training = true};
        if (k > 0) {
          a.rel_key = x[1];
          a.rel_value = x[2];
          a.relative_k = k;
        }
        return a;
      };
      const auto packed = [&](const Inputs& x) {
        Generator gen(8);
        return fused_self_attention(x[0], H, args(x, gen));
      };
      const auto split = [&](const Inputs& x) {
        Generator gen(8);
        const auto heads = [&](std::int64_t from) {
          return permute(reshape(slice(x[0], -1, from, from + C), {B, T, H, D}), {0, 2, 1, 3});
        };
        Tensor out = fused_attention(heads(0), heads(C), heads(2 * C), args(x, gen));
        return reshape(permute(out, {0, 2, 1, 3}), {B, T, C});
      };
      std::vector<Tensor> outs, grads;
      for (const auto& f : {std::function<Tensor(const Inputs&)>(packed),
                            std::function<Tensor(const Inputs&)>(split)}) {
        for (Tensor& t : in) t.zero_grad();
        Tape tape;
        TapeGuard recording(tape);
        Tensor y = f(in);
        sum(y * randn64(y.shape(), 9, false)).backward();
        outs.push_back(y);
        for (const Tensor& t : in) grads.push_back(t.grad());
      }
      BOOST_TEST(max_abs_diff(outs[0], outs[1]) < 1e-12);
      for (std::size_t i = 0; i < in.size(); ++i)
        BOOST_TEST(max_abs_diff(grads[i], grads[in.size() + i]) < 1e-12, "gradient of input " << i);
      CHECK_GRAD(packed, in, {.modes = CheckModes::both});
    }
  }
  CHECK_THROWS_WITH(fused_self_attention(randn64({2, 5, 18}, 1), 4, {}),
                    "fused_self_attention: needs qkv (B, T, 3C) with C a multiple of the 4 heads: "
                    "got (2, 5, 18)");
}

// ---- the backward as ops, and second derivatives --------------------------------------------

BOOST_AUTO_TEST_CASE(the_composed_form_gives_the_fused_values_and_gradients) {
  // attention_composed is what the fused ops' higher-order rules are made of: it must be the
  // same function, dropout mask included (the same generator seed, one draw each).
  for (const Case& c : kCases)
    for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
      BOOST_TEST_CONTEXT(c.name << (dtype == Dtype::f64 ? ", float64" : ", float32")) {
        std::vector<Tensor> outs, grads;
        for (bool fused : {true, false}) {
          std::vector<Tensor> in = case_inputs(c, 4);
          for (Tensor& t : in) t = t.to(dtype).set_requires_grad();
          const Mask pad = padding_mask({c.S, c.S - 2}, c.S);
          Generator gen(42);
          const AttentionArgs args = case_args(c, 0.5, pad, gen, in);
          Tape tape;
          TapeGuard recording(tape);
          Tensor y = fused ? fused_attention(in[0], in[1], in[2], args)
                           : attention_composed(in[0], in[1], in[2], args);
          outs.push_back(y);
          sum(y * randn64(y.shape(), 9, false).to(dtype)).backward();
          for (const Tensor& t : in) grads.push_back(t.grad());
        }
        const double tol = dtype == Dtype::f64 ? 1e-12 : 2e-5;
        BOOST_TEST(max_abs_diff(outs[0], outs[1]) <= tol);
        const std::size_t n = grads.size() / 2;
        for (std::size_t i = 0; i < n; ++i)
          BOOST_TEST(max_abs_diff(grads[i], grads[n + i]) <= tol, "gradient of input " << i);
      }
    }
}

BOOST_AUTO_TEST_CASE(the_backward_op_gives_the_gradients_of_backward_bit_for_bit) {
  // The forward's rule and the op called by itself run one kernel on the same numbers (the op
  // recomputes W with the forward kernel, and the dropout mask from the draw).
  const Case c{"relative, dropout", 6, 6, 2, true, true, 0.3};
  std::vector<Tensor> in = case_inputs(c, 4);
  for (Tensor& t : in) t = t.to(Dtype::f32).set_requires_grad();
  const Mask pad = padding_mask({c.S, c.S - 2}, c.S);
  const Tensor g = randn64({2, 2, c.T, 4}, 9, false).to(Dtype::f32);
  Generator gen(5);
  const AttentionArgs args = case_args(c, 0.5, pad, gen, in);
  {
    Tape tape;
    TapeGuard recording(tape);
    fused_attention(in[0], in[1], in[2], args).backward(g);
  }
  const std::vector<Tensor> grads =
      fused_attention_backward(g, in[0], in[1], in[2], args, Generator(5).next_u64());
  BOOST_REQUIRE_EQUAL(grads.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i)
    BOOST_TEST((grads[i].data<float>() == in[i].grad().data<float>()), "gradient of input " << i);
}

namespace {

// All of a list of tensors as one vector (a function of several outputs, for gradcheck).
Tensor joined(const std::vector<Tensor>& parts) {
  std::vector<Tensor> flat;
  for (const Tensor& p : parts) flat.push_back(reshape(p, {-1}));
  return concat(flat, 0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_backward_op_passes_gradcheck_both_ways) {
  // The backward op as a function of (g_out, inputs): its derivatives are attention's second
  // derivatives, so this checks the backward op's vjp and jvp rules.
  for (const Case& c : kCases) {
    BOOST_TEST_CONTEXT(c.name) {
      const Mask pad = padding_mask({c.S, c.S - 2}, c.S);
      std::vector<Tensor> in = case_inputs(c, 3);
      in.insert(in.begin(), randn64({2, 2, c.T, 3}, 8));  // g_out
      CHECK_GRAD(
          [&](const Inputs& x) {
            const Inputs qkv(x.begin() + 1, x.end());
            Generator gen(7);
            const AttentionArgs args = case_args(c, 0.7, pad, gen, qkv);
            return joined(fused_attention_backward(x[0], x[1], x[2], x[3], args, 11));
          },
          in, {.modes = CheckModes::both});
    }
  }
  for (std::size_t k : {0u, 2u}) {
    BOOST_TEST_CONTEXT("self-attention, relative k " << k) {
      std::vector<Tensor> in = {randn64({2, 4, 5}, 8), randn64({2, 4, 15}, 1)};  // g_out, qkv
      if (k > 0) {
        in.push_back(randn64({2 * k + 1, 5}, 2));
        in.push_back(randn64({2 * k + 1, 5}, 3));
      }
      const Mask pad = padding_mask({4, 3}, 4);
      CHECK_GRAD(
          [&](const Inputs& x) {
            AttentionArgs a{
                .scale = 0.6, .mask = &pad, .causal = true, .dropout = 0.25, .training = true};
            if (k > 0) {
              a.rel_key = x[2];
              a.rel_value = x[3];
              a.relative_k = k;
            }
            return joined(fused_self_attention_backward(x[0], x[1], 1, a, 11));
          },
          in, {.modes = CheckModes::both});
    }
  }
}

namespace {

// f to order 2 in both modes (reverse and forward, and the four pairs of them).  A rule that
// throws (an op it uses is once differentiable) fails the check with its message.
void check_second_order(const GradcheckFn& f, const std::vector<Tensor>& inputs) {
  try {
    const GradcheckResult r = gradcheck(f, inputs, {.order = 2, .modes = CheckModes::both});
    BOOST_CHECK_MESSAGE(r.ok, r.report);
    BOOST_CHECK_GT(r.checked, 0u);
  } catch (const std::exception& e) {
    BOOST_ERROR(e.what());
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(fused_attention_is_twice_differentiable_both_ways) {
  // B = 1, H = 2, T = S = 3, D = 2; every row keeps at least one key.
  const Mask mask = {{true, false, true}, {true, true, false}, {false, true, true}};
  for (const Case& c :
       {Case{"mask", 3, 3, 0, false, true, 0.0}, Case{"causal", 3, 3, 0, true, false, 0.0},
        Case{"relative", 3, 3, 1, false, false, 0.0}, Case{"dropout", 3, 3, 0, false, false, 0.4},
        Case{"all of them", 3, 3, 1, true, true, 0.4}}) {
    BOOST_TEST_CONTEXT(c.name) {
      check_second_order(
          [&](const Inputs& x) {
            Generator gen(7);  // the same dropout mask on every call
            return fused_attention(x[0], x[1], x[2], case_args(c, 0.8, mask, gen, x));
          },
          case_inputs(c, 2, /*B=*/1));
    }
  }
}

namespace {

// The second-order checks' call: causal, relative tables x[1] and x[2] (k = 1), dropout 0.4 in
// training, and a mask if given.
AttentionArgs second_order_args(const Inputs& x, Generator& gen, const Mask* mask = nullptr) {
  return {.scale = 0.8,
          .mask = mask,
          .causal = true,
          .rel_key = x[1],
          .rel_value = x[2],
          .relative_k = 1,
          .dropout = 0.4,
          .gen = &gen,
          .training = true};
}

}  // namespace

BOOST_AUTO_TEST_CASE(fused_self_attention_is_twice_differentiable_both_ways) {
  // qkv (1, 3, 12): T = 3, H = 2, D = 2; causal, relative, dropout.
  const Inputs in = {randn64({1, 3, 12}, 1), randn64({3, 2}, 2), randn64({3, 2}, 3)};
  check_second_order(
      [](const Inputs& x) {
        Generator gen(7);
        return fused_self_attention(x[0], 2, second_order_args(x, gen));
      },
      in);
}

BOOST_AUTO_TEST_CASE(the_backward_op_names_itself_in_errors) {
  Tensor q = randn64({2, 2, 3, 4}, 1), k = randn64({2, 2, 5, 4}, 2);
  CHECK_THROWS_WITH(fused_attention_backward(randn64({2, 2, 3, 3}, 3), q, k, k, {}),
                    "fused_attention_backward: g_out must be the output's shape (2, 2, 3, 4) and "
                    "dtype float64: got (2, 2, 3, 3) float64");
  CHECK_THROWS_WITH(fused_self_attention_backward(randn64({2, 5, 4}, 3), randn64({2, 5, 18}, 4), 2,
                                                  {.causal = true}),
                    "fused_self_attention_backward: g_out must be the output's shape (2, 5, 6) and "
                    "dtype float64: got (2, 5, 4) float64");
}

// ---- attention on packed tokens ---------------------------------------------------------------

namespace {

// Sentences of these lengths padded to T: their rows in (B T, C), as nn::TokenPacking makes them.
PackedTokens tokens_of(const std::vector<std::size_t>& lengths, std::size_t T) {
  auto rows = std::make_shared<std::vector<std::size_t>>();
  for (std::size_t b = 0; b < lengths.size(); ++b)
    for (std::size_t t = 0; t < lengths[b]; ++t) rows->push_back(b * T + t);
  return {.batch = lengths.size(), .length = T, .rows = rows};
}

}  // namespace

// The packed call is the padded call with the padding masked, at the real tokens: its values and
// gradients to the bit (float32, on tapegrad's own kernels: the padded call only adds exact zeros
// to each sum; testing::same_bits_or_close), whatever the padding holds, with positions, causal,
// dropout and a mask of the caller's.
BOOST_AUTO_TEST_CASE(packed_tokens_give_the_padded_calls_bits) {
  // Rows of keys across the edges of the softmax's 16-element blocks (more than two of them, so
  // that a loop stepping 32 at a time would leave a remainder), and an empty sentence.
  const std::vector<std::size_t> lengths = {40, 33, 17, 0, 9};
  const std::size_t B = lengths.size(), T = 40, H = 2, D = 4, C = H * D, k = 2;
  const PackedTokens tokens = tokens_of(lengths, T);
  const Mask pad = padding_mask(lengths, T);
  Mask theirs = Mask::from_shape({B, 1, T, T});  // the caller's: a band of width 3
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < T; ++j) theirs(b, 0, i, j) = i <= j + 1 && j <= i + 1;
  const Mask both = mask_and(theirs, pad);
  for (const bool causal : {false, true})
    for (const bool relative : {false, true})
      for (const bool with_mask : {false, true})
        for (const double p : {0.0, 0.3}) {
          BOOST_TEST_CONTEXT("causal " << causal << ", relative " << relative << ", mask "
                                       << with_mask << ", dropout " << p) {
            Tensor padded = randn64({B, T, 3 * C}, 1).to(Dtype::f32).set_requires_grad();
            Tensor packed = gather_rows(padded, tokens.rows).detach().set_requires_grad();
            Tensor rel_key = randn64({2 * k + 1, D}, 2).to(Dtype::f32).set_requires_grad();
            Tensor rel_value = randn64({2 * k + 1, D}, 3).to(Dtype::f32).set_requires_grad();
            const auto args = [&](const Mask* mask, Generator& gen) {
              AttentionArgs a{.scale = 0.5,
                              .mask = mask,
                              .causal = causal,
                              .dropout = p,
                              .gen = &gen,
                              .training = true};
              if (relative) a.rel_key = rel_key, a.rel_value = rel_value, a.relative_k = k;
              return a;
            };
            Tape tape;
            TapeGuard recording(tape);
            Generator gen_padded(5), gen_packed(5);
            const Tensor y_padded =
                fused_self_attention(padded, H, args(with_mask ? &both : &pad, gen_padded));
            const Tensor y_packed = fused_token_attention(
                packed, H, tokens, args(with_mask ? &theirs : nullptr, gen_packed));
            BOOST_TEST(testing::same_bits_or_close(gather_rows(y_padded, tokens.rows), y_packed));
            // The same cotangent at the real tokens, zeros at padding (as unpack's would be).
            const Tensor g = randn64(y_packed.shape(), 6, false).to(Dtype::f32);
            sum(y_padded * scatter_rows(g, tokens.rows, y_padded.shape())).backward();
            const Tensor g_rel_key = relative ? rel_key.grad() : Tensor();
            const Tensor g_rel_value = relative ? rel_value.grad() : Tensor();
            if (relative) rel_key.zero_grad(), rel_value.zero_grad();
            sum(y_packed * g).backward();
            BOOST_TEST(testing::same_bits_or_close(gather_rows(padded.grad(), tokens.rows),
                                                   packed.grad()));
            if (relative) {
              BOOST_TEST(testing::same_bits_or_close(g_rel_key, rel_key.grad()));
              BOOST_TEST(testing::same_bits_or_close(g_rel_value, rel_value.grad()));
            }
          }
        }
}

BOOST_AUTO_TEST_CASE(fused_token_attention_is_twice_differentiable_both_ways) {
  // Sentences of 3, 0 and 2 tokens padded to 3; H = 2, D = 2; causal, relative, dropout, and a
  // mask of the caller's (no key further than 1 from its query: every query keeps itself).
  const PackedTokens tokens = tokens_of({3, 0, 2}, 3);
  Mask band = Mask::from_shape({3, 1, 3, 3});
  for (std::size_t b = 0; b < 3; ++b)
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 3; ++j) band(b, 0, i, j) = i <= j + 1 && j <= i + 1;
  const Inputs in = {randn64({5, 12}, 1), randn64({3, 2}, 2), randn64({3, 2}, 3)};
  check_second_order(
      [&](const Inputs& x) {
        Generator gen(7);
        return fused_token_attention(x[0], 2, tokens, second_order_args(x, gen, &band));
      },
      in);
  const Inputs backward_in = {randn64({5, 4}, 4), randn64({5, 12}, 5)};
  check_second_order(
      [&](const Inputs& x) {
        std::vector<Tensor> g =
            fused_token_attention_backward(x[0], x[1], 2, tokens, {.scale = 0.8, .mask = &band});
        return g[0];
      },
      backward_in);
}

// No query: no gradient for the keys and values, zeros (not whatever the memory held).
BOOST_AUTO_TEST_CASE(no_queries_give_zero_key_and_value_gradients) {
  const std::vector<Tensor> g =
      fused_attention_backward(randn64({1, 2, 0, 3}, 1), randn64({1, 2, 0, 3}, 2),
                               randn64({1, 2, 4, 3}, 3), randn64({1, 2, 4, 3}, 4), {.scale = 0.5});
  BOOST_TEST(g[0].shape() == (Shape{1, 2, 0, 3}));
  BOOST_TEST((g[1].data<double>() == xt::zeros<double>({1, 2, 4, 3})));
  BOOST_TEST((g[2].data<double>() == xt::zeros<double>({1, 2, 4, 3})));
}

BOOST_AUTO_TEST_CASE(packed_tokens_are_checked) {
  const PackedTokens tokens = tokens_of({2, 1}, 3);  // rows 0, 1, 3
  CHECK_THROWS_WITH(fused_token_attention(randn64({4, 12}, 1), 2, tokens, {}),
                    "fused_token_attention: needs qkv (N, 3C) with N = 3 packed tokens and C a "
                    "multiple of the 2 heads: got (4, 12)");
  CHECK_THROWS_WITH(fused_token_attention(randn64({3, 12}, 1), 2, {.batch = 2, .length = 3}, {}),
                    "fused_token_attention: no packed rows given (a null list)");
  const auto rows = [](std::vector<std::size_t> r) {
    return std::make_shared<const std::vector<std::size_t>>(std::move(r));
  };
  CHECK_THROWS_WITH(
      fused_token_attention(randn64({3, 12}, 1), 2,
                            {.batch = 2, .length = 3, .rows = rows({0, 1, 4})}, {}),
      "fused_token_attention: each sentence's tokens must stand at its first places: packed row "
      "2 is place 1 of sentence 1, which has 0 tokens before it");
  CHECK_THROWS_WITH(
      fused_token_attention(randn64({3, 12}, 1), 2,
                            {.batch = 2, .length = 3, .rows = rows({0, 3, 6})}, {}),
      "fused_token_attention: packed rows must increase and lie below B T = 6: row 2 is 6");
  CHECK_THROWS_WITH(
      fused_token_attention(randn64({3, 12}, 1), 2,
                            {.batch = 2, .length = 3, .rows = rows({0, 3, 3})}, {}),
      "fused_token_attention: packed rows must increase and lie below B T = 6: row 2 is 3");
  CHECK_THROWS_WITH(
      fused_token_attention_backward(randn64({3, 6}, 2), randn64({3, 12}, 1), 2, tokens, {}),
      "fused_token_attention_backward: g_out must be the output's shape (3, 4) and "
      "dtype float64: got (3, 6) float64");
}

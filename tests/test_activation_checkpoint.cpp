// Activation checkpointing (autograd/activation_checkpoint.hpp): a checkpointed segment gives the
// gradients of the same code without checkpointing to the bit (float32, dropout on, through
// backward() and tg::grad, on transformer blocks), its derivatives of second order pass gradcheck
// both ways, generators are replayed and left alone, and misuse throws naming what is wrong.
#define BOOST_TEST_MODULE activation_checkpoint
#include <cstring>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using Inputs = std::vector<Tensor>;

namespace {

// The same dtype, shape and bits: checkpointing runs the same kernels on the same values and
// sums the same terms in the same order, so nothing less is right.
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  return std::visit(
      [&](const auto& x) {
        const auto& y = std::get<std::decay_t<decltype(x)>>(b.impl()->value);
        return std::memcmp(x.data(), y.data(), x.size() * sizeof(*x.data())) == 0;
      },
      a.impl()->value);
}

// A float32 leaf of N(0, 1) values that requires grad.
Tensor leaf(const Shape& shape, std::uint64_t seed, const std::string& name = "") {
  Generator gen(seed);
  Tensor t = randn(shape, gen);
  t.set_requires_grad();
  if (!name.empty()) t.set_name(name);
  return t;
}

// What one forward and backward gives: the output, the gradients (of `wrt`, in order), and the
// generator after the forward and after the backward.
struct Run {
  Tensor y;
  std::vector<Tensor> grads;
  Generator after_forward, after_backward;
};

// Seeds `gen`, runs `forward` on a fresh tape and differentiates sum(y * weights) for `wrt`:
// through backward() (grad() of each, zeroed first) or through tg::grad.
Run run(Generator& gen, const std::function<Tensor()>& forward, const std::vector<Tensor>& wrt,
        bool through_grad) {
  for (Tensor t : wrt) t.zero_grad();
  gen.seed_with(11);
  Run r;
  Tape tape;
  TapeGuard recording(tape);
  r.y = forward();
  r.after_forward = gen;
  Generator weights(12);
  Tensor loss = sum(r.y * randn(r.y.shape(), weights, r.y.dtype()));
  if (through_grad) {
    r.grads = grad({loss}, wrt);
  } else {
    loss.backward();
    for (const Tensor& t : wrt) r.grads.push_back(t.grad());
  }
  r.after_backward = gen;
  return r;
}

// Both runs give the same output and gradients, bit for bit, and draw the same numbers.
void check_same(const Run& plain, const Run& checkpointed) {
  BOOST_TEST(same_bits(plain.y, checkpointed.y));
  BOOST_TEST_REQUIRE(plain.grads.size() == checkpointed.grads.size());
  for (std::size_t i = 0; i < plain.grads.size(); ++i)
    BOOST_TEST(same_bits(plain.grads[i], checkpointed.grads[i]), "gradient " << i);
  BOOST_TEST((plain.after_forward == checkpointed.after_forward));
  // Backward replays the draws of the forward and then puts the generator back.
  BOOST_TEST((checkpointed.after_backward == checkpointed.after_forward));
}

// A small segment with dropout: y = dropout(tanh(x W), 0.5) + x W2.
Tensor segment(const Inputs& in, Generator& gen) {
  return dropout(tanh(matmul(in[0], in[1])), 0.5, gen) + matmul(in[0], in[2]);
}

TransformerOptions block_options(std::size_t d_model = 8) {
  return {.d_model = d_model,
          .heads = 2,
          .ff = 2 * d_model,
          .layers = 1,
          .dropout = 0.3,
          .attention_dropout = 0.2};
}

std::vector<Tensor> with_parameters(std::vector<Tensor> inputs, const Module& m) {
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  return inputs;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_segment_with_dropout_gives_the_same_bits) {
  Generator gen;
  Tensor x = leaf({6, 5}, 1), w = leaf({5, 4}, 2), w2 = leaf({5, 4}, 3);
  // w is read again after the segment, so its gradient sums terms from inside and outside.
  const auto plain = [&] { return segment({x, w, w2}, gen) * sum(w); };
  const auto checkpointed = [&] {
    const auto f = [&](const Inputs& in) { return segment(in, gen); };
    return checkpoint(f, {x, w, w2}, {.generators = {&gen}}) * sum(w);
  };
  for (bool through_grad : {false, true}) {
    BOOST_TEST_CONTEXT("through tg::grad " << through_grad) {
      check_same(run(gen, plain, {x, w, w2}, through_grad),
                 run(gen, checkpointed, {x, w, w2}, through_grad));
    }
  }
  // Dropout did drop: some outputs of the dropout are zero.
  gen.seed_with(11);
  const Tensor d = dropout(tanh(matmul(x, w)), 0.5, gen);
  BOOST_TEST(std::count(d.data<float>().begin(), d.data<float>().end(), 0.0f) > 0);
}

// Two backward passes without zeroing the gradients in between (gradient accumulation): the sums
// in grad() are the same too.
BOOST_AUTO_TEST_CASE(gradients_accumulate_across_backward_passes_as_without_checkpointing) {
  Generator gen;
  Tensor x = leaf({6, 5}, 30), w = leaf({5, 4}, 31), w2 = leaf({5, 4}, 32);
  const auto accumulated = [&](bool checkpointed) {
    for (Tensor t : {x, w, w2}) t.zero_grad();
    gen.seed_with(13);
    for (int pass = 0; pass < 2; ++pass) {
      Tape tape;
      TapeGuard recording(tape);
      const auto f = [&](const Inputs& in) { return segment(in, gen); };
      Tensor y = checkpointed ? checkpoint(f, {x, w, w2}, {.generators = {&gen}}) : f({x, w, w2});
      sum(y * y).backward();
    }
    return std::vector<Tensor>{x.grad(), w.grad(), w2.grad()};
  };
  const std::vector<Tensor> plain = accumulated(false), checkpointed = accumulated(true);
  for (std::size_t i = 0; i < plain.size(); ++i) BOOST_TEST(same_bits(plain[i], checkpointed[i]));
}

BOOST_AUTO_TEST_CASE(an_encoder_layer_gives_the_same_bits_with_dropout) {
  Generator gen(1);
  EncoderLayer layer(block_options(), gen);
  Tensor x = leaf({3, 5, 8}, 2);
  const Mask mask = padding_mask({5, 3, 4}, 5);
  const std::vector<Tensor> wrt = with_parameters({x}, layer);
  const auto plain = [&] { return layer.forward(x, mask); };
  const auto checkpointed = [&] {
    return nn::checkpoint(layer, [&](const Inputs& in) { return layer.forward(in[0], mask); }, {x});
  };
  for (bool through_grad : {false, true}) {
    BOOST_TEST_CONTEXT("through tg::grad " << through_grad) {
      check_same(run(gen, plain, wrt, through_grad), run(gen, checkpointed, wrt, through_grad));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_decoder_layer_gives_the_same_bits_with_dropout) {
  Generator gen(3);
  DecoderLayer layer(block_options(), gen);
  Tensor y = leaf({2, 4, 8}, 4), memory = leaf({2, 6, 8}, 5);
  const DecodeLayerOptions call{.memory_mask = padding_mask({6, 4}, 6)};
  const std::vector<Tensor> wrt = with_parameters({y, memory}, layer);
  const auto plain = [&] { return layer.forward(y, memory, call); };
  const auto checkpointed = [&] {
    return nn::checkpoint(
        layer, [&](const Inputs& in) { return layer.forward(in[0], in[1], call); }, {y, memory});
  };
  for (bool through_grad : {false, true}) {
    BOOST_TEST_CONTEXT("through tg::grad " << through_grad) {
      check_same(run(gen, plain, wrt, through_grad), run(gen, checkpointed, wrt, through_grad));
    }
  }
}

BOOST_AUTO_TEST_CASE(nested_checkpoints_and_an_identity_give_the_same_bits) {
  Generator gen;
  Tensor x = leaf({4, 5}, 6), w = leaf({5, 5}, 7), w2 = leaf({5, 5}, 8);
  const auto plain = [&] { return segment({segment({x, w, w2}, gen), w, w2}, gen); };
  const auto nested = [&] {
    const auto inner = [&](const Inputs& in) { return segment(in, gen); };
    // The outer segment runs again in backward, after this lambda returned: it holds a copy of
    // inner, not a reference to it.
    const auto outer = [inner, &gen](const Inputs& in) {
      Tensor h = checkpoint(inner, in, {.generators = {&gen}});
      return segment({h, in[1], in[2]}, gen);
    };
    return checkpoint(outer, {x, w, w2}, {.generators = {&gen}});
  };
  check_same(run(gen, plain, {x, w, w2}, false), run(gen, nested, {x, w, w2}, false));
  // A segment that returns its input passes the gradient straight through.
  const auto identity = [&] {
    return checkpoint([](const Inputs& in) { return in[0]; }, {x}) * 2.0;
  };
  const auto doubled = [&] { return x * 2.0; };
  check_same(run(gen, doubled, {x}, false), run(gen, identity, {x}, false));
}

BOOST_AUTO_TEST_CASE(the_tape_keeps_the_inputs_only_and_drops_the_recompute) {
  Generator gen(9);
  EncoderLayer layer(block_options(16), gen);
  Tensor x = leaf({4, 12, 16}, 10);
  const auto saved_and_size = [&](bool checkpointed) {
    Tape tape;
    TapeGuard recording(tape);
    Tensor x1 = x * 1.0;  // not a leaf: the checkpoint keeps it
    Tensor y =
        checkpointed
            ? nn::checkpoint(layer, [&](const Inputs& in) { return layer.forward(in[0]); }, {x1})
            : layer.forward(x1);
    const std::size_t saved = tape.saved_bytes();
    Tensor loss = sum(y);
    const std::size_t ops = tape.size();
    loss.backward();
    BOOST_TEST(tape.size() == ops);  // the recomputed ops left the tape again
    return std::pair{saved, ops};
  };
  const auto [plain_bytes, plain_ops] = saved_and_size(false);
  const auto [checkpoint_bytes, checkpoint_ops] = saved_and_size(true);
  BOOST_TEST(checkpoint_ops == 3u);  // mul, checkpoint, sum
  BOOST_TEST(checkpoint_bytes == x.numel() * sizeof(float));
  BOOST_TEST(plain_bytes > 10 * checkpoint_bytes);
}

BOOST_AUTO_TEST_CASE(retained_graphs_and_the_leaf_done_hook_work_through_a_checkpoint) {
  Generator gen;
  Tensor x = leaf({3, 4}, 11), w = leaf({4, 4}, 12), w2 = leaf({4, 4}, 13);
  const auto f = [&](const Inputs& in) { return segment(in, gen); };
  Tape tape;
  TapeGuard recording(tape);
  Tensor y = sum(checkpoint(f, {x, w, w2}, {.generators = {&gen}}));
  const std::vector<Tensor> first = grad({y}, {x, w, w2}, {.retain_graph = true});
  const std::vector<Tensor> second = grad({y}, {x, w, w2});
  for (std::size_t i = 0; i < first.size(); ++i) BOOST_TEST(same_bits(first[i], second[i]));
  // The hook the gradient reducer uses: each leaf once, when its gradient is complete.
  tape.clear();
  std::map<const TensorImpl*, AnyArray> at_done;
  tape.on_backward([] {}, [&](const TensorImpl& l) { at_done.emplace(&l, *l.grad); });
  sum(checkpoint(f, {x, w, w2}, {.generators = {&gen}}) * sum(w)).backward();
  BOOST_TEST(at_done.size() == 3u);
  for (const Tensor& t : {x, w, w2}) {
    BOOST_TEST_REQUIRE(at_done.count(t.impl().get()) == 1u);
    BOOST_TEST(same_bits(Tensor(std::get<Array<float>>(at_done.at(t.impl().get()))), t.grad()));
  }
}

BOOST_AUTO_TEST_CASE(second_order_derivatives_pass_gradcheck_both_ways) {
  const GradcheckOptions both{.order = 2, .modes = CheckModes::both};
  Generator gen;
  // A small function with dropout; f seeds the generator, so every call draws the same masks.
  const auto f = [&](const Inputs& in) {
    gen.seed_with(3);
    return checkpoint([&](const Inputs& s) { return segment(s, gen) * s[0]; }, in,
                      {.generators = {&gen}});
  };
  CHECK_GRAD(
      f, {testing::randn64({3, 4}, 1), testing::randn64({4, 4}, 2), testing::randn64({4, 4}, 3)},
      both);
  // A small transformer block with dropout, through nn::checkpoint.  It reads its parameters from
  // the module, where forward mode gives them no tangents: both ways for the input, and reverse of
  // reverse for the parameters too.
  EncoderLayer layer(block_options(4), gen);
  layer.to(Dtype::f64);
  const auto block = [&](const Inputs& in) {
    gen.seed_with(4);
    return nn::checkpoint(layer, [&](const Inputs& s) { return layer.forward(s[0]); }, {in[0]});
  };
  const Tensor x = testing::randn64({2, 3, 4}, 5);
  CHECK_GRAD(block, {x}, both);
  CHECK_GRAD(block, with_parameters({x}, layer), {.order = 2});
}

BOOST_AUTO_TEST_CASE(second_order_gradients_agree_with_the_plain_ones) {
  Generator gen;
  Tensor x = leaf({3, 4}, 14), w = leaf({4, 4}, 15), w2 = leaf({4, 4}, 16);
  const auto hessian_row = [&](bool checkpointed) {
    gen.seed_with(5);
    Tape tape;
    TapeGuard recording(tape);
    const auto f = [&](const Inputs& in) { return segment(in, gen) * in[0]; };
    Tensor y = checkpointed ? checkpoint(f, {x, w, w2}, {.generators = {&gen}}) : f({x, w, w2});
    const std::vector<Tensor> g = grad({sum(y * y)}, {x, w}, {.create_graph = true});
    return grad({sum(g[0] * g[0]) + sum(g[1])}, {x, w, w2});
  };
  const std::vector<Tensor> plain = hessian_row(false), checkpointed = hessian_row(true);
  for (std::size_t i = 0; i < plain.size(); ++i) {
    const double scale = max(abs(plain[i]), {0, 1}).item();
    BOOST_TEST(max(abs(plain[i] - checkpointed[i]), {0, 1}).item() <= 1e-5 * scale, "input " << i);
  }
}

BOOST_AUTO_TEST_CASE(forward_mode_runs_through_a_checkpoint) {
  Generator gen;
  const Inputs primals = {testing::randn64({3, 4}, 6, false), testing::randn64({4, 4}, 7, false),
                          testing::randn64({4, 4}, 8, false)};
  const Inputs tangents = {testing::randn64({3, 4}, 9, false), testing::randn64({4, 4}, 10, false),
                           Tensor()};
  const auto plain = [&](const Inputs& in) {
    gen.seed_with(6);
    return segment(in, gen);
  };
  const auto checkpointed = [&](const Inputs& in) {
    gen.seed_with(6);
    return checkpoint([&](const Inputs& s) { return segment(s, gen); }, in, {.generators = {&gen}});
  };
  const auto [y, dy] = jvp(plain, primals, tangents);
  const auto [y_c, dy_c] = jvp(checkpointed, primals, tangents);
  BOOST_TEST(same_bits(y, y_c));
  BOOST_TEST(same_bits(dy, dy_c));
  // Forward over reverse (tg::hvp), with a tape recording and tangents on the inputs.
  const auto scalar_of = [&](const Inputs& in) { return sum(checkpointed(in) * in[0]); };
  const auto scalar_plain = [&](const Inputs& in) { return sum(plain(in) * in[0]); };
  const Inputs h = hvp(scalar_of, primals, tangents),
               h_plain = hvp(scalar_plain, primals, tangents);
  for (std::size_t i = 0; i < h.size(); ++i) BOOST_TEST(same_bits(h[i], h_plain[i]));
}

BOOST_AUTO_TEST_CASE(a_forgotten_generator_throws_at_the_draw) {
  Generator gen, other(1);
  Tensor x = leaf({3, 4}, 17), w = leaf({4, 4}, 18), w2 = leaf({4, 4}, 19);
  Tape tape;
  TapeGuard recording(tape);
  const auto f = [&](const Inputs& in) { return segment(in, gen); };
  CHECK_THROWS_WITH(checkpoint(f, {x, w, w2}), "checkpoint: the segment drew from a generator");
  CHECK_THROWS_WITH(checkpoint(f, {x, w, w2}, {.generators = {&other}}),
                    "not among the 1 it was given to replay");
  // An inner checkpoint may replay only what the outer one replays.
  const auto outer = [&](const Inputs& in) {
    return checkpoint(f, in, {.generators = {&gen, &other}}) * 2.0;
  };
  Tensor y = checkpoint(outer, {x, w, w2}, {.generators = {&gen}});  // inner runs plain: no tape
  CHECK_THROWS_WITH(sum(y).backward(), "generator 1 is not one that the enclosing checkpoint");
  // A module declares what it draws from, so nn::checkpoint cannot forget it.
  Dropout drop(0.5, gen);
  BOOST_TEST((drop.generators() == std::vector<Generator*>{&gen}));
}

BOOST_AUTO_TEST_CASE(a_tensor_read_inside_that_is_not_an_input_is_refused_by_name) {
  Generator gen;
  Tensor x = leaf({3, 4}, 20), w = leaf({4, 4}, 21, "fc.weight"), w2 = leaf({4, 4}, 22);
  const auto reads_w = [&](const Inputs& in) { return segment({in[0], w, in[1]}, gen); };
  Tape tape;
  TapeGuard recording(tape);
  Tensor y = sum(checkpoint(reads_w, {x, w2}, {.generators = {&gen}}));
  CHECK_THROWS_WITH(y.backward(),
                    "(matmul) inside it reads 'fc.weight' (4, 4), which requires grad but is not "
                    "one of the checkpoint's inputs");
  y = sum(checkpoint(reads_w, {x, w2}, {.generators = {&gen}}));
  CHECK_THROWS_WITH(grad(y, x), "reads 'fc.weight'");
  // The output of an op outside, read inside, the same way.
  Tensor h = x * 2.0;
  y = sum(checkpoint([&](const Inputs& in) { return in[0] + h; }, {x}));
  CHECK_THROWS_WITH(y.backward(), "reads the output of op #");
  // With no input that requires grad, at once.
  CHECK_THROWS_WITH(checkpoint(reads_w, {x.detach(), w2.detach()}, {.generators = {&gen}}),
                    "reads 'fc.weight'");
}

BOOST_AUTO_TEST_CASE(a_segment_that_changed_since_the_forward_is_refused) {
  Generator gen(23);
  EncoderLayer layer(block_options(), gen);
  Tensor x = leaf({2, 3, 8}, 24);
  const auto forward = [&] {
    return sum(nn::checkpoint(layer, [&](const Inputs& in) { return layer.forward(in[0]); }, {x}));
  };
  Tape tape;
  TapeGuard recording(tape);
  Tensor y = forward();
  {  // an optimizer step between forward and backward
    NoGradGuard no_grad;
    layer.norm1.parameters()[0].data<float>()(0) += 1.0f;
  }
  CHECK_THROWS_WITH(y.backward(),
                    "checkpoint: the segment, computed again in backward, gave other");
  y = forward();
  layer.eval();  // dropout off in the recompute
  CHECK_THROWS_WITH(y.backward(), "gave other values than in the forward");
  layer.train();
}

BOOST_AUTO_TEST_CASE(bad_arguments_throw_naming_checkpoint) {
  Tensor x = leaf({2, 2}, 25);
  const auto f = [](const Inputs& in) { return in[0] * 2.0; };
  Tape tape;
  TapeGuard recording(tape);
  CHECK_THROWS_WITH(checkpoint(f, {x, Tensor()}), "checkpoint: input 1 is an undefined tensor");
  CHECK_THROWS_WITH(checkpoint(f, {x}, {.generators = {nullptr}}),
                    "checkpoint: generator 0 is null");
  CHECK_THROWS_WITH(checkpoint(Function(), {x}), "checkpoint: no function given");
  CHECK_THROWS_WITH(checkpoint([](const Inputs&) { return Tensor(); }, {x}),
                    "checkpoint: the segment returned an undefined tensor");
  // With no tape recording, fn just runs.
  NoGradGuard no_grad;
  BOOST_TEST(same_bits(checkpoint(f, {x}), x * 2.0));
}

BOOST_AUTO_TEST_CASE(the_profiler_counts_the_recompute_as_forward_calls_of_its_ops) {
  Generator gen;
  Tensor x = leaf({3, 4}, 26), w = leaf({4, 4}, 27), w2 = leaf({4, 4}, 28);
  Profiler profile;
  {
    Tape tape;
    TapeGuard recording(tape);
    sum(checkpoint([&](const Inputs& in) { return segment(in, gen); }, {x, w, w2},
                   {.generators = {&gen}}))
        .backward();
  }
  const auto& ops = profile.ops();
  BOOST_TEST(ops.at("checkpoint").calls == 1u);
  BOOST_TEST(ops.at("matmul").calls == 2u);  // recorded in the recompute only
  BOOST_TEST(ops.at("dropout").calls == 1u);
  for (const auto& [op, t] : ops) BOOST_TEST(t.backward_ms >= -1e-9, op);  // nothing taken twice
}

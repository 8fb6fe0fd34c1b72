#define BOOST_TEST_MODULE ops_nn
#include <cmath>

#include "testing.hpp"

using namespace tg;
using testing::randn64;
using Inputs = std::vector<Tensor>;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_CASE(softmax_and_log_softmax) {
  Tensor x = from_vector({1, 2, 3, 1000, 1000, 1000}, {2, 3}, Dtype::f64);
  Tensor p = softmax(x);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  BOOST_TEST(p.data<double>()(0, 2) == std::exp(3.0) / z, tt::tolerance(1e-12));
  BOOST_TEST(p.data<double>()(1, 0) == 1.0 / 3, tt::tolerance(1e-12));  // no overflow
  Tensor lp = log_softmax(x);
  BOOST_TEST(lp.data<double>()(0, 0) == 1.0 - std::log(z), tt::tolerance(1e-12));
  BOOST_TEST(std::isfinite(lp.data<double>()(1, 1)));
  Tensor y = randn64({2, 3, 4}, 1);
  for (std::int64_t axis : {-1, 0, 1}) {
    CHECK_GRAD([axis](const Inputs& in) { return softmax(in[0], axis); }, {y});
    CHECK_GRAD([axis](const Inputs& in) { return log_softmax(in[0], axis); }, {y});
  }
  CHECK_THROWS_WITH(softmax(y, 3), "softmax: axis 3 is out of range");
}

BOOST_AUTO_TEST_CASE(embedding_gathers_rows_and_scatters_gradients) {
  Tensor w = randn64({5, 3}, 1);
  Ids ids = {{1, 0, 4}, {1, 1, 2}};
  Tensor e = embedding(w, ids);
  BOOST_TEST(e.shape() == (Shape{2, 3, 3}));
  BOOST_TEST(e.data<double>()(0, 2, 1) == w.data<double>()(4, 1));
  CHECK_GRAD([ids](const Inputs& in) { return embedding(in[0], ids); }, {w});
  // With a padding id, the padded positions are masked out (as a model does): then the padding
  // row has no effect on the output, and its zero gradient agrees with finite differences.
  Tensor keep(Array<double>(xt::expand_dims(xt::cast<double>(xt::not_equal(ids, 1)), 2)));
  CHECK_GRAD([ids, keep](const Inputs& in) { return embedding(in[0], ids, 1) * keep; }, {w});
  {  // the padding row gets no gradient; a row used three times gets three
    Tape tape;
    TapeGuard recording(tape);
    sum(embedding(w, ids, 0)).backward();
    BOOST_TEST(w.grad_data<double>()(0, 0) == 0.0);
    BOOST_TEST(w.grad_data<double>()(1, 0) == 3.0);
    w.zero_grad();
  }
  CHECK_THROWS_WITH(
      embedding(w, Ids{1, 5}),
      "embedding: token id 5 at flat position 1 of ids (2) is out of range for a table of 5 rows");
  CHECK_THROWS_WITH(embedding(w, Ids{-1}), "token id -1");
  CHECK_THROWS_WITH(embedding(randn64({5}, 1), Ids{1}),
                    "embedding: the table must be (V, C), got (5)");
}

BOOST_AUTO_TEST_CASE(embedding_bags_pool_groups_by_their_means) {
  Tensor w = randn64({6, 3}, 2);
  // Two bags of K = 5 slots in groups {1, 4}; 0 is an empty slot.
  const Ids ids = {{{2, 1, 3, 0, 3}, {0, 4, 0, 0, 0}}};  // (1, 2, 5)
  const std::vector<std::size_t> groups = {1, 4};
  const Tensor y = embedding_bags(w, ids, groups);
  BOOST_TEST(y.shape() == (Shape{1, 2, 3}));
  const auto& W = w.data<double>();
  for (std::size_t c = 0; c < 3; ++c) {
    BOOST_TEST(y.data<double>()(0, 0, c) == W(2, c) + (W(1, c) + W(3, c) + W(3, c)) / 3,
               boost::test_tools::tolerance(1e-12));
    BOOST_TEST(y.data<double>()(0, 1, c) == W(4, c),
               boost::test_tools::tolerance(1e-12));  // empty first group adds 0
  }
  // Row 0 is never read, so finite differences agree with its zero gradient too.
  CHECK_GRAD([&](const Inputs& in) { return embedding_bags(in[0], ids, groups); }, {w});
  // The same as the composition it replaces: lookups, then each group's sum over its count.
  const Tensor e = embedding(w, ids, 0);  // (1, 2, 5, 3); row 0 is whatever the table holds
  const double third = 1.0 / 3;
  Array<double> inv = Array<double>::from_shape({1, 2, 5, 1});
  std::copy_n(std::vector<double>{1, third, third, 0, third, 0, 1, 0, 0, 0}.begin(), 10,
              inv.begin());
  const Tensor composed = sum(e * Tensor(inv), {2});
  BOOST_TEST(xt::allclose(y.data<double>(), composed.data<double>(), 1e-12, 1e-12));
  CHECK_THROWS_WITH(embedding_bags(w, ids, {1, 3}),
                    "embedding_bags: ids have 5 slots per bag, the groups 4");
  CHECK_THROWS_WITH(embedding_bags(w, ids, {0, 5}), "embedding_bags: a group of 0 slots");
  CHECK_THROWS_WITH(embedding_bags(w, Ids{{1, 6}}, {2}),
                    "embedding_bags: token id 6 at flat position 1 of ids (1, 2) is out of range "
                    "for a table of 6 rows");
}

// Dropout of packed rows drops what dropout of the whole tensor drops at those rows, from the
// same draw, in parallel or not; its gradient is checked like dropout's.
BOOST_AUTO_TEST_CASE(dropout_of_rows_drops_as_at_their_places) {
  auto rows = std::make_shared<std::vector<std::size_t>>();
  for (std::size_t i = 0; i < 3000; ++i)
    if (i % 4 != 3) rows->push_back(i);
  Tensor whole = randn64({3000, 96}, 1).to(Dtype::f32);
  Tensor part = take_rows(whole, *rows);
  Generator g1(5), g2(5);
  const Tensor dropped_whole = dropout(whole, 0.3, g1);
  const Tensor dropped_part = dropout(part, 0.3, g2, true, rows);
  BOOST_TEST((take_rows(dropped_whole, *rows).data<float>() == dropped_part.data<float>()));
  BOOST_TEST(g1.next_u64() == g2.next_u64());  // one draw each
  Generator g3(5);
  BOOST_TEST((dropout(part, 0.3, g3, false, rows).data<float>() == part.data<float>()));
  const auto few =
      std::make_shared<const std::vector<std::size_t>>(std::vector<std::size_t>{1, 4, 5});
  CHECK_GRAD(
      [&](const Inputs& in) {
        Generator gen(11);
        return dropout(in[0], 0.5, gen, true, few);
      },
      {randn64({3, 4}, 2)}, GradcheckOptions{.order = 2, .modes = CheckModes::both});
  CHECK_THROWS_WITH(dropout(randn64({2, 4}, 3), 0.5, g1, true, few),
                    "dropout: x must be (R, C) with R = 3, the rows it stands at; got x (2, 4)");
}

BOOST_AUTO_TEST_CASE(dropout_is_seeded_scaled_and_differentiable) {
  Tensor x = ones({1000});
  Generator g1(7), g2(7);
  Tensor a = dropout(x, 0.25, g1), b = dropout(x, 0.25, g2);
  BOOST_TEST(a.data<float>() == b.data<float>());  // same seed, same mask
  std::size_t kept = 0;
  for (float v : a.data<float>()) {
    BOOST_TEST((v == 0.0f || std::abs(v - 1 / 0.75f) < 1e-6f));
    kept += v != 0.0f;
  }
  BOOST_TEST(kept > 700u);
  BOOST_TEST(kept < 800u);
  Generator g3(7);
  BOOST_TEST(dropout(x, 0.25, g3, /*training=*/false).data<float>() == x.data<float>());
  Tensor y = randn64({3, 4}, 2);
  CHECK_GRAD(
      [](const Inputs& in) {
        Generator gen(11);  // the same mask on every evaluation
        return dropout(in[0], 0.5, gen);
      },
      {y});
  CHECK_THROWS_WITH(dropout(x, 1.5, g1),
                    "dropout: the drop probability must be in [0, 1], got 1.5");
  // p = 1 drops everything; each call draws a new mask.
  BOOST_TEST(xt::all(xt::equal(dropout(x, 1.0, g1).data<float>(), 0.0f)));
  BOOST_TEST(!(dropout(x, 0.5, g1).data<float>() == dropout(x, 0.5, g1).data<float>()));
  // A large tensor is filled in parallel chunks: the same mask on 1 and 2 threads, and the
  // backward pass (which recomputes the mask) zeroes exactly the dropped elements.
  Tensor big = ones({100000});
  big.set_requires_grad();
  const auto run = [&](std::size_t threads) {
    set_num_threads(threads);
    Generator gen(3);
    Tape tape;
    TapeGuard recording(tape);
    big.zero_grad();
    Tensor d = dropout(big, 0.3, gen);
    sum(d).backward();
    return std::pair{d.data<float>(), big.grad_data<float>()};
  };
  const auto [one, g_one] = run(1);
  const auto [two, g_two] = run(2);
  set_num_threads(2);
  BOOST_TEST((one == two));
  BOOST_TEST((g_one == g_two));
  BOOST_TEST((g_one == one));  // d(sum(x * mask))/dx = mask, which equals the output for x = 1
  const double dropped = xt::sum(xt::equal(one, 0.0f))();
  BOOST_TEST(dropped / 100000 == 0.3, boost::test_tools::tolerance(0.02));
}

BOOST_AUTO_TEST_CASE(cross_entropy_matches_the_definition) {
  Tensor logits = randn64({4, 5}, 3);
  Ids targets = {2, -100, 0, 4};
  for (double e : {0.0, 0.1}) {
    CrossEntropyOptions opt;
    opt.label_smoothing = e;
    Tensor loss = cross_entropy(logits, targets, opt);
    // By hand: -mean over the 3 kept rows of (1 - e) log p_t + e / C sum_c log p_c.
    Array<double> lp = log_softmax(logits.detach()).data<double>();
    double want = 0;
    for (std::size_t r : {0u, 2u, 3u}) {
      double all = 0;
      for (std::size_t c = 0; c < 5; ++c) all += lp(r, c);
      want -= (1 - e) * lp(r, targets(r)) + e / 5 * all;
    }
    BOOST_TEST(loss.item() == want / 3, tt::tolerance(1e-12));
    CHECK_GRAD([targets, opt](const Inputs& in) { return cross_entropy(in[0], targets, opt); },
               {logits});
  }
  // (B, T, V) logits with (B, T) targets.
  Tensor seq = randn64({2, 3, 4}, 4);
  Ids seq_targets = {{1, 3, -100}, {0, -100, -100}};
  CHECK_GRAD([seq_targets](const Inputs& in) { return cross_entropy(in[0], seq_targets); }, {seq});
  // Every target ignored: 0 loss and 0 gradients, not NaN.
  Tape tape;
  TapeGuard recording(tape);
  Tensor none = cross_entropy(logits, Ids{-100, -100, -100, -100});
  BOOST_TEST(none.item() == 0.0);
  none.backward();
  BOOST_TEST(sum(abs(logits.grad())).item() == 0.0);
  CHECK_THROWS_WITH(cross_entropy(logits, Ids{0, 1, 5, 2}),
                    "cross_entropy: target 5 at flat position 2 is out of range for 5 classes");
  CHECK_THROWS_WITH(
      cross_entropy(logits, Ids{0, 1}),
      "logits (..., C) and targets (...) must agree: logits are (4, 5), targets are (2)");
}

BOOST_AUTO_TEST_CASE(layer_norm_normalises_and_gradchecks) {
  Tensor x = randn64({2, 3, 6}, 1), gamma = randn64({6}, 2), beta = randn64({6}, 3);
  Tensor y = layer_norm(x, ones({6}, Dtype::f64), zeros({6}, Dtype::f64));
  Tensor m = mean(y, {-1}), v = mean(y * y, {-1});
  for (double mu : m.data<double>()) BOOST_TEST(mu == 0.0, tt::tolerance(1e-12));
  for (double var : v.data<double>()) BOOST_TEST(var == 1.0, tt::tolerance(1e-4));  // eps
  CHECK_GRAD([](const Inputs& in) { return layer_norm(in[0], in[1], in[2]); }, {x, gamma, beta});
  Tensor row = randn64({1, 1}, 4);  // C = 1: xhat = 0, y = beta
  CHECK_GRAD([](const Inputs& in) { return layer_norm(in[0], in[1], in[2]); },
             {row, randn64({1}, 5), randn64({1}, 6)});
  CHECK_THROWS_WITH(
      layer_norm(x, gamma, randn64({5}, 1)),
      "layer_norm: gamma and beta must be (C) = (6) for x (2, 3, 6), got gamma (6), beta (5)");
}

// To second order in both modes, with targets that require grad and logits up to about 9 (where
// the loss is nearly linear).
BOOST_AUTO_TEST_CASE(binary_cross_entropy_with_logits_is_stable_and_gradchecks) {
  Tensor x = randn64({3, 4}, 1) * 3.0;
  x = x.detach().set_requires_grad();
  Tensor t = testing::uniform64({3, 4}, 0.0, 1.0, 2);
  CHECK_GRAD([](const Inputs& in) { return binary_cross_entropy_with_logits(in[0], in[1]); },
             {x, t}, {.order = 2, .modes = CheckModes::both});
  // Against the definition with sigmoid, where that is accurate.
  Tensor small = from_vector({-2, 0, 0.5}, {3}, Dtype::f64),
         target = from_vector({0, 1, 0.3}, {3}, Dtype::f64);
  double want = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const double p = 1 / (1 + std::exp(-small.data<double>()(i))), ti = target.data<double>()(i);
    want -= ti * std::log(p) + (1 - ti) * std::log(1 - p);
  }
  BOOST_TEST(binary_cross_entropy_with_logits(small, target).item() == want / 3,
             tt::tolerance(1e-12));
  // Huge logits: finite loss (log(sigmoid) would give -inf).
  Tensor huge = from_vector({-1000, 1000}, {2}), ht = from_vector({1, 0}, {2});
  BOOST_TEST(binary_cross_entropy_with_logits(huge, ht).item() == 1000.0, tt::tolerance(1e-6));
  CHECK_THROWS_WITH(binary_cross_entropy_with_logits(huge, from_vector({1}, {1})),
                    "logits and targets must have one shape");
}

// Large inputs run in parallel chunks of rows.  The chunks depend on the sizes only, so one
// thread and two give the same bits, and the rows come out as if each were computed alone.
BOOST_AUTO_TEST_CASE(layer_norm_in_parallel_chunks_gives_the_same_bits_on_any_thread_count) {
  Generator gen(4);
  // 302 rows of 128: chunks of 128, 128 and 46 rows, and rows go four at a time, so rows 300
  // and 301 run one by one.
  const Tensor x = randn({302, 128}, gen), w = randn({302, 128}, gen);
  Tensor gamma = randn({128}, gen), beta = randn({128}, gen);
  gamma.set_requires_grad();
  beta.set_requires_grad();
  Tensor xg = x.detach();
  xg.set_requires_grad();
  const auto run = [&](std::size_t threads) {
    set_num_threads(threads);
    xg.zero_grad(), gamma.zero_grad(), beta.zero_grad();
    Tape tape;
    TapeGuard recording(tape);
    Tensor y = layer_norm(xg, gamma, beta);
    sum(y * w).backward();
    return std::vector<Array<float>>{y.data<float>(), xg.grad_data<float>(),
                                     gamma.grad_data<float>(), beta.grad_data<float>()};
  };
  const auto one = run(1), two = run(2);
  set_num_threads(2);
  for (std::size_t i = 0; i < one.size(); ++i) BOOST_TEST((one[i] == two[i]));  // exact
  // Each row as if alone, forward and backward (neither has cross-row sums in x's values or
  // gradient), whether it ran in a block of four rows or by itself.
  for (std::size_t r : {0, 1, 3, 5, 297, 299, 300, 301}) {
    Tensor row = slice(x, 0, r, r + 1).detach();
    row.set_requires_grad();
    Tape tape;
    TapeGuard recording(tape);
    Tensor alone = layer_norm(row, gamma, beta);
    sum(alone * slice(w, 0, r, r + 1)).backward();
    BOOST_TEST((slice(Tensor(one[0]), 0, r, r + 1).data<float>() == alone.data<float>()),
               "row " << r);
    BOOST_TEST((slice(Tensor(one[1]), 0, r, r + 1).data<float>() == row.grad_data<float>()),
               "row " << r);
  }
  // gamma's gradient: sum over rows of g_y * xhat, whatever the chunking.
  Tensor xhat = layer_norm(x, ones({128}), zeros({128}));
  const Array<float> expected = xt::sum(w.data<float>() * xhat.data<float>(), {0});
  BOOST_TEST(xt::allclose(one[2], expected, 1e-4, 1e-3));
}

// ---- second order: each op and each backward op, in both modes -----------------------------

namespace {
const GradcheckOptions both{.order = 2, .modes = CheckModes::both};
}  // namespace

BOOST_AUTO_TEST_CASE(softmax_and_log_softmax_pass_second_order_checks_both_ways) {
  Tensor x = randn64({2, 3, 2}, 1), v = randn64({2, 3, 2}, 2);
  for (std::int64_t axis : {-1, 1}) {
    CHECK_GRAD([axis](const Inputs& in) { return softmax(in[0], axis); }, {x}, both);
    CHECK_GRAD([axis](const Inputs& in) { return log_softmax(in[0], axis); }, {x}, both);
    // The backward ops in each of their inputs, y made by the forward op so that it is a
    // softmax (the rules of the backward ops hold for any y; this keeps the values in range).
    CHECK_GRAD(
        [axis](const Inputs& in) { return softmax_backward(in[0], softmax(in[1], axis), axis); },
        {v, x}, both);
    CHECK_GRAD(
        [axis](const Inputs& in) {
          return log_softmax_backward(in[0], log_softmax(in[1], axis), axis);
        },
        {v, x}, both);
  }
  // y used directly, not through the forward op.
  CHECK_GRAD([](const Inputs& in) { return softmax_backward(in[0], in[1]); }, {v, x}, both);
  CHECK_GRAD([](const Inputs& in) { return log_softmax_backward(in[0], in[1], 0); }, {v, x}, both);
  CHECK_THROWS_WITH(softmax_backward(v, randn64({2, 3}, 3)),
                    "softmax_backward: v and y must have one shape: (2, 3, 2) and (2, 3)");
}

BOOST_AUTO_TEST_CASE(embeddings_pass_second_order_checks_both_ways) {
  Tensor w = randn64({4, 3}, 1), g = randn64({2, 2, 3}, 2);
  const Ids ids = {{1, 0}, {3, 1}};
  CHECK_GRAD([ids](const Inputs& in) { return embedding(in[0], ids); }, {w}, both);
  // With a padding id the padding row is a constant: it gets neither a gradient nor a tangent,
  // so finite differences agree once the padded positions are masked out (as a model does).
  Tensor keep(Array<double>(xt::expand_dims(xt::cast<double>(xt::not_equal(ids, 1)), 2)));
  CHECK_GRAD([ids, keep](const Inputs& in) { return embedding(in[0], ids, 1) * keep; }, {w}, both);
  CHECK_GRAD([ids](const Inputs& in) { return embedding_backward(in[0], ids, 4, 1); }, {g}, both);
  // Squared, so that second derivatives are not all zero.
  CHECK_GRAD([ids](const Inputs& in) { return embedding(in[0] * in[0], ids); }, {w}, both);
  const Ids bag_ids = {{2, 1, 3}, {0, 3, 0}};  // 2 bags of K = 3 slots in groups {1, 2}
  const std::vector<std::size_t> groups = {1, 2};
  CHECK_GRAD([&](const Inputs& in) { return embedding_bags(in[0] * in[0], bag_ids, groups); }, {w},
             both);
  CHECK_GRAD([&](const Inputs& in) { return embedding_bags_backward(in[0], bag_ids, groups, 4); },
             {randn64({2, 3}, 3)}, both);
  CHECK_THROWS_WITH(
      embedding_backward(g, Ids{1, 2}, 4),
      "embedding_backward: g must be (2) followed by C, for ids (2); got g (2, 2, 3)");
  CHECK_THROWS_WITH(embedding_bags_backward(g, bag_ids, groups, 4),
                    "embedding_bags_backward: g must be (2) followed by C");
}

// The tangent of an embedding is zero at padding positions, and the gradient of the padding
// row zero: the two modes agree that the padding row is a constant.
BOOST_AUTO_TEST_CASE(the_padding_row_has_no_tangent) {
  Tensor w = randn64({3, 2}, 1);
  const Ids ids = {2, 0, 2};
  Tensor dw = ones({3, 2}, Dtype::f64);
  const auto [y, dy] = jvp([&](const Inputs& in) { return embedding(in[0], ids, 0); }, {w}, {dw});
  BOOST_TEST(dy.data<double>()(1, 0) == 0.0);  // ids[1] is the padding id
  BOOST_TEST(dy.data<double>()(0, 1) == 1.0);
  BOOST_TEST(y.data<double>()(1, 0) == w.data<double>()(0, 0));  // its value is still read
}

BOOST_AUTO_TEST_CASE(dropout_passes_second_order_checks_both_ways) {
  CHECK_GRAD(
      [](const Inputs& in) {
        Generator gen(11);  // the same mask on every evaluation
        return dropout(in[0] * in[0], 0.5, gen);
      },
      {randn64({3, 4}, 2)}, both);
}

// ---- second order: the rules of cross_entropy, layer_norm, BCE and their backward ops ---------

// Through the loss and through its backward op, with label smoothing and an ignored row.
BOOST_AUTO_TEST_CASE(cross_entropy_and_its_backward_pass_second_order_checks) {
  Tensor logits = randn64({3, 4}, 11), g = randn64({}, 12);
  const Ids targets = {2, -100, 0};
  for (double e : {0.0, 0.1}) {
    BOOST_TEST_CONTEXT("label smoothing " << e) {
      const CrossEntropyOptions opt{.label_smoothing = e};
      CHECK_GRAD([&](const Inputs& in) { return cross_entropy(in[0], targets, opt); }, {logits},
                 both);
      CHECK_GRAD(
          [&](const Inputs& in) { return cross_entropy_backward(in[0], in[1], targets, opt); },
          {g, logits}, both);
    }
  }
  // (B, T, C) logits, every row of one batch entry ignored.
  const Ids seq_targets = {{1, 0}, {-100, -100}};
  CHECK_GRAD([&](const Inputs& in) { return cross_entropy(in[0], seq_targets); },
             {randn64({2, 2, 3}, 13)}, both);
}

// The op gives the loss's gradient, to the bit (one kernel), and checks its arguments.
BOOST_AUTO_TEST_CASE(cross_entropy_backward_is_the_gradient_of_cross_entropy) {
  Tensor logits = randn64({4, 5}, 14);
  const Ids targets = {4, 0, -100, 1};
  const CrossEntropyOptions opt{.label_smoothing = 0.2};
  Tape tape;
  TapeGuard recording(tape);
  const Tensor by_backward = grad(cross_entropy(logits, targets, opt), logits);
  const Tensor by_op = cross_entropy_backward(scalar(1.0, Dtype::f64), logits, targets, opt);
  BOOST_TEST((by_op.data<double>() == by_backward.data<double>()));
  CHECK_THROWS_WITH(cross_entropy_backward(ones({1}, Dtype::f64), logits, targets),
                    "cross_entropy_backward: g_y is the gradient of the scalar loss, so it must "
                    "be a scalar (), got (1)");
  CHECK_THROWS_WITH(cross_entropy_backward(scalar(1.0, Dtype::f64), logits, Ids{0, 9, 0, 0}),
                    "cross_entropy_backward: target 9 at flat position 1 is out of range");
}

// The first-order backward hands the softmax it kept to the gradient (no copy) only when the
// tape will not run the rule again: with retain_graph, a second backward gives the same.
BOOST_AUTO_TEST_CASE(cross_entropy_keeps_its_softmax_for_a_retained_graph) {
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    Tensor logits = randn64({3, 4}, 15).to(dtype).detach().set_requires_grad();
    Tape tape;
    TapeGuard recording(tape);
    Tensor loss = cross_entropy(logits, Ids{1, 3, 0});
    const Tensor first = grad(loss, logits, {.retain_graph = true});
    const Tensor second = grad(loss, logits);
    BOOST_TEST(sum(abs(first)).item() > 0.0);
    BOOST_TEST(sum(abs(first - second)).item() == 0.0);
  }
  // create_graph without retain_graph: the softmax goes to the first gradient, and the second
  // derivative still comes out (its rules compute their own softmax).
  Tensor logits = randn64({3, 4}, 16);
  const auto second_derivative = [&](bool retain) {
    Tape tape;
    TapeGuard recording(tape);
    const Tensor g = grad(cross_entropy(logits, Ids{1, 3, 0}), logits,
                          {.create_graph = true, .retain_graph = retain});
    return grad(sum(g * g), logits);
  };
  const Tensor retained = second_derivative(true);
  BOOST_TEST(sum(abs(retained)).item() > 0.0);
  BOOST_TEST(sum(abs(second_derivative(false) - retained)).item() == 0.0);
}

// Logits made by an op: the rule keeps p and the logits' stand-in (graph_link), not their
// values; a gradient with create_graph gives the stand-in log p and reaches the logits' op.
BOOST_AUTO_TEST_CASE(cross_entropy_of_computed_logits_keeps_p_not_the_logits) {
  const Ids targets = {2, -100, 0};
  const CrossEntropyOptions opt{.label_smoothing = 0.1};
  CHECK_GRAD([&](const Inputs& in) { return cross_entropy(in[0] * 2.0, targets, opt); },
             {randn64({3, 4}, 17)}, both);
  // The logits' values go with the last handle to them; second derivatives still come out.
  Tensor x = randn64({3, 4}, 18);
  Tape tape;
  TapeGuard recording(tape);
  Tensor logits = x * 2.0;
  const std::weak_ptr<TensorImpl> values = logits.impl();
  const Tensor loss = cross_entropy(logits, targets, opt);
  logits = Tensor();
  BOOST_TEST(values.expired());
  const Tensor g = grad(loss, x, {.create_graph = true});
  BOOST_TEST(sum(abs(grad(sum(g * g), x))).item() > 0.0);
}

// tg::hvp through cross_entropy (forward over reverse: its vjp runs with no tape current while
// the logits carry a tangent) against reverse over reverse (the stand-in path) and against
// finite differences of the gradient.
BOOST_AUTO_TEST_CASE(cross_entropy_hessian_vector_products_agree) {
  const Ids targets = {1, -100, 3};
  const CrossEntropyOptions opt{.label_smoothing = 0.1};
  const Function f = [&](const Inputs& in) { return cross_entropy(in[0] * 2.0, targets, opt); };
  const Tensor x = randn64({3, 5}, 19, false), v = randn64({3, 5}, 20, false);
  const Tensor forward_over_reverse = hvp(f, x, v);
  const auto gradient_at = [&](const Tensor& at) {
    Tensor leaf = at.detach().set_requires_grad();
    Tape tape;
    TapeGuard recording(tape);
    return grad(f({leaf}), leaf);
  };
  const double eps = 1e-6;
  const Tensor by_differences = (gradient_at(x + v * eps) - gradient_at(x - v * eps)) / (2 * eps);
  Tensor leaf = x.detach().set_requires_grad();
  Tape tape;
  TapeGuard recording(tape);
  const Tensor g = grad(f({leaf}), leaf, {.create_graph = true});
  const Tensor reverse_over_reverse = grad(sum(g * v), leaf);
  BOOST_TEST(sum(abs(forward_over_reverse)).item() > 0.1);
  for (std::size_t i = 0; i < x.numel(); ++i) {
    const double hv = forward_over_reverse.data<double>().data()[i];
    BOOST_TEST(hv == reverse_over_reverse.data<double>().data()[i], tt::tolerance(1e-10));
    BOOST_TEST(testing::close_to(hv, by_differences.data<double>().data()[i], 1e-5, 1e-7));
  }
}

// x made by an op: layer_norm's rule keeps xhat and rstd, and x's stand-in (graph_link), not
// x's values; with create_graph the stand-in gets xhat / rstd, x less its rows' means (here
// about 10), and the gradient reaches x's op.  Forward over reverse (x itself carrying a tangent)
// agrees with reverse over reverse, for x and for gamma: layer norm's derivatives cannot see the
// rows' means.
BOOST_AUTO_TEST_CASE(layer_norm_of_a_computed_input_keeps_xhat_not_the_input) {
  CHECK_GRAD([](const Inputs& in) { return layer_norm(in[0] * 2.0, in[1], in[2]); },
             {randn64({2, 4}, 41), randn64({4}, 42), randn64({4}, 43)}, both);
  Tensor x = randn64({3, 5}, 44), gamma = randn64({5}, 45);
  Tape tape;
  TapeGuard recording(tape);
  Tensor input = x * 2.0 + 10.0;
  const std::weak_ptr<TensorImpl> values = input.impl();
  const Tensor beta = randn64({5}, 46, false);
  const Tensor w = randn64({3, 5}, 47, false), v = randn64({3, 5}, 48, false);
  const Tensor u = randn64({5}, 49, false);
  const Tensor y = sum(layer_norm(input, gamma, beta) * w);
  input = Tensor();
  BOOST_TEST(values.expired());
  const std::vector<Tensor> g = grad({y}, {x, gamma}, {.create_graph = true});
  const std::vector<Tensor> reverse_over_reverse =
      grad({sum(g[0] * v) + sum(g[1] * u)}, {x, gamma});
  const Function f = [&](const Inputs& in) {
    return sum(layer_norm(in[0] * 2.0 + 10.0, in[1], beta) * w);
  };
  const std::vector<Tensor> forward_over_reverse = hvp(f, {x.detach(), gamma.detach()}, {v, u});
  for (std::size_t k = 0; k < 2; ++k) {
    const Tensor& exact = forward_over_reverse[k];
    BOOST_TEST(sum(abs(reverse_over_reverse[k])).item() > 0.1);
    for (std::size_t i = 0; i < exact.numel(); ++i)
      BOOST_TEST(exact.data<double>().data()[i] == reverse_over_reverse[k].data<double>().data()[i],
                 tt::tolerance(1e-9));
  }
}

BOOST_AUTO_TEST_CASE(layer_norm_and_its_backward_pass_second_order_checks) {
  Tensor x = randn64({2, 4}, 21), gamma = randn64({4}, 22), beta = randn64({4}, 23);
  Tensor g = randn64({2, 4}, 24);
  CHECK_GRAD([](const Inputs& in) { return layer_norm(in[0], in[1], in[2]); }, {x, gamma, beta},
             both);
  // Each of the backward's three ops.
  CHECK_GRAD([](const Inputs& in) { return layer_norm_backward(in[0], in[1], in[2]).g_x; },
             {g, x, gamma}, both);
  CHECK_GRAD([](const Inputs& in) { return layer_norm_backward(in[0], in[1], in[2]).g_gamma; },
             {g, x, gamma}, both);
  CHECK_GRAD([](const Inputs& in) { return layer_norm_backward(in[0], in[1], in[2]).g_beta; },
             {g, x, gamma}, both);
  // A larger eps, and x of rank 3.
  CHECK_GRAD([](const Inputs& in) { return layer_norm(in[0], in[1], in[2], 0.5); },
             {randn64({2, 1, 3}, 25), randn64({3}, 26), randn64({3}, 27)}, both);
}

BOOST_AUTO_TEST_CASE(layer_norm_backward_is_the_gradient_of_layer_norm) {
  Tensor x = randn64({3, 5}, 31), gamma = randn64({5}, 32), beta = randn64({5}, 33);
  const Tensor g = randn64({3, 5}, 34, false);
  Tape tape;
  TapeGuard recording(tape);
  const std::vector<Tensor> by_backward =
      grad({layer_norm(x, gamma, beta)}, {x, gamma, beta}, {.grad_outputs = {g}});
  const LayerNormBackward b = layer_norm_backward(g, x, gamma);
  BOOST_TEST((b.g_x.data<double>() == by_backward[0].data<double>()));
  BOOST_TEST((b.g_gamma.data<double>() == by_backward[1].data<double>()));
  BOOST_TEST((b.g_beta.data<double>() == by_backward[2].data<double>()));
  CHECK_THROWS_WITH(layer_norm_backward(randn64({3, 4}, 1), x, gamma),
                    "layer_norm_backward: g_y must have x's shape: g_y is (3, 4), x is (3, 5)");
  CHECK_THROWS_WITH(layer_norm_backward(g, x, randn64({4}, 1)),
                    "layer_norm_backward: gamma must be (C) = (5) for x (3, 5), got gamma (4)");
}

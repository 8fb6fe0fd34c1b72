#define BOOST_TEST_MODULE tape
#include <thread>

#include "testing.hpp"

using namespace tg;

// Most cases record onto a fresh tape of their own from their first line.
struct Recording {
  Tape tape;
  TapeGuard recording{tape};
};

BOOST_FIXTURE_TEST_CASE(a_tensor_used_twice_gets_both_contributions, Recording) {
  Tensor x = from_vector({1, -2, 3}, {3}).set_requires_grad();
  Tensor y = sum(x * x + x);  // dy/dx = 2x + 1
  y.backward();
  const auto& g = x.grad_data<float>();
  BOOST_TEST(g(0) == 3.0f);
  BOOST_TEST(g(1) == -3.0f);
  BOOST_TEST(g(2) == 7.0f);
}

BOOST_FIXTURE_TEST_CASE(leaf_gradients_accumulate_across_backwards_until_zero_grad, Recording) {
  Tensor x = from_vector({2}, {1}).set_requires_grad();
  sum(x * 3.0).backward();
  sum(x * 3.0).backward();
  BOOST_TEST(x.grad_data<float>()(0) == 6.0f);
  x.zero_grad();
  BOOST_TEST(!x.has_grad());
}

BOOST_AUTO_TEST_CASE(nothing_is_recorded_without_a_tape_or_under_no_grad) {
  Tensor x = ones({2}).set_requires_grad();
  Tensor y = x * 2.0;  // no tape is current
  BOOST_TEST(!y.requires_grad());
  CHECK_THROWS_WITH(y.backward(), "does not require grad");
  Tape tape;
  TapeGuard recording(tape);
  {
    NoGradGuard no_grad;
    Tensor z = x * 2.0;
    BOOST_TEST(!z.requires_grad());
  }
  Tensor w = x * 2.0;  // recording again after the guard
  BOOST_TEST(w.requires_grad());
  BOOST_TEST(tape.size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(constants_do_not_record, Recording) {
  Tensor y = ones({2}) + ones({2});
  BOOST_TEST(!y.requires_grad());
  BOOST_TEST(tape.size() == 0u);
}

BOOST_FIXTURE_TEST_CASE(the_tape_is_thread_local, Recording) {
  Tensor x = ones({2}).set_requires_grad();
  bool recorded_elsewhere = true;
  std::thread other([&] { recorded_elsewhere = (x * 2.0).requires_grad(); });
  other.join();
  BOOST_TEST(!recorded_elsewhere);
  BOOST_TEST((x * 2.0).requires_grad());
}

BOOST_FIXTURE_TEST_CASE(non_scalar_backward_needs_an_output_gradient, Recording) {
  Tensor x = from_vector({1, 2}, {2}).set_requires_grad();
  Tensor y = x * x;
  CHECK_THROWS_WITH(y.backward(), "backward from a non-scalar needs an explicit output gradient");
  CHECK_THROWS_WITH(y.backward(ones({3})), "the output gradient must match the output");
  y.backward(from_vector({1, 10}, {2}));
  BOOST_TEST(x.grad_data<float>()(1) == 40.0f);  // 10 * 2x
}

BOOST_FIXTURE_TEST_CASE(backward_twice_over_a_released_tape_throws, Recording) {
  Tensor x = from_vector({1, 2}, {2}).set_requires_grad();
  Tensor y = sum(exp(x));
  BOOST_TEST(tape.saved_bytes() == 8u);  // exp keeps its output: 2 floats
  y.backward();
  BOOST_TEST(tape.saved_bytes() == 0u);  // released as backward passed
  CHECK_THROWS_WITH(y.backward(), "was already released by an earlier backward");
  // A new forward on the same tape differentiates fine.
  x.zero_grad();
  sum(exp(x)).backward();
  BOOST_TEST(x.grad_data<float>()(0) == std::exp(1.0f));
}

BOOST_FIXTURE_TEST_CASE(a_branch_not_on_the_path_keeps_its_buffers, Recording) {
  Tensor x = from_vector({1, 2}, {2}).set_requires_grad();
  Tensor a = sum(exp(x));
  Tensor b = sum(tanh(x));
  b.backward();
  a.backward();  // exp's op was not released by b's backward
  BOOST_TEST(x.grad_data<float>()(0) == std::exp(1.0f) + 1 - std::tanh(1.0f) * std::tanh(1.0f),
             boost::test_tools::tolerance(1e-6f));
}

BOOST_FIXTURE_TEST_CASE(cleared_tapes_and_other_tapes_are_detected, Recording) {
  Tensor x = ones({2}).set_requires_grad();
  Tensor y = x * 2.0;
  tape.clear();
  CHECK_THROWS_WITH(sum(y).backward(), "recorded on another tape");
  Tape other;
  CHECK_THROWS_WITH(other.backward(sum(x * 2.0)), "not recorded on this tape");
}

BOOST_AUTO_TEST_CASE(backward_from_a_leaf_sets_its_gradient) {
  Tensor x = from_vector({3}, {1}).set_requires_grad();
  x.backward();
  BOOST_TEST(x.grad_data<float>()(0) == 1.0f);
}

BOOST_FIXTURE_TEST_CASE(listing_and_dot_show_ops_shapes_and_saved_bytes, Recording) {
  Tensor x = ones({8, 8}).set_requires_grad().set_name("x");
  Tensor y = sum(x * x);
  const std::string listing = tape.listing();
  BOOST_TEST_MESSAGE(listing);
  BOOST_TEST(testing::contains(listing, "tape: 2 ops, 512 B saved for backward"));
  BOOST_TEST(testing::contains(listing, "mul"));
  BOOST_TEST(testing::contains(listing, "(8, 8)"));
  BOOST_TEST(testing::contains(listing, "x, x"));
  BOOST_TEST(testing::contains(listing, "#0"));
  const std::string dot = tape.to_dot();
  BOOST_TEST(testing::contains(dot, "digraph tape"));
  BOOST_TEST(testing::contains(dot, "op0 -> op1"));
  y.backward();
  BOOST_TEST(testing::contains(tape.listing(), "released"));
}

// graph_link keeps an op output's place in the graph without its values; with_values gives the
// stand-in values, and ops on the result send their gradients to the op the output came from.
BOOST_FIXTURE_TEST_CASE(a_graph_link_reaches_its_op_without_its_values, Recording) {
  Tensor x = from_vector({1, 2, 3}, {3}).set_requires_grad();
  BOOST_TEST(detail::graph_link(x).impl() == x.impl());  // a leaf is its own link
  const Tensor link = detail::graph_link(x * 2.0);
  BOOST_TEST(link.numel() == 0u);
  BOOST_TEST(link.requires_grad());
  const Tensor y = detail::with_values(link, Array<float>{1, -1, 2});
  sum(y * y).backward();  // d/dy = 2 y, then through x * 2
  BOOST_TEST((x.grad_data<float>() == Array<float>{4, -4, 8}));
  CHECK_THROWS_WITH(detail::with_values(link, Array<float>{1, 2}),
                    "with_values: values of (2) float32 for a link to op #0 (mul_scalar), whose "
                    "output is (3) float32");
  CHECK_THROWS_WITH(detail::with_values(x, Array<float>{1, 2, 3}), "the link is a leaf");
}

BOOST_FIXTURE_TEST_CASE(requires_grad_changes_only_on_leaves, Recording) {
  Tensor x = ones({2}).set_requires_grad();
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH(y.set_requires_grad(false), "only leaves can change requires_grad");
  Tensor d = y.detach();
  BOOST_TEST(!d.requires_grad());
  BOOST_TEST(d.is_leaf());
}

// Anomaly mode names the first op whose output, or whose backward, is not finite.
BOOST_FIXTURE_TEST_CASE(anomaly_mode_names_the_op_that_made_a_nan, Recording) {
  const auto throws_with = [](auto f, const std::string& text) {
    try {
      f();
    } catch (const AnomalyError& e) {
      BOOST_TEST_MESSAGE(e.what());
      return testing::contains(e.what(), text);
    }
    return false;
  };
  Tensor x = from_vector({0.5, 2.0, 3.0, 4.0}, {2, 2}).set_requires_grad();
  // Off by default: the NaN flows on silently, as in any framework.
  BOOST_TEST(std::isnan(sum(log(x - 1.0)).item()));
  {
    DetectAnomaly detect;
    tape.clear();
    BOOST_TEST(throws_with([&] { return sum(log(x - 1.0) * 2.0); },
                           "anomaly: op #1 'log' produced NaN in its output (2, 2) at [0, 0]; "
                           "inputs: (2, 2) float32"));
    // A NaN from an unrecorded op (constants only) is reported at the first recorded op using it.
    tape.clear();
    Tensor c = log(from_vector({-1.0, 1.0}, {2}));  // no input needs a gradient: not recorded
    BOOST_TEST(throws_with([&] { return slice(reshape(x, {4}), 0, 0, 2) * c; },
                           "'mul' produced NaN in its output (2) at [0]; inputs: (2) float32, (2) "
                           "float32 (already holding NaN at [0])"));
    // Backward: sqrt is finite at 0, its gradient 1 / (2 sqrt(0)) is not.
    tape.clear();
    Tensor z = from_vector({0.0, 1.0}, {2}).set_requires_grad();
    Tensor s = sum(sqrt(z));
    BOOST_TEST(throws_with([&] { s.backward(); },
                           "anomaly: the backward of op #0 'sqrt' produced inf in the gradient of "
                           "its input 0 (2) at [0]"));
  }
  BOOST_TEST(!anomaly_detection_enabled());  // the guard restored the setting
}

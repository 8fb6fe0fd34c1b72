// Helpers shared by the test files.
#pragma once

#include <boost/test/results_collector.hpp>
#include <boost/test/tree/traverse.hpp>
#include <boost/test/tree/visitor.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "tapegrad.hpp"

namespace testing {

// A float64 leaf of N(0, 1) values (requires grad unless told otherwise).
inline tg::Tensor randn64(const tg::Shape& shape, std::uint64_t seed, bool requires_grad = true) {
  tg::Generator gen(seed);
  tg::Tensor t = tg::randn(shape, gen, tg::Dtype::f64);
  t.set_requires_grad(requires_grad);
  return t;
}

// A float64 leaf of values in [low, high).
inline tg::Tensor uniform64(const tg::Shape& shape, double low, double high, std::uint64_t seed) {
  tg::Generator gen(seed);
  tg::Tensor t = tg::rand_uniform(shape, low, high, gen, tg::Dtype::f64);
  t.set_requires_grad(true);
  return t;
}

// |a - b| <= atol + rtol |b|.  For float32 results that one computation reaches through different
// batchings (other row counts, padding, a cache, another kernel): oneDNN may block its products
// differently for different sizes, so they agree to rounding, not to the bit.  Take atol from
// the magnitudes the values are summed from, so that a value near 0 is not held to a relative
// bound its rounding cannot meet.
inline bool close_to(double a, double b, double rtol, double atol) {
  return std::abs(a - b) <= atol + rtol * std::abs(b);
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The message of what f() throws ("" when it throws nothing): for errors of any exception type.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The losses of the first and the last of `steps` optimizer steps on loss(), each step recorded
// on a fresh tape: for tests that a model learns.
struct FirstAndLast {
  double first = 0, last = 0;
};
template <class Loss>
FirstAndLast fit(tg::nn::Optimizer& opt, int steps, Loss loss) {
  FirstAndLast losses;
  tg::Tape tape;
  for (int step = 0; step < steps; ++step) {
    tape.clear();
    tg::TapeGuard recording(tape);
    tg::Tensor l = loss();
    l.backward();
    opt.step();
    opt.zero_grad();
    if (step == 0) losses.first = l.item();
    losses.last = l.item();
  }
  return losses;
}

// A whole file as text ("" when it cannot be read): for tests that compare code with the docs.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A test case must check something: one that ends without a single assertion, passed or failed,
// fails here, so that no test passes by skipping its checks (an early return, a loop over
// nothing).  Boost.Test 1.74 only logs a note for such a case; this fixture, given to every test
// case of the module when the run starts, makes it an error.
struct MustCheckSomething : boost::unit_test::test_unit_fixture {
  void setup() override {}
  void teardown() override {
    namespace ut = boost::unit_test;
    const auto& r = ut::results_collector.results(ut::framework::current_test_case_id());
    if (r.p_assertions_passed + r.p_assertions_failed == 0)
      BOOST_ERROR("this test case checked nothing (no assertion ran): it must check something");
  }
};

// Constructed when the run starts (BOOST_TEST_GLOBAL_CONFIGURATION below): puts the fixture
// above on every test case.
struct EveryTestCaseChecksSomething {
  struct AddFixture : boost::unit_test::test_tree_visitor {
    boost::unit_test::test_unit_fixture_ptr fixture{new MustCheckSomething};
    void visit(const boost::unit_test::test_case& tc) override {
      namespace ut = boost::unit_test;
      ut::framework::get<ut::test_case>(tc.p_id).p_fixtures.value.push_back(fixture);
    }
  };
  EveryTestCaseChecksSomething() {
    namespace ut = boost::unit_test;
    AddFixture add;
    ut::traverse_test_tree(ut::framework::master_test_suite(), add, true);
  }
};

}  // namespace testing

// Once per test program: in the file that defines BOOST_TEST_MODULE, where Boost.Test's main is.
#ifdef BOOST_TEST_MODULE
using testing::EveryTestCaseChecksSomething;
BOOST_TEST_GLOBAL_CONFIGURATION(EveryTestCaseChecksSomething);
#endif

// Gradcheck f on inputs; on failure the message holds gradcheck's report.
#define CHECK_GRAD(f, ...)                         \
  do {                                             \
    const auto r_ = tg::gradcheck(f, __VA_ARGS__); \
    BOOST_CHECK_MESSAGE(r_.ok, r_.report);         \
    BOOST_CHECK_GT(r_.checked, 0u);                \
  } while (0)

// `expr` must throw std::invalid_argument whose message contains `text`.
#define CHECK_THROWS_WITH(expr, text)                                                      \
  BOOST_CHECK_EXCEPTION(expr, std::invalid_argument, [&](const std::invalid_argument& e) { \
    const bool ok_ = testing::contains(e.what(), text);                                    \
    if (!ok_) BOOST_TEST_MESSAGE("the message was: " << e.what());                         \
    return ok_;                                                                            \
  })

#define BOOST_TEST_MODULE module
#include <sstream>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;

namespace {

// A two-level model: block.{fc, norm} and head.
struct Block : Module {
  Linear fc;
  LayerNorm norm;
  Block(Generator& gen) : fc(3, 4, gen), norm(4) {
    register_module("fc", fc);
    register_module("norm", norm);
  }
};

struct Model : Module {
  Block block;
  Linear head;
  Dropout drop;
  Tensor scale;
  Model(Generator& gen) : block(gen), head(LinearOptions{4, 2, false}, gen), drop(0.5, gen) {
    register_module("block", block);
    register_module("head", head);
    register_module("drop", drop);
    scale = register_parameter("scale", ones({1}));
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(named_parameters_are_hierarchical_and_ordered) {
  Generator gen(0);
  Model m(gen);
  std::vector<std::string> names;
  for (const auto& [name, t] : m.named_parameters()) names.push_back(name);
  const std::vector<std::string> want = {"scale",           "block.fc.weight",
                                         "block.fc.bias",   "block.norm.weight",
                                         "block.norm.bias", "head.weight"};
  BOOST_TEST(names == want, boost::test_tools::per_element());
  BOOST_TEST(m.parameter_count() == 1u + 12 + 4 + 4 + 4 + 8);
  for (const Tensor& p : m.parameters()) BOOST_TEST(p.requires_grad());
}

// The tape listing names parameters by their place in the model, not "leaf".
BOOST_AUTO_TEST_CASE(tape_listings_name_parameters) {
  Generator gen(0);
  Model m(gen);
  BOOST_TEST(m.block.fc.weight.name() == "block.fc.weight");
  BOOST_TEST(m.scale.name() == "scale");
  Tape tape;
  {
    TapeGuard recording(tape);
    sum(m.head(m.block.norm(m.block.fc(ones({2, 3}))))).backward();
  }
  std::ostringstream listing;
  listing << tape;
  for (const char* name : {"block.fc.weight", "block.fc.bias", "block.norm.weight", "head.weight"})
    BOOST_TEST(testing::contains(listing.str(), name), name << " is missing from\n"
                                                            << listing.str());
}

BOOST_AUTO_TEST_CASE(train_eval_and_zero_grad_reach_every_submodule) {
  Generator gen(0);
  Model m(gen);
  BOOST_TEST(m.drop.is_training());
  m.eval();
  BOOST_TEST(!m.drop.is_training());
  BOOST_TEST(!m.block.fc.is_training());
  m.train();
  BOOST_TEST(m.block.norm.is_training());
  Tape tape;
  TapeGuard recording(tape);
  sum(m.head(m.block.norm(m.block.fc(ones({2, 3}))))).backward();
  BOOST_TEST(m.block.fc.weight.has_grad());
  m.zero_grad();
  for (const Tensor& p : m.parameters()) BOOST_TEST(!p.has_grad());
}

// EvalMode: evaluation mode in its scope, the mode before after it, also when the scope throws.
BOOST_AUTO_TEST_CASE(eval_mode_lasts_a_scope) {
  Generator gen(0);
  Model m(gen);
  for (bool training : {true, false}) {
    m.train(training);
    {
      EvalMode evaluating(m);
      BOOST_TEST(!m.drop.is_training());
    }
    BOOST_TEST(m.drop.is_training() == training);
  }
  m.train();
  try {
    EvalMode evaluating(m);
    throw std::runtime_error("inside");
  } catch (const std::runtime_error&) {
  }
  BOOST_TEST(m.drop.is_training());
}

BOOST_AUTO_TEST_CASE(checkpointing_and_generators_reach_every_submodule) {
  Generator gen(0), other(1);
  Model m(gen);
  Dropout second(0.1, other), third(0.2, gen);
  BOOST_TEST((m.generators() == std::vector<Generator*>{&gen}));  // once, from drop
  BOOST_TEST(m.block.generators().empty());
  BOOST_TEST((second.generators() == std::vector<Generator*>{&other}));
  BOOST_TEST(!m.block.fc.is_checkpointing());
  m.set_checkpointing();
  BOOST_TEST(m.block.fc.is_checkpointing());
  BOOST_TEST(m.drop.is_checkpointing());
  m.set_checkpointing(false);
  BOOST_TEST(!m.block.norm.is_checkpointing());
  // nn::checkpoint passes the module's parameters: their gradients arrive.
  Tape tape;
  TapeGuard recording(tape);
  const auto block = [&](const std::vector<Tensor>& in) { return m.block.norm(m.block.fc(in[0])); };
  sum(nn::checkpoint(m.block, block, {ones({2, 3})})).backward();
  BOOST_TEST(m.block.fc.weight.has_grad());
  BOOST_TEST(m.block.norm.parameters()[0].has_grad());
}

BOOST_AUTO_TEST_CASE(to_converts_parameters_in_place) {
  Generator gen(0);
  Model m(gen);
  const float w = m.block.fc.weight.data<float>()(1, 2);
  m.to(Dtype::f64);
  BOOST_TEST(m.block.fc.weight.dtype() == Dtype::f64);  // the member sees the conversion
  BOOST_TEST(m.block.fc.weight.data<double>()(1, 2) == static_cast<double>(w));
  BOOST_TEST(m.block.fc(ones({2, 3}, Dtype::f64)).dtype() == Dtype::f64);
}

BOOST_AUTO_TEST_CASE(bad_names_are_refused) {
  struct Bad : Module {
    void add(const std::string& name) { register_parameter(name, ones({1})); }
  } bad;
  bad.add("w");
  CHECK_THROWS_WITH(bad.add("w"), "Module: name 'w' is already a parameter");
  CHECK_THROWS_WITH(bad.add("a.b"), "must be non-empty and contain no '.'");
  CHECK_THROWS_WITH(bad.add(""), "must be non-empty");
}

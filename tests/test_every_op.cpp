// Every op the library can record, enumerated from its sources, passes float64 checks of the
// first and second order in reverse and forward mode (tg::gradcheck with order 2, both modes:
// reverse, forward, and reverse and forward of each), and has a row in the rule table of
// docs/derivatives.md.  An op added without a case here, or without a row there, fails.
// (Each op's own test file checks it more thoroughly; this is the roll call.)
#define BOOST_TEST_MODULE every_op
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "testing.hpp"

using namespace tg;
using Inputs = std::vector<Tensor>;

namespace {

// The op names in autograd/ops_*.cpp: the string literals given to record(...),
// record_linear(...), unary(...) or unary<Fun>(...) (alone, or as `cond ? "a" : "b"`), and to
// `const char* op = ...`: those between the call or declaration and the first comma or
// semicolon after it.
std::set<std::string> ops_in_sources() {
  std::set<std::string> ops;
  for (const auto& entry : std::filesystem::directory_iterator(TAPEGRAD_SOURCE_DIR "/autograd")) {
    const std::string file = entry.path().filename().string();
    if (!file.starts_with("ops_") || entry.path().extension() != ".cpp") continue;
    const std::string text = testing::read_file(entry.path().string());
    for (const std::string start :
         {"record(", "record_linear(", "unary(", "unary<", "const char* op ="}) {
      for (std::size_t at = text.find(start); at != std::string::npos;
           at = text.find(start, at + 1)) {
        if (at > 0 && (std::isalnum(text[at - 1]) || text[at - 1] == '_')) continue;
        const std::size_t end = text.find_first_of(",;", at + start.size());
        for (std::size_t q = text.find('"', at); q < end; q = text.find('"', q + 1)) {
          const std::size_t close = text.find('"', q + 1);
          const std::string name = text.substr(q + 1, close - q - 1);
          const bool op_like = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return std::islower(c) || std::isdigit(c) || c == '_';
          });
          if (op_like) ops.insert(name);
          q = close;
        }
      }
    }
  }
  return ops;
}

Tensor x64(const Shape& shape, std::uint64_t seed) { return testing::randn64(shape, seed); }
Tensor positive(const Shape& shape, std::uint64_t seed) {
  return testing::uniform64(shape, 0.5, 2.0, seed);
}

struct Case {
  std::string op;
  GradcheckFn f;
  Inputs inputs;
};

const Mask kMask = {{true, false, true}, {true, true, false}};  // (2, 3)

std::vector<Case> cases() {
  const Ids picks = {1, 3};
  const Ids ids = {1, 3, 2};  // without the padding id 0, whose row is a constant by design
  const Ids bags = {{1, 0, 4, 2}, {3, 3, 0, 0}};
  const std::vector<std::size_t> groups = {2, 2};
  const Ids targets = {2, -100, 0};
  const CrossEntropyOptions smooth{.label_smoothing = 0.1};
  const AttentionArgs causal{.scale = 0.7, .causal = true};
  // Two sentences of 3 and 2 tokens, packed: rows 0, 1, 2 and 3, 4 of (2 x 3).
  const PackedTokens tokens{
      .batch = 2,
      .length = 3,
      .rows = std::make_shared<std::vector<std::size_t>>(std::vector<std::size_t>{0, 1, 2, 3, 4})};
  const auto gelu_t = [](const Inputs& in) { return gelu(in[0], GeluForm::tanh); };
  return {
      // elementwise
      {"add", [](const Inputs& in) { return in[0] + in[1]; }, {x64({2, 3}, 1), x64({3}, 2)}},
      {"sub", [](const Inputs& in) { return in[0] - in[1]; }, {x64({2, 3}, 1), x64({3}, 2)}},
      {"mul", [](const Inputs& in) { return in[0] * in[1]; }, {x64({2, 3}, 1), x64({3}, 2)}},
      {"div", [](const Inputs& in) { return in[0] / in[1]; }, {x64({2, 3}, 1), positive({3}, 2)}},
      {"pow",
       [](const Inputs& in) { return pow(in[0], in[1]); },
       {positive({2, 3}, 1), x64({3}, 2)}},
      {"add_scalar", [](const Inputs& in) { return in[0] + 1.5; }, {x64({2, 3}, 1)}},
      {"mul_scalar", [](const Inputs& in) { return in[0] * 1.5; }, {x64({2, 3}, 1)}},
      {"pow_scalar", [](const Inputs& in) { return pow(in[0], 2.5); }, {positive({2, 3}, 1)}},
      {"neg", [](const Inputs& in) { return -in[0]; }, {x64({2, 3}, 1)}},
      {"exp", [](const Inputs& in) { return exp(in[0]); }, {x64({2, 3}, 1)}},
      {"log", [](const Inputs& in) { return log(in[0]); }, {positive({2, 3}, 1)}},
      {"sqrt", [](const Inputs& in) { return sqrt(in[0]); }, {positive({2, 3}, 1)}},
      {"abs", [](const Inputs& in) { return abs(in[0]) * in[0]; }, {x64({2, 3}, 1)}},
      {"tanh", [](const Inputs& in) { return tanh(in[0]); }, {x64({2, 3}, 1)}},
      {"sin", [](const Inputs& in) { return sin(in[0]); }, {x64({2, 3}, 1)}},
      {"cos", [](const Inputs& in) { return cos(in[0]); }, {x64({2, 3}, 1)}},
      {"sigmoid", [](const Inputs& in) { return sigmoid(in[0]); }, {x64({2, 3}, 1)}},
      {"relu", [](const Inputs& in) { return relu(in[0]) * in[0]; }, {x64({2, 3}, 1)}},
      {"gelu", [](const Inputs& in) { return gelu(in[0]); }, {x64({2, 3}, 1)}},
      {"gelu_tanh", gelu_t, {x64({2, 3}, 1)}},
      {"gelu_backward",
       [](const Inputs& in) { return gelu_backward(in[0], in[1]); },
       {x64({2, 3}, 1), x64({2, 3}, 2)}},
      {"gelu_tanh_backward",
       [](const Inputs& in) { return gelu_backward(in[0], in[1], GeluForm::tanh); },
       {x64({2, 3}, 1), x64({2, 3}, 2)}},
      {"where",
       [](const Inputs& in) { return where(kMask, in[0], in[1]); },
       {x64({2, 3}, 1), x64({3}, 2)}},
      {"masked_fill",
       [](const Inputs& in) { return masked_fill(in[0], kMask, 0.5); },
       {x64({2, 3}, 1)}},
      // shape
      {"reshape",
       [](const Inputs& in) {
         return reshape(in[0], {3, 2});
       },
       {x64({2, 3}, 1)}},
      {"permute",
       [](const Inputs& in) {
         return permute(in[0], {2, 0, 1});
       },
       {x64({2, 3, 2}, 1)}},
      {"slice", [](const Inputs& in) { return slice(in[0], 1, 1, 3); }, {x64({2, 3}, 1)}},
      {"pad", [](const Inputs& in) { return pad(in[0], 1, 1, 2); }, {x64({2, 3}, 1)}},
      {"concat",
       [](const Inputs& in) {
         return concat({in[0], in[1]}, 0);
       },
       {x64({2, 3}, 1), x64({1, 3}, 2)}},
      {"clone", [](const Inputs& in) { return clone(in[0]); }, {x64({2, 3}, 1)}},
      {"expand",
       [](const Inputs& in) {
         return expand(in[0], {2, 3});
       },
       {x64({1, 3}, 1)}},
      {"sum_to", [](const Inputs& in) { return sum_to(in[0], {3}); }, {x64({2, 3}, 1)}},
      {"take_rows",
       [](const Inputs& in) {
         return take_rows(in[0], {2, 0, 2});
       },
       {x64({3, 2}, 1)}},
      {"scatter_add_rows",
       [](const Inputs& in) {
         return scatter_add_rows(in[0], {1, 1, 0}, 2);
       },
       {x64({3, 2}, 1)}},
      {"gather_rows",
       [](const Inputs& in) {
         return gather_rows(in[0], std::make_shared<const std::vector<std::size_t>>(
                                       std::vector<std::size_t>{0, 2, 3}));
       },
       {x64({2, 2, 3}, 1)}},
      {"scatter_rows",
       [](const Inputs& in) {
         return scatter_rows(
             in[0],
             std::make_shared<const std::vector<std::size_t>>(std::vector<std::size_t>{0, 2, 3}),
             {2, 2, 3});
       },
       {x64({3, 3}, 1)}},
      {"pick", [=](const Inputs& in) { return pick(in[0], picks); }, {x64({2, 4}, 1)}},
      {"unpick", [=](const Inputs& in) { return unpick(in[0], picks, 4); }, {x64({2}, 1)}},
      // reductions
      {"sum",
       [](const Inputs& in) { return sum(in[0], {1}) + sum(in[0] * in[0]); },
       {x64({2, 3}, 1)}},
      {"mean",
       [](const Inputs& in) { return mean(in[0], {0}, true) + mean(in[0] * in[0]); },
       {x64({2, 3}, 1)}},
      {"max", [](const Inputs& in) { return max(in[0] * in[0], {1}); }, {x64({2, 3}, 1)}},
      // products
      {"matmul",
       [](const Inputs& in) { return matmul(in[0], in[1]); },
       {x64({2, 2, 3}, 1), x64({3, 2}, 2)}},
      {"matmul_transposed",
       [](const Inputs& in) {
         return matmul_transposed(in[0], true, in[1], false, {2, 4});
       },
       {x64({3, 2}, 1), x64({3, 4}, 2)}},
      {"linear",
       [](const Inputs& in) { return linear(in[0], in[1], in[2]); },
       {x64({2, 3}, 1), x64({3, 2}, 2), x64({2}, 3)}},
      // neural-network ops
      {"softmax", [](const Inputs& in) { return softmax(in[0]); }, {x64({2, 3}, 1)}},
      {"log_softmax", [](const Inputs& in) { return log_softmax(in[0]); }, {x64({2, 3}, 1)}},
      {"softmax_backward",
       [](const Inputs& in) { return softmax_backward(in[0], softmax(in[1])); },
       {x64({2, 3}, 1), x64({2, 3}, 2)}},
      {"log_softmax_backward",
       [](const Inputs& in) { return log_softmax_backward(in[0], log_softmax(in[1])); },
       {x64({2, 3}, 1), x64({2, 3}, 2)}},
      {"masked_softmax",
       [](const Inputs& in) { return masked_softmax(in[0], kMask); },
       {x64({2, 3}, 1)}},
      {"masked_softmax_backward",
       [](const Inputs& in) {
         return masked_softmax_backward(in[0], masked_softmax(in[1], kMask));
       },
       {x64({2, 3}, 1), x64({2, 3}, 2)}},
      {"rel_skew", [](const Inputs& in) { return rel_skew(in[0], false); }, {x64({2, 2, 3}, 1)}},
      {"rel_unskew",
       [](const Inputs& in) { return rel_unskew(in[0], false); },
       {x64({2, 2, 2}, 1)}},
      {"embedding", [=](const Inputs& in) { return embedding(in[0], ids, 0); }, {x64({4, 3}, 1)}},
      {"embedding_backward",
       [=](const Inputs& in) { return embedding_backward(in[0], ids, 4, 0); },
       {x64({3, 3}, 1)}},
      {"embedding_bags",
       [=](const Inputs& in) { return embedding_bags(in[0], bags, groups); },
       {x64({5, 2}, 1)}},
      {"embedding_bags_backward",
       [=](const Inputs& in) { return embedding_bags_backward(in[0], bags, groups, 5); },
       {x64({2, 2}, 1)}},
      {"dropout",
       [](const Inputs& in) {
         Generator gen(7);  // the same mask every time
         return dropout(in[0] * in[0], 0.5, gen);
       },
       {x64({2, 3}, 1)}},
      {"cross_entropy",
       [=](const Inputs& in) { return cross_entropy(in[0], targets, smooth); },
       {x64({3, 4}, 1)}},
      {"cross_entropy_backward",
       [=](const Inputs& in) { return cross_entropy_backward(in[0], in[1], targets, smooth); },
       {x64({}, 1), x64({3, 4}, 2)}},
      {"binary_cross_entropy_with_logits",
       [](const Inputs& in) { return binary_cross_entropy_with_logits(in[0], in[1]); },
       {x64({2, 3}, 1), testing::uniform64({2, 3}, 0.0, 1.0, 2)}},
      {"layer_norm",
       [](const Inputs& in) { return layer_norm(in[0], in[1], in[2]); },
       {x64({2, 4}, 1), x64({4}, 2), x64({4}, 3)}},
      {"layer_norm_backward",
       [](const Inputs& in) { return layer_norm_backward(in[0], in[1], in[2]).g_x; },
       {x64({2, 4}, 1), x64({2, 4}, 2), x64({4}, 3)}},
      {"layer_norm_backward_gamma",
       [](const Inputs& in) { return layer_norm_backward(in[0], in[1], in[2]).g_gamma; },
       {x64({2, 4}, 1), x64({2, 4}, 2), x64({4}, 3)}},
      {"layer_norm_backward_beta",
       [](const Inputs& in) { return layer_norm_backward(in[0], in[1], in[2]).g_beta * in[0]; },
       {x64({2, 4}, 1), x64({2, 4}, 2), x64({4}, 3)}},
      // Toeplitz products
      {"toeplitz_matmul",
       [](const Inputs& in) { return toeplitz_matmul(in[0], in[1]); },
       {x64({1, 5}, 1), x64({1, 1, 3, 2}, 2)}},
      {"toeplitz_matmul_transposed",
       [](const Inputs& in) { return toeplitz_matmul_transposed(in[0], in[1]); },
       {x64({1, 5}, 1), x64({1, 1, 3, 2}, 2)}},
      {"toeplitz_correlate",
       [](const Inputs& in) { return toeplitz_correlate(in[0], in[1]); },
       {x64({1, 1, 3, 2}, 1), x64({1, 1, 3, 2}, 2)}},
      {"kernel_toeplitz",
       [](const Inputs& in) { return kernel_toeplitz(in[0], in[1], in[2], in[3], true); },
       {x64({1, 1, 3, 2}, 1), x64({1, 1, 3, 2}, 2), x64({1, 1, 3, 2}, 3), x64({1, 3}, 4)}},
      {"kernel_toeplitz_backward",
       [](const Inputs& in) {
         const auto g = kernel_toeplitz_backward(in[0], in[1], in[2], in[3], in[4]);
         return flat_join({g.begin(), g.end()});
       },
       {x64({1, 1, 3, 3}, 1), x64({1, 1, 3, 2}, 2), x64({1, 1, 3, 2}, 3), x64({1, 1, 3, 2}, 4),
        x64({1, 5}, 5)}},
      // attention in one op
      {"fused_attention",
       [=](const Inputs& in) { return fused_attention(in[0], in[1], in[2], causal); },
       {x64({1, 2, 3, 2}, 1), x64({1, 2, 3, 2}, 2), x64({1, 2, 3, 2}, 3)}},
      {"fused_self_attention",
       [=](const Inputs& in) { return fused_self_attention(in[0], 2, causal); },
       {x64({1, 3, 12}, 1)}},
      {"fused_attention_backward",
       [=](const Inputs& in) {
         return flat_join(fused_attention_backward(in[0], in[1], in[2], in[3], causal));
       },
       {x64({1, 2, 3, 2}, 1), x64({1, 2, 3, 2}, 2), x64({1, 2, 3, 2}, 3), x64({1, 2, 3, 2}, 4)}},
      {"fused_self_attention_backward",
       [=](const Inputs& in) {
         return flat_join(fused_self_attention_backward(in[0], in[1], 2, causal));
       },
       {x64({1, 3, 4}, 1), x64({1, 3, 12}, 2)}},
      {"fused_token_attention",
       [=](const Inputs& in) { return fused_token_attention(in[0], 2, tokens, causal); },
       {x64({5, 12}, 1)}},
      {"fused_token_attention_backward",
       [=](const Inputs& in) {
         return flat_join(fused_token_attention_backward(in[0], in[1], 2, tokens, causal));
       },
       {x64({5, 4}, 1), x64({5, 12}, 2)}},
  };
}

// Does f record `op` when run on a tape?
bool records(const Case& c) {
  Tape tape;
  TapeGuard recording(tape);
  c.f(c.inputs);
  for (std::size_t i = 0; i < tape.size(); ++i)
    if (c.op == tape.node(i).op) return true;
  return false;
}

}  // namespace

// Named like ops for their error messages, but written with other ops, which they record.
const std::set<std::string> kComposed = {"attention_composed"};

BOOST_AUTO_TEST_CASE(every_op_in_the_sources_has_a_case) {
  std::set<std::string> in_sources = ops_in_sources();
  for (const std::string& name : kComposed) BOOST_TEST(in_sources.erase(name) == 1u, name);
  BOOST_TEST(in_sources.size() >= 60u);  // the scan finds the ops at all
  std::set<std::string> with_cases;
  for (const Case& c : cases()) with_cases.insert(c.op);
  for (const std::string& op : in_sources)
    BOOST_TEST(with_cases.count(op) == 1u,
               op << " is recorded by the library but has no case here");
  for (const std::string& op : with_cases)
    BOOST_TEST(in_sources.count(op) == 1u, op << " has a case but no op in autograd/ records it");
}

BOOST_AUTO_TEST_CASE(every_op_has_a_row_in_the_rule_table) {
  const std::string table = testing::read_file(TAPEGRAD_SOURCE_DIR "/docs/derivatives.md");
  for (const std::string& op : ops_in_sources())
    if (kComposed.count(op) == 0)
      BOOST_TEST(testing::contains(table, "| `" + op + "` |"),
                 op << " has no row in docs/derivatives.md");
}

BOOST_AUTO_TEST_CASE(every_op_passes_second_order_checks_in_both_modes) {
  for (const Case& c : cases()) {
    BOOST_TEST_CONTEXT(c.op) {
      BOOST_TEST(records(c), "the case does not record " << c.op);
      CHECK_GRAD(c.f, c.inputs, {.order = 2, .modes = CheckModes::both});
    }
  }
}

#define BOOST_TEST_MODULE layers
#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
using Inputs = std::vector<Tensor>;

namespace {

// Gradchecks `layer` in float64 with respect to its input and every parameter.
template <class L>
void check_layer_grad(L& layer, const Shape& input_shape) {
  layer.to(Dtype::f64);
  std::vector<Tensor> inputs = {testing::randn64(input_shape, 99)};
  for (const Tensor& p : layer.parameters()) inputs.push_back(p);
  CHECK_GRAD([&layer](const Inputs& in) { return layer.forward(in[0]); }, inputs);
}

}  // namespace

BOOST_AUTO_TEST_CASE(linear_layer) {
  Generator gen(1);
  Linear fc(4, 3, gen);
  BOOST_TEST(fc(zeros({2, 5, 4})).shape() == (Shape{2, 5, 3}));
  BOOST_TEST(fc(zeros({4})).shape() == (Shape{3}));
  BOOST_TEST(fc.parameter_count() == 15u);
  Linear no_bias(LinearOptions{4, 3, false}, gen);
  BOOST_TEST(no_bias.parameter_count() == 12u);
  CHECK_THROWS_WITH(fc(zeros({2, 5})), "Linear: the input's last dim must be in = 4, got x (2, 5)");
  // a float64 input to a float32 layer: the layer says so, not an op inside it
  CHECK_THROWS_WITH(fc(zeros({2, 4}, Dtype::f64)),
                    "Linear: the input is float64 but the parameters are float32");
  CHECK_THROWS_WITH(Linear(0, 3, gen), "Linear: in and out must be positive");
  check_layer_grad(fc, {2, 3, 4});
  check_layer_grad(no_bias, {5, 4});
}

// Conv1d against the sum written out: y[b, t] = bias + sum_j x[b, t + j - 1] W_j, zeros beyond
// the ends.
BOOST_AUTO_TEST_CASE(conv1d_by_hand_gradcheck_and_errors) {
  Generator gen(2);
  Conv1d conv({.in = 2, .out = 3, .width = 3}, gen);
  conv.to(Dtype::f64);
  conv.bias.data<double>() = Array<double>{0.5, -1.0, 2.0};
  const Tensor x = testing::randn64({2, 4, 2}, 3);
  const Tensor y = conv(x);
  BOOST_TEST(y.shape() == (Shape{2, 4, 3}));
  const auto& X = x.data<double>();
  const auto& W = conv.weight.data<double>();  // (3 * 2, 3)
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t t = 0; t < 4; ++t)
      for (std::size_t o = 0; o < 3; ++o) {
        double want = conv.bias.data<double>()(o);
        for (std::size_t j = 0; j < 3; ++j) {
          const std::int64_t s = std::int64_t(t) + std::int64_t(j) - 1;
          if (s < 0 || s >= 4) continue;
          for (std::size_t i = 0; i < 2; ++i) want += X(b, s, i) * W(j * 2 + i, o);
        }
        BOOST_TEST(y.data<double>()(b, t, o) == want, boost::test_tools::tolerance(1e-12));
      }
  // A step only reads its neighbours: changing x[0, 0] leaves y[0, 2..3] and all of y[1] alone.
  Tensor x2 = Tensor(Array<double>(X));
  x2.data<double>()(0, 0, 0) += 1.0;
  const Tensor y2 = conv(x2);
  for (std::size_t o = 0; o < 3; ++o) {
    BOOST_TEST(y2.data<double>()(0, 1, o) != y.data<double>()(0, 1, o));
    for (std::size_t t = 2; t < 4; ++t)
      BOOST_TEST(y2.data<double>()(0, t, o) == y.data<double>()(0, t, o));
    for (std::size_t t = 0; t < 4; ++t)
      BOOST_TEST(y2.data<double>()(1, t, o) == y.data<double>()(1, t, o));
  }

  Conv1d one({.in = 2, .out = 3, .width = 1, .bias = false}, gen);
  BOOST_TEST(one.parameter_count() == 6u);
  Conv1d five({.in = 2, .out = 3, .width = 5}, gen);
  check_layer_grad(conv, {2, 4, 2});
  check_layer_grad(one, {1, 3, 2});
  check_layer_grad(five, {2, 3, 2});  // wider than the sequence: most of the window reads zeros
  CHECK_THROWS_WITH(conv(zeros({4, 2})), "Conv1d: x must be (B, T, in = 2), got (4, 2)");
  CHECK_THROWS_WITH(conv(zeros({1, 4, 3})), "Conv1d: x must be (B, T, in = 2), got (1, 4, 3)");
  CHECK_THROWS_WITH(Conv1d({.in = 2, .out = 3, .width = 2}, gen),
                    "Conv1d: in and out must be positive and width odd, got in 2, out 3, width 2");
}

BOOST_AUTO_TEST_CASE(embedding_module) {
  Generator gen(1);
  Embedding emb({.vocab = 10, .dim = 4, .padding_id = 0}, gen);
  Ids ids = {{1, 2, 0}, {9, 0, 0}};
  Tensor e = emb(ids);
  BOOST_TEST(e.shape() == (Shape{2, 3, 4}));
  BOOST_TEST(sum(abs(emb(Ids{0}))).item() == 0.0);  // the padding row starts at zero
  CHECK_THROWS_WITH(emb(Ids{10}), "embedding: token id 10");
  CHECK_THROWS_WITH(Embedding({.vocab = 10, .dim = 4, .padding_id = 10}, gen),
                    "padding_id 10 is outside the table");
  emb.to(Dtype::f64);
  // Padded positions are masked out, as a model does, so the padding row (which gets no
  // gradient by design) does not affect the output either.
  Tensor keep(Array<double>(xt::expand_dims(xt::cast<double>(xt::not_equal(ids, 0)), 2)));
  CHECK_GRAD([&emb, ids, keep](const Inputs&) { return emb(ids) * keep; }, {emb.weight});
}

BOOST_AUTO_TEST_CASE(layer_norm_module) {
  LayerNorm norm(6);
  BOOST_TEST(norm(zeros({2, 3, 6})).shape() == (Shape{2, 3, 6}));
  CHECK_THROWS_WITH(norm(zeros({2, 5})), "LayerNorm: the input's last dim must be 6, got x (2, 5)");
  Generator gen(2);  // move gamma and beta away from 1 and 0 so the check sees them
  init::normal(norm.weight, 1.0, 0.5, gen);
  init::normal(norm.bias, 0.0, 0.5, gen);
  check_layer_grad(norm, {4, 6});
}

BOOST_AUTO_TEST_CASE(dropout_module_follows_train_and_eval) {
  Generator gen(3);
  Dropout drop(0.5, gen);
  Tensor x = ones({200});
  const auto zeros_in = [](const Tensor& t) {
    return std::count(t.data<float>().begin(), t.data<float>().end(), 0.0f);
  };
  BOOST_TEST(zeros_in(drop(x)) > 50);  // about 100 of 200 dropped in training mode
  drop.eval();
  BOOST_TEST(zeros_in(drop(x)) == 0);
  BOOST_TEST(sum(drop(x)).item() == 200.0);
  CHECK_THROWS_WITH(Dropout(1.0, gen), "Dropout: p must be in [0, 1), got 1");
  // Shapes pass through; gradcheck in training mode, re-seeding so every evaluation draws the
  // same mask.
  drop.train();
  BOOST_TEST(drop(zeros({2, 3, 4})).shape() == (Shape{2, 3, 4}));
  CHECK_GRAD(
      [&](const Inputs& in) {
        gen.seed_with(21);
        return drop(in[0]);
      },
      {testing::randn64({3, 5}, 4)});
}

BOOST_AUTO_TEST_CASE(mlp_and_feed_forward) {
  Generator gen(4);
  Mlp mlp({.widths = {3, 8, 8, 2}, .activation = Activation::tanh}, gen);
  BOOST_TEST(mlp(zeros({5, 3})).shape() == (Shape{5, 2}));
  BOOST_TEST(mlp.parameter_count() == 3u * 8 + 8 + 8 * 8 + 8 + 8 * 2 + 2);
  BOOST_TEST(mlp.named_parameters()[2].first == "1.weight");
  CHECK_THROWS_WITH(mlp(zeros({5, 4})), "Linear: the input's last dim must be in = 3");
  CHECK_THROWS_WITH(Mlp({.widths = {3}}, gen), "Mlp: widths needs at least {in, out}");
  check_layer_grad(mlp, {4, 3});
  FeedForward ff({.widths = {6, 12, 6}, .activation = Activation::gelu, .dropout = 0.1}, gen);
  BOOST_TEST(ff(zeros({2, 3, 6})).shape() == (Shape{2, 3, 6}));
  ff.eval();  // gradcheck needs a deterministic function
  check_layer_grad(ff, {2, 6});
}

BOOST_AUTO_TEST_CASE(sequential_chains_layers) {
  Generator gen(5);
  Sequential net;
  net.add<Linear>(3, 5, gen);
  net.add<ActivationLayer>(Activation::relu);
  net.add<LayerNorm>(5);
  net.add<Linear>(5, 1, gen);
  BOOST_TEST(net.size() == 4u);
  BOOST_TEST(net(zeros({7, 3})).shape() == (Shape{7, 1}));
  BOOST_TEST(net.named_parameters().back().first == "3.bias");
  CHECK_THROWS_WITH(net(zeros({7, 2})), "Linear: the input's last dim must be in = 3");
  check_layer_grad(net, {4, 3});
}

BOOST_AUTO_TEST_CASE(activations_by_name) {
  BOOST_TEST((enum_from_name<Activation>("gelu_tanh") == Activation::gelu_tanh));
  BOOST_TEST(std::string(enum_name(Activation::relu)) == "relu");
  CHECK_THROWS_WITH(enum_from_name<Activation>("swish"),
                    "unknown activation 'swish' (known: relu, gelu");
}

BOOST_AUTO_TEST_CASE(init_is_seeded_and_has_the_right_scale) {
  Generator g1(7), g2(7);
  Linear a(64, 32, g1), b(64, 32, g2);
  BOOST_TEST(a.weight.data<float>() == b.weight.data<float>());  // bit for bit
  Tensor w = zeros({400, 200});
  Generator gen(8);
  init::xavier_uniform(w, gen);
  const double bound = std::sqrt(6.0 / 600);
  BOOST_TEST(max(abs(w), {0, 1}).item() <= bound);
  BOOST_TEST(max(abs(w), {0, 1}).item() > 0.99 * bound);
  init::kaiming_normal(w, gen);
  const double var = mean(w * w).item();
  BOOST_TEST(var == 2.0 / 400, boost::test_tools::tolerance(0.03));
  init::xavier_normal(w, gen);
  BOOST_TEST(mean(w * w).item() == 2.0 / 600, boost::test_tools::tolerance(0.03));
  init::kaiming_uniform(w, gen);
  BOOST_TEST(max(abs(w), {0, 1}).item() <= std::sqrt(2.0) * std::sqrt(3.0 / 400));
  Tensor empty = zeros({0, 3});
  CHECK_THROWS_WITH(init::xavier_uniform(empty, gen),
                    "init::xavier_uniform: needs a non-empty tensor");
}

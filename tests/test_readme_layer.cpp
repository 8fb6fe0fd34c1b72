// The test of README "Add your own layer": output shapes, gradcheck, a bad shape.
#define BOOST_TEST_MODULE readme_layer
#include "../examples/demos/gated_linear.hpp"
#include "testing.hpp"

BOOST_AUTO_TEST_CASE(gated_linear_shapes_gradients_and_errors) {
  tg::Generator gen(0);
  GatedLinear glu(4, 3, gen);
  BOOST_TEST(glu(tg::zeros({2, 5, 4})).shape() == (tg::Shape{2, 5, 3}));
  BOOST_TEST(glu.parameter_count() == 2u * (4 * 3 + 3));

  glu.to(tg::Dtype::f64);  // gradcheck in float64, through the input and every parameter
  std::vector<tg::Tensor> inputs = {testing::randn64({2, 4}, 1)};
  for (const tg::Tensor& p : glu.parameters()) inputs.push_back(p);
  auto r = tg::gradcheck([&](const std::vector<tg::Tensor>& in) { return glu(in[0]); }, inputs);
  BOOST_CHECK_MESSAGE(r.ok, r.report);

  CHECK_THROWS_WITH(glu(tg::zeros({2, 5}, tg::Dtype::f64)),
                    "Linear: the input's last dim must be in = 4");
}

// The README shows examples/demos/gated_linear.hpp and this test word for word.
BOOST_AUTO_TEST_CASE(readme_shows_this_code) {
  const std::string readme = testing::read_file(TAPEGRAD_SOURCE_DIR "/README.md");
  const std::string header =
      testing::read_file(TAPEGRAD_SOURCE_DIR "/examples/demos/gated_linear.hpp");
  const std::string test = testing::read_file(TAPEGRAD_SOURCE_DIR "/tests/test_readme_layer.cpp");
  const auto begin = test.find("BOOST_AUTO_TEST_CASE(gated_linear");
  std::string first_case = test.substr(begin, test.find("// The README shows") - begin);
  first_case.erase(first_case.find_last_not_of(" \n") + 1);  // up to its closing brace
  BOOST_TEST(!header.empty());
  BOOST_TEST(testing::contains(readme, header.substr(header.find("class GatedLinear"))));
  BOOST_TEST(testing::contains(readme, first_case));
}

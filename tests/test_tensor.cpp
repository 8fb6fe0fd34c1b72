#define BOOST_TEST_MODULE tensor
#include "testing.hpp"

using namespace tg;

BOOST_AUTO_TEST_CASE(factories_make_the_asked_shape_dtype_and_values) {
  Tensor z = zeros({2, 3});
  BOOST_TEST(z.shape() == (Shape{2, 3}));
  BOOST_TEST(z.dtype() == Dtype::f32);
  BOOST_TEST(z.numel() == 6u);
  Tensor o = ones({4}, Dtype::f64);
  BOOST_TEST(o.dtype() == Dtype::f64);
  BOOST_TEST(o.data<double>()(3) == 1.0);
  Tensor v = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  BOOST_TEST(v.data<float>()(1, 2) == 6.0f);
  BOOST_TEST(arange(4).data<float>()(3) == 3.0f);
  BOOST_TEST(scalar(2.5).item() == 2.5);
  BOOST_TEST(full({2}, 7).data<float>()(1) == 7.0f);
  BOOST_TEST(v.size(-1) == 3u);
}

BOOST_AUTO_TEST_CASE(bad_arguments_name_the_op) {
  CHECK_THROWS_WITH(from_vector({1, 2, 3}, {2, 2}),
                    "from_vector: 3 values do not fill shape (2, 2)");
  CHECK_THROWS_WITH(zeros({2, 2}).item(), "Tensor::item");
  CHECK_THROWS_WITH(zeros({2}).data<double>(), "asked for float64 values of a float32 tensor");
  CHECK_THROWS_WITH(zeros({2}).size(2), "axis 2 is out of range for a tensor of rank 1");
}

BOOST_AUTO_TEST_CASE(to_and_detach_copy_values_into_new_leaves) {
  Tensor x = from_vector({1.5, -2}, {2});
  x.set_requires_grad();
  Tensor d = x.to(Dtype::f64);
  BOOST_TEST(d.dtype() == Dtype::f64);
  BOOST_TEST(d.requires_grad());
  BOOST_TEST(d.data<double>()(0) == 1.5);
  Tensor c = x.detach();
  BOOST_TEST(!c.requires_grad());
  c.data<float>()(0) = 9;  // no aliasing: x keeps its value
  BOOST_TEST(x.data<float>()(0) == 1.5f);
}

BOOST_AUTO_TEST_CASE(generator_is_reproducible_and_restorable) {
  Generator a(42), b(42), c(43);
  BOOST_TEST(a.next_u64() == b.next_u64());
  BOOST_TEST(a.next_u64() != c.next_u64());
  a.normal();  // leaves a spare normal behind
  const std::string state = a.state();
  const double next1 = a.normal(), next2 = a.uniform();
  Generator r(0);
  r.set_state(state);
  BOOST_TEST(r.normal() == next1);
  BOOST_TEST(r.uniform() == next2);
  CHECK_THROWS_WITH(r.set_state("garbage"), "Generator::set_state");
  // Normal draws have about the right mean and variance.
  Generator g(7);
  double s = 0, s2 = 0;
  for (int i = 0; i < 20000; ++i) {
    const double v = g.normal();
    s += v;
    s2 += v * v;
  }
  BOOST_TEST(std::abs(s / 20000) < 0.03);
  BOOST_TEST(std::abs(s2 / 20000 - 1) < 0.05);
  for (int i = 0; i < 1000; ++i) BOOST_TEST(g.below(3) < 3u);
}

#define BOOST_TEST_MODULE ops_shape
#include "testing.hpp"

using namespace tg;
using testing::randn64;
using Inputs = std::vector<Tensor>;

BOOST_AUTO_TEST_CASE(reshape_permute_transpose) {
  Tensor x = from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  BOOST_TEST(reshape(x, {3, -1}).shape() == (Shape{3, 2}));
  BOOST_TEST(reshape(x, {6}).data<float>()(4) == 4.0f);
  Tensor t = transpose(x);
  BOOST_TEST(t.shape() == (Shape{3, 2}));
  BOOST_TEST(t.data<float>()(2, 1) == 5.0f);
  Tensor p = permute(reshape(x, {1, 2, 3}), {2, 0, 1});
  BOOST_TEST(p.shape() == (Shape{3, 1, 2}));
  BOOST_TEST(p.data<float>()(1, 0, 1) == 4.0f);

  Tensor y = randn64({2, 3, 4}, 1);
  CHECK_GRAD([](const Inputs& in) { return reshape(in[0], {4, -1}); }, {y});
  CHECK_GRAD([](const Inputs& in) { return permute(in[0], {1, 2, 0}); }, {y});
  CHECK_GRAD([](const Inputs& in) { return transpose(in[0], 0, 2) * 2.0; }, {y});
}

// Large tensors copy in parallel chunks (on 2 threads here): every element lands where the
// definition puts it, forward and backward, and a tensor used twice gets both gradients added
// (in parallel too).  (4, 96, 7, 20) is 53,760 elements, several chunks; the odd sizes make
// chunks end inside rows.
BOOST_AUTO_TEST_CASE(large_copies_and_gradient_sums_in_parallel) {
  set_num_threads(2);
  const std::size_t A = 4, B = 96, C = 7, D = 20;
  Generator gen(9);
  Tensor x = randn({A, B, C, D}, gen);
  x.set_requires_grad();
  const Tensor w = randn({C, A, D, B}, gen), v = randn({A, B, 3, D}, gen),
               u = randn({B, A * C * D}, gen);
  Tape tape;
  {
    TapeGuard recording(tape);
    const Tensor p = permute(x, {2, 0, 3, 1});  // (C, A, D, B)
    const Tensor s = slice(x, 2, 2, 5);         // (A, B, 3, D)
    const Tensor r =
        reshape(permute(x, {1, 0, 2, 3}), {static_cast<std::int64_t>(B), -1});  // (B, A C D)
    sum(p * w + p).backward();  // p used twice: its gradient w + 1 is summed from two ops
    sum(s * v).backward();
    sum(r * u).backward();
  }
  const Tensor p = permute(x, {2, 0, 3, 1}), s = slice(x, 2, 2, 5);
  const auto &X = x.data<float>(), &P = p.data<float>(), &S = s.data<float>(),
             &G = x.grad_data<float>();
  std::size_t wrong = 0;
  for (std::size_t a = 0; a < A; ++a)
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t c = 0; c < C; ++c)
        for (std::size_t d = 0; d < D; ++d) {
          wrong += P(c, a, d, b) != X(a, b, c, d);
          if (c >= 2 && c < 5) wrong += S(a, b, c - 2, d) != X(a, b, c, d);
          // the three gradients, added in the order backward ran them
          float want = w.data<float>()(c, a, d, b) + 1.0f;
          if (c >= 2 && c < 5) want += v.data<float>()(a, b, c - 2, d);
          want += u.data<float>()(b, (a * C + c) * D + d);
          wrong += std::abs(G(a, b, c, d) - want) > 1e-5f * (1 + std::abs(want));
        }
  BOOST_TEST(wrong == 0u);
}

BOOST_AUTO_TEST_CASE(slice_concat_stack) {
  Tensor x = from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor s = slice(x, 1, 1, 3);
  BOOST_TEST(s.shape() == (Shape{2, 2}));
  BOOST_TEST(s.data<float>()(1, 0) == 4.0f);
  BOOST_TEST(slice(x, -1, -1, 3).data<float>()(0, 0) == 2.0f);  // Python-style negatives
  Tensor c = concat({x, s}, 1);
  BOOST_TEST(c.shape() == (Shape{2, 5}));
  BOOST_TEST(c.data<float>()(1, 4) == 5.0f);
  Tensor st = stack({x, x, x}, 1);
  BOOST_TEST(st.shape() == (Shape{2, 3, 3}));
  BOOST_TEST(st.data<float>()(1, 2, 0) == 3.0f);

  Tensor a = randn64({2, 3, 4}, 1), b = randn64({2, 1, 4}, 2), e = randn64({2, 0, 4}, 3);
  CHECK_GRAD([](const Inputs& in) { return slice(in[0], 2, 1, 3); }, {a});
  CHECK_GRAD([](const Inputs& in) { return slice(in[0], 0, 1, 2); }, {a});
  CHECK_GRAD([](const Inputs& in) { return concat({in[0], in[1], in[2]}, 1); }, {a, b, e});
  CHECK_GRAD([](const Inputs& in) { return concat({in[1], in[0] * 2.0}, -2); }, {a, b});
  CHECK_GRAD([](const Inputs& in) { return stack({in[0], in[1]}, 0); }, {a, randn64({2, 3, 4}, 9)});
  CHECK_GRAD([](const Inputs& in) { return stack({in[0], in[0]}, -1); }, {b});
  BOOST_TEST(slice(a, 1, 2, 2).shape() == (Shape{2, 0, 4}));  // an empty slice is fine
}

BOOST_AUTO_TEST_CASE(take_rows_gathers_and_adds_back) {
  Tensor x = from_vector({0, 1, 2, 3, 4, 5}, {3, 2});
  Tensor y = take_rows(x, {2, 0, 2});
  BOOST_TEST(y.shape() == (Shape{3, 2}));
  BOOST_TEST(y.data<float>()(0, 1) == 5.0f);
  BOOST_TEST(y.data<float>()(1, 0) == 0.0f);
  BOOST_TEST(take_rows(x, {}).shape() == (Shape{0, 2}));
  // Repeated rows: their gradients add up; row 1, never taken, gets zero.
  CHECK_GRAD(
      [](const Inputs& in) {
        return take_rows(in[0], {2, 0, 2, 2});
      },
      {randn64({3, 2, 2}, 4)});
  CHECK_THROWS_WITH(take_rows(x, {0, 3}), "take_rows: row 3 is out of range for x (3, 2)");
  CHECK_THROWS_WITH(take_rows(from_vector({1}, {}), {0}), "take_rows: needs at least one axis");
}

// gather_rows and scatter_rows: the rows of the leading axes read as one, each the other's
// adjoint (second order, both modes), in parallel on rows large enough to be shared out.
BOOST_AUTO_TEST_CASE(gather_rows_and_scatter_rows_pack_and_unpack) {
  const auto rows =
      std::make_shared<const std::vector<std::size_t>>(std::vector<std::size_t>{0, 1, 3, 4});
  Tensor x = from_vector({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {2, 3, 2});  // rows 0..5
  Tensor y = gather_rows(x, rows);
  BOOST_TEST(y.shape() == (Shape{4, 2}));
  BOOST_TEST((y.data<float>() == Array<float>{{0, 1}, {2, 3}, {6, 7}, {8, 9}}));
  Tensor back = scatter_rows(y, rows, {2, 3, 2});
  BOOST_TEST(
      (back.data<float>() == Array<float>{{{0, 1}, {2, 3}, {0, 0}}, {{6, 7}, {8, 9}, {0, 0}}}));
  const GradcheckOptions both{.order = 2, .modes = CheckModes::both};
  CHECK_GRAD([&](const Inputs& in) { return gather_rows(in[0], rows); }, {randn64({2, 3, 2}, 1)},
             both);
  CHECK_GRAD(
      [&](const Inputs& in) {
        return scatter_rows(in[0], rows, {2, 3, 2});
      },
      {randn64({4, 2}, 2)}, both);
  // Many rows: the parallel copies put every row in its place.
  auto many = std::make_shared<std::vector<std::size_t>>();
  for (std::size_t i = 0; i < 5000; ++i)
    if (i % 3 != 1) many->push_back(i);
  Tensor big = randn64({5000, 64}, 3).to(Dtype::f32);
  Tensor packed = gather_rows(big, many);
  BOOST_TEST((take_rows(big, *many).data<float>() == packed.data<float>()));
  Tensor unpacked = scatter_rows(packed, many, {5000, 64});
  BOOST_TEST((unpacked.data<float>() == scatter_add_rows(packed, *many, 5000).data<float>()));
  const auto bad = [](std::vector<std::size_t> r) {
    return std::make_shared<const std::vector<std::size_t>>(std::move(r));
  };
  CHECK_THROWS_WITH(gather_rows(x, bad({0, 6})), "gather_rows: row 6 is out of range for 6 rows");
  CHECK_THROWS_WITH(gather_rows(x, bad({2, 2})),
                    "gather_rows: rows must be strictly increasing, got 2 then 2");
  CHECK_THROWS_WITH(scatter_rows(y, bad({3, 1, 4, 5}), {2, 3, 2}),
                    "scatter_rows: rows must be strictly increasing, got 3 then 1");
  CHECK_THROWS_WITH(scatter_rows(y, rows, {2, 3, 5}),
                    "scatter_rows: needs x (R, C) with R = 4 rows and a shape (..., C): x is (4, "
                    "2), the shape (2, 3, 5)");
  CHECK_THROWS_WITH(gather_rows(from_vector({1, 2}, {2}), rows),
                    "gather_rows: needs x (..., C) with at least 2 axes, got (2)");
}

BOOST_AUTO_TEST_CASE(pick_takes_one_entry_of_each_row) {
  Tensor x = from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Ids ids = Ids::from_shape({2});
  ids(0) = 2, ids(1) = 0;
  const Tensor y = pick(x, ids);
  BOOST_TEST(y.shape() == (Shape{2}));
  BOOST_TEST(y.data<float>()(0) == 2.0f);
  BOOST_TEST(y.data<float>()(1) == 3.0f);
  Ids ids3 = Ids::from_shape({2, 2});
  ids3(0, 0) = 1, ids3(0, 1) = 3, ids3(1, 0) = 0, ids3(1, 1) = 3;
  CHECK_GRAD([&](const Inputs& in) { return pick(in[0], ids3); }, {randn64({2, 2, 4}, 5)});
  ids(1) = 3;
  CHECK_THROWS_WITH(pick(x, ids), "pick: id 3 at 1 is outside [0, 3) for x (2, 3)");
  CHECK_THROWS_WITH(pick(x, Ids::from_shape({3})),
                    "pick: needs x (..., C) and ids (...) with the same leading axes");
}

// The adjoints that are the backward of slice, take_rows and pick, as ops of their own.
BOOST_AUTO_TEST_CASE(pad_scatter_add_rows_and_unpick_put_entries_back) {
  Tensor x = from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  const Tensor p = pad(x, 1, 2, 1);  // (2, 2 + 3 + 1)
  BOOST_TEST(p.shape() == (Shape{2, 6}));
  BOOST_TEST(p.data<float>()(0, 1) == 0.0f);
  BOOST_TEST(p.data<float>()(1, 2) == 3.0f);
  BOOST_TEST(p.data<float>()(1, 4) == 5.0f);
  BOOST_TEST(p.data<float>()(1, 5) == 0.0f);
  BOOST_TEST(slice(p, -1, 2, 5).data<float>() == x.data<float>());  // slice undoes it
  BOOST_TEST(pad(x, 0, 0, 0).data<float>() == x.data<float>());

  // Rows 2, 0, 2 of the output get x's rows 0, 1, 2: row 2 twice, so their sum; row 1 none.
  const Tensor s = scatter_add_rows(reshape(x, {3, 2}), {2, 0, 2}, 4);
  BOOST_TEST(s.shape() == (Shape{4, 2}));
  const auto& S = s.data<float>();
  BOOST_TEST((S(0, 0) == 2.0f && S(0, 1) == 3.0f));
  BOOST_TEST((S(1, 0) == 0.0f && S(1, 1) == 0.0f && S(3, 0) == 0.0f));
  BOOST_TEST((S(2, 0) == 0.0f + 4.0f && S(2, 1) == 1.0f + 5.0f));

  Ids ids = Ids::from_shape({2});
  ids(0) = 2, ids(1) = 0;
  const Tensor u = unpick(from_vector({7, 8}, {2}), ids, 3);
  BOOST_TEST(u.shape() == (Shape{2, 3}));
  BOOST_TEST(u.data<float>() == from_vector({0, 0, 7, 8, 0, 0}, {2, 3}).data<float>());
  BOOST_TEST(pick(u, ids).data<float>() == from_vector({7, 8}, {2}).data<float>());

  CHECK_THROWS_WITH(pad(x, 2, 1, 1), "pad: axis 2 is out of range");
  CHECK_THROWS_WITH(scatter_add_rows(x, {0}, 4),
                    "scatter_add_rows: needs x (R, ...) with one row per index: x is (2, 3), "
                    "there are 1 indices");
  CHECK_THROWS_WITH(scatter_add_rows(x, {0, 4}, 4),
                    "scatter_add_rows: row 4 is out of range for an output of 4 rows");
  CHECK_THROWS_WITH(unpick(x, ids, 3), "unpick: needs v and ids of one shape, got v (2, 3)");
  CHECK_THROWS_WITH(unpick(from_vector({7, 8}, {2}), ids, 2),
                    "unpick: id 2 at 0 is outside [0, 2)");
}

// Every shape op, and every adjoint that is one's backward, differentiates again: order 2 in
// both modes.  The tanh after each op makes the gradient depend on x, so that tangents also
// run through the backward's ops (forward of reverse).
BOOST_AUTO_TEST_CASE(shape_ops_pass_second_order_checks_both_ways) {
  const auto check = [](const char* name, const GradcheckFn& f, const Inputs& inputs) {
    auto r = gradcheck(f, inputs, {.order = 2, .modes = CheckModes::both});
    BOOST_CHECK_MESSAGE(r.ok, name << ": " << r.report);
    BOOST_CHECK_GT(r.checked, 0u);
  };
  const Tensor a = randn64({2, 3, 4}, 1), rows = randn64({3, 2, 2}, 4);
  check("permute", [](const Inputs& in) { return tanh(permute(in[0], {2, 0, 1})); }, {a});
  check("transpose", [](const Inputs& in) { return tanh(transpose(in[0], 0, 2)); }, {a});
  check("slice", [](const Inputs& in) { return tanh(slice(in[0], 1, 1, 3)); }, {a});
  check("slice from the end", [](const Inputs& in) { return tanh(slice(in[0], -1, -3, -1)); }, {a});
  check("pad", [](const Inputs& in) { return tanh(pad(in[0], 1, 2, 1)); }, {a});
  check("take_rows", [](const Inputs& in) { return tanh(take_rows(in[0], {2, 0, 2, 2})); }, {rows});
  check("scatter_add_rows",
        [](const Inputs& in) {
          return tanh(scatter_add_rows(in[0], {2, 0, 2}, 4));
        },
        {rows});
  Ids ids = Ids::from_shape({2, 3});  // for a (2, 3, 4): ids in [0, 4)
  for (std::size_t i = 0; i < 6; ++i) ids.data()[i] = static_cast<std::int64_t>((i * 3 + 1) % 4);
  check("pick", [ids](const Inputs& in) { return tanh(pick(in[0], ids)); }, {a});
  check("unpick", [ids](const Inputs& in) { return tanh(unpick(in[0], ids, 4)); },
        {randn64({2, 3}, 6)});
  check("stack",
        [](const Inputs& in) {
          return tanh(stack({in[0], in[0] * in[1]}, 1));
        },
        {randn64({2, 3}, 6), randn64({2, 3}, 7)});
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH(reshape(x, {4, 2}),
                    "reshape: cannot reshape (2, 3) (6 elements) to (4, 2) (8 elements)");
  CHECK_THROWS_WITH(reshape(x, {-1, -1}), "reshape: only one dimension can be -1");
  CHECK_THROWS_WITH(reshape(x, {4, -1}), "cannot infer the -1 dimension");
  CHECK_THROWS_WITH(permute(x, {0}), "permute: the permutation (0) has 1 axes");
  CHECK_THROWS_WITH(permute(x, {1, 1}), "permute: (1, 1) repeats an axis");
  CHECK_THROWS_WITH(slice(x, 1, 2, 5), "slice: range [2, 5) is not inside axis 1 of size 3");
  CHECK_THROWS_WITH(slice(x, 2, 0, 1), "slice: axis 2 is out of range");
  CHECK_THROWS_WITH(concat({x, zeros({3, 3})}, 1),
                    "concat: tensor 1 is (3, 3) float32, tensor 0 is (2, 3)");
  CHECK_THROWS_WITH(concat({}, 0), "concat: needs at least one tensor");
  CHECK_THROWS_WITH(stack({x, zeros({3, 2})}), "stack: tensor 1 is (3, 2), tensor 0 is (2, 3)");
}

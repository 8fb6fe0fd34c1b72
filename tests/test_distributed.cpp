// Data-parallel training (nn/training/distributed.hpp and the training loop's use of it).  CTest
// runs this file three times: alone, and under `mpirun -np 2` and `-np 3`.  Every rank runs every
// test case; a rank's failed check fails its exit code, and so mpirun's.
#define BOOST_TEST_MODULE distributed
#include <bit>
#include <numeric>

#include "fixtures.hpp"
#include "testing.hpp"

using namespace tg;

namespace {

const nn::ProcessGroup& world() { return nn::ProcessGroup::world(); }

// A failed check on one rank stops every rank at once (after printing it): the others would
// otherwise wait for it in their next collective until CTest's timeout.
struct StopAllRanksOnFailure : boost::unit_test::test_observer {
  StopAllRanksOnFailure() { boost::unit_test::framework::register_observer(*this); }
  ~StopAllRanksOnFailure() { boost::unit_test::framework::deregister_observer(*this); }
  void assertion_result(boost::unit_test::assertion_result result) override {
    if (result == boost::unit_test::AR_FAILED) stop();
  }
  void exception_caught(const boost::execution_exception&) override { stop(); }
  static void stop() {
    if (world().size() == 1) return;
    std::fprintf(stderr, "rank %zu of %zu failed a check: stopping every rank\n", world().rank(),
                 world().size());
    std::fflush(stdout);
    world().abort(1);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(StopAllRanksOnFailure);

std::string rank_path(const std::string& name,
                      const nn::ProcessGroup& group) {  // one file per writer
  return name + "-" + std::to_string(group.size()) + "-" + std::to_string(world().rank()) + ".npz";
}

// 20 steps: 4 epochs of 6 batches of 8 examples (48 examples), shuffled by the epoch.
std::vector<std::vector<std::size_t>> batches_of(std::size_t epoch) {
  std::vector<std::size_t> order(48);
  std::iota(order.begin(), order.end(), 0);
  Generator shuffle(100 + epoch);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle.below(i)]);
  std::vector<std::vector<std::size_t>> batches;
  for (std::size_t i = 0; i < order.size(); i += 8)
    batches.emplace_back(order.begin() + i, order.begin() + i + 8);
  batches.pop_back();  // 5 a epoch
  return batches;
}

struct Run {
  std::vector<double> losses;
  std::vector<Tensor> params;
};

// What one process with whole batches and the ranks with their shares must agree on.
void check_same_training(const Run& alone, const Run& together) {
  BOOST_TEST_REQUIRE(alone.losses.size() == 20u);
  BOOST_TEST_REQUIRE(together.losses.size() == 20u);
  // The shares are padded to their own longest sentence and their sums meet in another order
  // than in one batch, so the results agree to float32 rounding, grown over 20 Adam steps.
  for (std::size_t i = 0; i < 20; ++i)
    BOOST_TEST(together.losses[i] == alone.losses[i], boost::test_tools::tolerance(1e-5));
  // Parameters agree to float32 rounding too, with one exception that is not the exchange's:
  // the key projection's bias.  Softmax ignores a constant added to a row of logits, and
  // q.(k_j + b) adds the constant q.b, so that bias's gradient is zero but for rounding, and
  // Adam, which divides by the gradient's own size, turns that noise into full steps of lr.
  double worst = 0;
  for (std::size_t p = 0; p < alone.params.size(); ++p) {
    const auto& a = alone.params[p].data<float>();
    const auto& b = together.params[p].data<float>();
    BOOST_TEST_REQUIRE(a.size() == b.size());
    const bool in_proj_bias =
        testing::contains(alone.params[p].name(), "in_proj.bias");  // [q | k | v] biases
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!(in_proj_bias && i >= a.size() / 3 && i < 2 * a.size() / 3))
        worst = std::max(worst, double(std::abs(a.data()[i] - b.data()[i])));
  }
  BOOST_TEST(worst < 1e-5, "largest parameter difference " << worst);
  // The ranks themselves hold the same parameters bit for bit: they took the same steps.
  const auto sums = world().allgather(nn::parameter_checksum(together.params));
  for (std::uint64_t s : sums) BOOST_TEST(s == sums[0]);
}

// Trains a pipeline's task for 20 steps on `group` (no evaluation; a model file per writer).
// With overlap, buckets of 1 KB: several start during backward even in these small models.
template <class Pipeline>
Run twenty_steps(nn::Task task, Pipeline& pipeline, const std::string& name,
                 const nn::ProcessGroup& group, bool overlap) {
  task.evaluate = [] { return 0.0; };
  task.save_model = [&pipeline](const std::string& path) { pipeline.save(path); };
  task.group = &group;
  const auto result = nn::train(task, {.epochs = 4,
                                       .lr = 3e-3,
                                       .warmup = 5,
                                       .out = rank_path(name, group),
                                       .check_ranks_every = 1,
                                       .overlap = overlap,
                                       .bucket_bytes = std::size_t{overlap ? 1024u : 4u << 20}});
  return {result.losses, task.model->parameters()};
}

// ---- a tagger on a toy language -------------------------------------------------------------

Run train_tagger(const fixtures::ToyTagging& data, const nn::ProcessGroup& group,
                 bool overlap = false) {
  const auto t = fixtures::toy_tagger(data);
  nn::Task task{.model = &t->net(), .gen = &t->gen(), .batches = batches_of};
  task.loss = [&](const std::vector<std::size_t>& batch) { return data.loss(*t, batch); };
  task.weight = [&](const std::vector<std::size_t>& batch) {  // a mean over tokens
    double n = 0;
    for (std::size_t i : batch) n += data.lengths[i];
    return n;
  };
  task.lengths = &data.lengths;
  return twenty_steps(task, *t, "dist-tagger", group, overlap);
}

// ---- a translator that reverses its sentences ---------------------------------------------

struct Translation {
  std::vector<models::Words> sources, targets;
  std::vector<std::size_t> lengths;
  Translation() {
    const std::vector<std::string> src = {"eins", "zwei", "drei", "vier", "fuenf"},
                                   tgt = {"one", "two", "three", "four", "five"};
    Generator gen(2);
    for (int i = 0; i < 48; ++i) {
      sources.emplace_back(), targets.emplace_back();
      for (std::size_t j = 0, n = 1 + gen.below(7); j < n; ++j) {
        const std::size_t k = gen.below(src.size());
        sources.back().push_back(src[k]);
        targets.back().insert(targets.back().begin(), tgt[k]);
      }
      lengths.push_back(sources.back().size() + 1);
    }
  }
};

Run train_translator(const Translation& data, const nn::ProcessGroup& group, bool overlap = false) {
  models::TranslationPipeline t(
      models::Vocab::build(data.sources, 1, false),
      models::Vocab::build(data.targets, 1, false, {"<s>", "</s>"}), true,
      {.d_model = 16, .heads = 2, .ff = 32, .layers = 1, .dropout = 0.0, .max_len = 16}, 5);
  nn::Task task{.model = &t.model(), .gen = &t.gen(), .batches = batches_of};
  task.loss = [&](const std::vector<std::size_t>& batch) {
    std::vector<const models::Words*> xs, ys;
    for (std::size_t i : batch) xs.push_back(&data.sources[i]), ys.push_back(&data.targets[i]);
    return t.loss(xs, ys, 0.0, 1.0);
  };
  task.weight =
      [&](const std::vector<std::size_t>& batch) {  // a mean over target tokens, </s> included
        double n = 0;
        for (std::size_t i : batch) n += data.targets[i].size() + 1;
        return n;
      };
  task.lengths = &data.lengths;
  return twenty_steps(task, t, "dist-translator", group, overlap);
}

}  // namespace

BOOST_AUTO_TEST_CASE(shares_cover_a_batch_in_order) {
  for (std::size_t n = 0; n <= 9; ++n) {
    std::vector<std::size_t> batch(n);
    std::iota(batch.begin(), batch.end(), 100);
    for (std::size_t ranks = 1; ranks <= 4; ++ranks) {
      std::vector<std::size_t> joined;
      for (std::size_t r = 0; r < ranks; ++r) {
        const auto mine = nn::shard(batch, r, ranks);
        BOOST_TEST(mine.size() + 1 >= n / ranks + 1);  // sizes n / ranks or one more
        BOOST_TEST(mine.size() <= n / ranks + 1);
        joined.insert(joined.end(), mine.begin(), mine.end());
      }
      BOOST_TEST(joined == batch, boost::test_tools::per_element());
    }
  }
  CHECK_THROWS_WITH(nn::shard({1, 2}, 2, 2), "rank 2 is not one of 2 ranks");
}

BOOST_AUTO_TEST_CASE(ensemble_members_share_out_their_own_batches_the_same_way) {
  models::MemberOrders orders(batches_of, 3, 7);
  const auto& batches = orders.epoch(1);
  for (const auto& batch : batches)
    for (std::size_t k = 0; k < 3; ++k)
      for (std::size_t ranks = 1; ranks <= 3; ++ranks) {
        std::vector<std::size_t> joined;
        for (std::size_t r = 0; r < ranks; ++r) {
          const auto theirs = orders.member(nn::shard(batch, r, ranks), k);
          joined.insert(joined.end(), theirs.begin(), theirs.end());
        }
        BOOST_TEST(joined == orders.member(batch, k), boost::test_tools::per_element());
      }
}

BOOST_AUTO_TEST_CASE(gradients_are_summed_over_the_ranks) {
  const auto& group = world();
  const double R = group.size(), r = group.rank();
  // Sizes on both sides of a 16-byte bucket: a and b are summed in place, c, d and e packed.
  Tensor a(Array<float>(xt::zeros<float>({2, 3})), true),
      b(Array<double>(xt::zeros<double>({3})), true);
  Tensor c(Array<float>(xt::zeros<float>({1})), true), d(Array<float>(xt::zeros<float>({3})), true);
  Tensor e(Array<float>(xt::zeros<float>({1})), true),
      unused(Array<float>(xt::zeros<float>({2})), true);
  const auto set_grad = [](Tensor& t, double v) {
    dispatch(t.dtype(),
             [&]<class T>() { t.impl()->grad = Array<T>(xt::full_like(t.data<T>(), T(v))); });
  };
  set_grad(a, r + 1), set_grad(b, 10 * (r + 1)), set_grad(d, r);
  if (group.rank() == group.size() - 1) set_grad(c, 5);  // one rank's examples alone reach c
  if (group.rank() == 0) set_grad(e, 2);
  double extra[2] = {1, r};
  const std::size_t calls = nn::allreduce_gradients({a, b, c, d, e, unused}, group, extra, 16);
  // Alone: no exchange.  Else: the flags and extra, a and b in place, then c and d (1 + 3
  // floats) fill a bucket of 4, and e goes in the next.
  BOOST_TEST(calls == (group.size() == 1 ? 0u : 5u));
  const double ranks_sum = R * (R + 1) / 2;  // 1 + 2 + ... + R
  for (float g : a.grad_data<float>()) BOOST_TEST(g == ranks_sum);
  for (double g : b.grad_data<double>()) BOOST_TEST(g == 10 * ranks_sum);
  BOOST_TEST_REQUIRE(c.has_grad());  // on every rank, as one process would have it
  BOOST_TEST(c.grad_data<float>()(0) == 5.0f);
  for (float g : d.grad_data<float>()) BOOST_TEST(g == R * (R - 1) / 2);
  BOOST_TEST(e.grad_data<float>()(0) == 2.0f);
  BOOST_TEST(!unused.has_grad());  // no rank had one: still none (AdamW skips it)
  BOOST_TEST(extra[0] == R);
  BOOST_TEST(extra[1] == R * (R - 1) / 2);
}

BOOST_AUTO_TEST_CASE(ranks_that_stop_agreeing_are_named) {
  const auto& group = world();
  Tensor p(Array<float>(xt::ones<float>({4})), true);
  BOOST_CHECK_NO_THROW(nn::check_parameters_agree({p}, group, 7));
  // What the ranks compare, checked alone too: a checksum that one bit of one value changes, and
  // the shape, but not another tensor with the same values.
  const std::uint64_t sum = nn::parameter_checksum({p});
  Tensor bit_apart(Array<float>(xt::ones<float>({4})), true);
  Tensor reshaped(Array<float>(xt::ones<float>({2, 2})), true);
  bit_apart.data<float>()(2) = std::nextafter(1.0f, 2.0f);
  BOOST_TEST(nn::parameter_checksum({bit_apart}) != sum);
  BOOST_TEST(nn::parameter_checksum({reshaped}) != sum);
  BOOST_TEST(nn::parameter_checksum({Tensor(Array<float>(xt::ones<float>({4})), true)}) == sum);
  if (group.size() == 1) return;  // no other rank to disagree with
  if (group.rank() == 1) p.data<float>()(2) = std::nextafter(1.0f, 2.0f);  // one bit apart
  BOOST_CHECK_EXCEPTION(nn::check_parameters_agree({p}, group, 7), std::runtime_error,
                        [](const std::runtime_error& e) {
                          return testing::contains(
                              e.what(),
                              "after step 7 the parameters of rank(s) 1 differ from rank 0's");
                        });
}

BOOST_AUTO_TEST_CASE(the_ranks_train_a_tagger_as_one_process_with_whole_batches) {
  const fixtures::ToyTagging data(7);
  const Run alone = train_tagger(data, nn::ProcessGroup::single());
  check_same_training(alone, train_tagger(data, world()));
  check_same_training(alone,
                      train_tagger(data, world(), true));  // the sums started during backward
}

BOOST_AUTO_TEST_CASE(the_ranks_train_a_translator_as_one_process_with_whole_batches) {
  const Translation data;
  const Run alone = train_translator(data, nn::ProcessGroup::single());
  check_same_training(alone, train_translator(data, world()));
  check_same_training(alone, train_translator(data, world(), true));
}

BOOST_AUTO_TEST_CASE(buckets_start_during_backward_and_sum_as_allreduce_does) {
  const auto& group = world();
  const float r = static_cast<float>(group.rank());
  const bool last = group.rank() + 1 == group.size();
  // Four layers used in turn, so backward completes the last one's weight first; a parameter
  // only the last rank's examples reach; and one no op takes (it must not hold back the others).
  const auto make = [] {
    std::vector<Tensor> p;
    for (int k = 0; k < 4; ++k)
      p.emplace_back(Array<float>(xt::ones<float>({3, 3}) * (0.1f * (k + 1))), true);
    p.emplace_back(Array<float>(xt::ones<float>({3})), true);  // [4]: the last rank only
    p.emplace_back(Array<float>(xt::ones<float>({2})), true);  // [5]: unused
    return p;
  };
  const auto backward = [&](const std::vector<Tensor>& p, Tape& tape) {
    TapeGuard recording(tape);
    Tensor h(Array<float>(xt::ones<float>({2, 3}) * (r + 1)));
    for (int k = 0; k < 4; ++k) h = tanh(matmul(h, p[k]));
    Tensor loss = sum(h);
    if (last) loss = loss + sum(p[4] * p[4]);
    loss.backward();
  };
  const std::vector<Tensor> plain = make(), overlapped = make();
  Tape tape1, tape2;
  backward(plain, tape1);
  double e1 = 1, e2 = 1;
  nn::allreduce_gradients(plain, group, {&e1, 1}, 36);
  // A bucket per 3 x 3 weight (36 bytes), [4] and [5] packed together.
  nn::GradientReducer reducer(overlapped, group, 36);
  BOOST_TEST(reducer.buckets() == 5u);
  reducer.watch(tape2);
  backward(overlapped, tape2);
  const std::size_t early = reducer.finish({&e2, 1});
  // All five buckets start during backward; the first ([5] and [4]) as backward begins, on
  // every rank, though no op takes [5] and only the last rank's ops take [4].
  BOOST_TEST(early == 5u);
  BOOST_TEST(e2 == e1);
  for (std::size_t i = 0; i < plain.size(); ++i) {
    BOOST_TEST_CONTEXT("parameter " << i) {
      BOOST_TEST(overlapped[i].has_grad() == plain[i].has_grad());
      if (!plain[i].has_grad() || !overlapped[i].has_grad()) continue;
      const auto& a = plain[i].grad_data<float>();
      const auto& b = overlapped[i].grad_data<float>();
      for (std::size_t j = 0; j < a.size(); ++j)
        BOOST_TEST(b.data()[j] == a.data()[j], boost::test_tools::tolerance(1e-6f));
    }
  }
  BOOST_TEST(!overlapped[5].has_grad());  // on no rank: none, as one process would have it
  BOOST_TEST(overlapped[4].has_grad());   // on one rank: every rank has it
  CHECK_THROWS_WITH(nn::GradientReducer({plain[0], plain[0]}, group), "is listed twice");

  // A second backward would add into gradients whose sums have started: refused before it does.
  Tape tape3;
  reducer.watch(tape3);
  {
    TapeGuard recording(tape3);
    sum(overlapped[0] * overlapped[0]).backward();
    BOOST_CHECK_THROW(sum(overlapped[0]).backward(), std::logic_error);
  }
  reducer.finish();
  reducer.watch(tape3);
  BOOST_CHECK_THROW(reducer.watch(tape3), std::logic_error);  // watch() twice
  reducer.finish();
}

BOOST_AUTO_TEST_CASE(the_reducer_sums_float64_gradients_after_backward) {
  const auto& group = world();
  const double r = group.rank();
  Tensor w(Array<double>(xt::ones<double>({3})), true),
      u(Array<double>(xt::ones<double>({2})), true);
  nn::GradientReducer reducer({w, u}, group);
  BOOST_TEST(reducer.buckets() == 0u);  // float64 is summed in finish(), not in buckets
  Tape tape;
  reducer.watch(tape);
  {
    TapeGuard recording(tape);
    sum(w * w * (r + 1)).backward();  // d/dw = 2 (r + 1) w
  }
  reducer.finish();
  const double R = group.size();
  for (double g : w.grad_data<double>()) BOOST_TEST(g == R * (R + 1));  // 2 (1 + 2 + ... + R)
  BOOST_TEST(!u.has_grad());
}

BOOST_AUTO_TEST_CASE(each_rank_draws_its_own_random_numbers_the_same_way_every_run) {
  // A one-parameter model whose loss draws from the task's generator, as dropout does.
  struct One : nn::Module {
    Tensor w;
    One() { w = register_parameter("w", Tensor(Array<float>(xt::ones<float>({1})))); }
  };
  const auto first_draw = [] {
    One model;
    Generator gen(9);
    std::vector<std::size_t> lengths(8, 1);
    double draw = -1;
    nn::Task task{.model = &model, .gen = &gen};
    task.batches = [](std::size_t) {
      return std::vector<std::vector<std::size_t>>{{0, 1, 2, 3, 4, 5, 6, 7}};
    };
    task.loss = [&](const std::vector<std::size_t>&) {
      if (draw < 0) draw = gen.uniform();
      return sum(model.w * model.w);
    };
    task.lengths = &lengths;
    task.evaluate = [] { return 0.0; };
    task.save_model = [](const std::string&) {};
    nn::train(task, {.epochs = 1, .out = rank_path("dist-draws", world())});
    return draw;
  };
  const double draw = first_draw();
  BOOST_TEST(first_draw() == draw);  // the same rank count: the same numbers
  if (world().is_root())
    BOOST_TEST(draw == Generator(9).uniform());  // rank 0 keeps the seed's stream
  const auto all = world().allgather(std::bit_cast<std::uint64_t>(draw));
  for (std::size_t a = 0; a < all.size(); ++a)
    for (std::size_t b = a + 1; b < all.size(); ++b)
      BOOST_TEST(all[a] != all[b], "ranks " << a << " and " << b << " drew alike");
}

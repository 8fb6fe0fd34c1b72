// Per-op overhead on tiny tensors, where bookkeeping (allocation, the tape) dominates the
// arithmetic.  A benchmark program, not a test:
//
//   build/bench/op_overhead --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Targets (issue "tapegrad core"): at most 0.5 us per recorded 8x8 elementwise op, at most
// 3 us for forward + backward of (x * x).sum() on 8x8.  PyTorch on this machine: about 1.7 us
// for an 8x8 add and 26 us for that forward + backward (docs/speed.md says where this was
// measured).
#include <benchmark/benchmark.h>

#include "tapegrad.hpp"

namespace {

constexpr int kOpsPerBatch = 256;  // recorded ops between tape clears

tg::Tensor leaf_8x8(std::uint64_t seed) {
  tg::Generator gen(seed);
  tg::Tensor t = tg::randn({8, 8}, gen);
  t.set_requires_grad();
  return t;
}

// Adds a "time_per_op" column (seconds per recorded op, printed with an SI prefix: 200n).
void report_time_per_op(benchmark::State& state) {
  state.counters["time_per_op"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kOpsPerBatch,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// x + y with both inputs requiring grad: computed and recorded on the tape.  The tape is
// cleared every kOpsPerBatch ops (its cost included), as a training loop would each step.
void BM_add_8x8_recorded(benchmark::State& state) {
  tg::Tensor x = leaf_8x8(1), y = leaf_8x8(2);
  tg::Tape tape;
  tg::TapeGuard recording(tape);
  for (auto _ : state) {
    for (int i = 0; i < kOpsPerBatch; ++i) benchmark::DoNotOptimize(x + y);
    tape.clear();
  }
  report_time_per_op(state);
}
BENCHMARK(BM_add_8x8_recorded);

void BM_mul_8x8_recorded(benchmark::State& state) {
  tg::Tensor x = leaf_8x8(1), y = leaf_8x8(2);
  tg::Tape tape;
  tg::TapeGuard recording(tape);
  for (auto _ : state) {
    for (int i = 0; i < kOpsPerBatch; ++i) benchmark::DoNotOptimize(x * y);
    tape.clear();
  }
  report_time_per_op(state);
}
BENCHMARK(BM_mul_8x8_recorded);

// The same add with no tape: the cost of the arithmetic and the allocation alone.
void BM_add_8x8_no_tape(benchmark::State& state) {
  tg::Tensor x = leaf_8x8(1), y = leaf_8x8(2);
  for (auto _ : state) benchmark::DoNotOptimize(x + y);
}
BENCHMARK(BM_add_8x8_no_tape);

// Forward + backward of (x * x).sum() on 8x8, from a cleared tape, with zero_grad.
void BM_mul_sum_forward_backward_8x8(benchmark::State& state) {
  tg::Tensor x = leaf_8x8(1);
  tg::Tape tape;
  for (auto _ : state) {
    tape.clear();
    tg::TapeGuard recording(tape);
    tg::Tensor loss = tg::sum(x * x);
    loss.backward();
    x.zero_grad();
  }
}
BENCHMARK(BM_mul_sum_forward_backward_8x8);

}  // namespace

BENCHMARK_MAIN();

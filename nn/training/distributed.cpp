#include "distributed.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <xtensor/xbuilder.hpp>

#ifdef TAPEGRAD_MPI
#include <mpi.h>
#endif

namespace tg::nn {

namespace {

// The launchers' environment: Open MPI's mpirun sets OMPI_COMM_WORLD_*, PMI and PMIx launchers
// (Slurm's srun, MPICH's hydra) set PMI_* or PMIX_RANK.
bool started_by_launcher() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

// How many processes the launcher started (1 when it does not say).
std::size_t launcher_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(name)) return std::strtoull(v, nullptr, 10);
  return 1;
}

#ifdef TAPEGRAD_MPI
template <class T>
MPI_Datatype mpi_type() {
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string(what) + ": " + std::string(text, length));
}
#endif

template <class T>
void sum_over_ranks(std::span<T> values, bool uses_mpi) {
  if (!uses_mpi || values.empty()) return;
#ifdef TAPEGRAD_MPI
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()),
                          mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD),
            "allreduce");
#endif
}

template <class T>
void copy_from_root(std::span<T> values, std::size_t root, bool uses_mpi) {
  if (!uses_mpi || values.empty()) return;
#ifdef TAPEGRAD_MPI
  check_mpi(MPI_Bcast(values.data(), static_cast<int>(values.size()), mpi_type<T>(),
                      static_cast<int>(root), MPI_COMM_WORLD),
            "broadcast");
#else
  (void)root;
#endif
}

}  // namespace

const ProcessGroup& ProcessGroup::world() {
  static const ProcessGroup group = [] {
    if (!started_by_launcher()) return ProcessGroup(0, 1, false);
#ifdef TAPEGRAD_MPI
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED,
                    &provided);  // only this thread calls MPI
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size == 1 && launcher_size() > 1)  // a launcher and an MPI library that do not match
      throw std::runtime_error(
          "started as one of " + std::to_string(launcher_size()) +
          " processes, but MPI sees this one alone: each would train by itself into the same "
          "files; start it with this MPI's mpirun (or srun --mpi=pmix)");
    return ProcessGroup(rank, size, size > 1);
#else
    if (launcher_size() > 1)
      throw std::runtime_error(
          "started as one of " + std::to_string(launcher_size()) +
          " ranks by an MPI launcher, but this tapegrad was built without MPI: rebuild with "
          "libopenmpi-dev installed (cmake -DTAPEGRAD_MPI=ON), or run a single process");
    return ProcessGroup(0, 1, false);
#endif
  }();
  return group;
}

const ProcessGroup& ProcessGroup::single() {
  static const ProcessGroup group(0, 1, false);
  return group;
}

void ProcessGroup::allreduce_sum(std::span<float> values) const {
  sum_over_ranks(values, uses_mpi_);
}
void ProcessGroup::allreduce_sum(std::span<double> values) const {
  sum_over_ranks(values, uses_mpi_);
}
void ProcessGroup::broadcast(std::span<float> values, std::size_t root) const {
  copy_from_root(values, root, uses_mpi_);
}
void ProcessGroup::broadcast(std::span<double> values, std::size_t root) const {
  copy_from_root(values, root, uses_mpi_);
}

std::vector<std::uint64_t> ProcessGroup::allgather(std::uint64_t value) const {
  std::vector<std::uint64_t> all(size_, value);
#ifdef TAPEGRAD_MPI
  if (uses_mpi_)
    check_mpi(MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD),
              "allgather");
#endif
  return all;
}

void ProcessGroup::abort(int code) const {
#ifdef TAPEGRAD_MPI
  if (uses_mpi_) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

std::vector<std::size_t> shard(const std::vector<std::size_t>& batch, std::size_t rank,
                               std::size_t ranks) {
  if (ranks == 0 || rank >= ranks)
    throw std::invalid_argument("shard: rank " + std::to_string(rank) + " is not one of " +
                                std::to_string(ranks) + " ranks");
  const std::size_t n = batch.size();
  return {batch.begin() + rank * n / ranks, batch.begin() + (rank + 1) * n / ranks};
}

namespace {

// Sums the gradients of the parameters of element type T that have one on some rank.  A
// parameter of at least a bucket is summed in place; smaller ones are packed into a bucket and
// summed together (fewer, larger messages: each exchange costs a network latency).
template <class T>
std::size_t sum_gradients(const std::vector<Tensor*>& params, const ProcessGroup& group,
                          std::size_t bucket_bytes) {
  std::size_t calls = 0;
  const std::size_t bucket_size = std::max<std::size_t>(bucket_bytes / sizeof(T), 1);
  std::vector<T> bucket;
  std::vector<Array<T>*> packed;
  const auto flush = [&] {
    group.allreduce_sum(std::span<T>(bucket));
    ++calls;
    std::size_t at = 0;
    for (Array<T>* g : packed) {
      std::copy_n(bucket.data() + at, g->size(), g->data());
      at += g->size();
    }
    bucket.clear();
    packed.clear();
  };
  for (Tensor* p : params) {
    auto& g = std::get<Array<T>>(*p->impl()->grad);
    if (g.size() >= bucket_size) {
      group.allreduce_sum(std::span<T>(g.data(), g.size()));
      ++calls;
      continue;
    }
    if (bucket.size() + g.size() > bucket_size) flush();
    bucket.insert(bucket.end(), g.begin(), g.end());
    packed.push_back(&g);
  }
  if (!packed.empty()) flush();
  return calls;
}

}  // namespace

std::size_t allreduce_gradients(const std::vector<Tensor>& params, const ProcessGroup& group,
                                std::span<double> extra, std::size_t bucket_bytes) {
  if (group.size() == 1) return 0;
  // First a small exchange: on how many ranks each parameter has a gradient, and `extra`.
  std::vector<double> small(params.size() + extra.size());
  for (std::size_t i = 0; i < params.size(); ++i) small[i] = params[i].has_grad() ? 1 : 0;
  std::copy(extra.begin(), extra.end(), small.begin() + params.size());
  group.allreduce_sum(std::span<double>(small));
  std::copy(small.begin() + params.size(), small.end(), extra.begin());

  std::vector<Tensor*> f32, f64;  // the parameters with a gradient somewhere, by element type
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (small[i] == 0) continue;
    Tensor& p = const_cast<Tensor&>(params[i]);  // a Tensor is a handle: its gradient is shared
    if (!p.has_grad())  // none arrived here: zeros, so this rank adds nothing
      dispatch(p.dtype(), [&]<class T>() { p.impl()->grad = Array<T>(xt::zeros<T>(p.shape())); });
    (p.dtype() == Dtype::f32 ? f32 : f64).push_back(&p);
  }
  return 1 + sum_gradients<float>(f32, group, bucket_bytes) +
         sum_gradients<double>(f64, group, bucket_bytes);
}

// ---- GradientReducer ------------------------------------------------------------------------

struct GradientReducer::State {
  // A bucket: one float32 parameter of at least a bucket's size, summed in place in its
  // gradient, or several smaller ones packed into `values`.
  struct Bucket {
    std::vector<std::size_t> members;  // indices into params
    bool in_place = false;
    std::vector<float> values;
    std::size_t ready = 0;  // members whose gradient is complete
  };

  State(std::vector<Tensor> p, const ProcessGroup& g)
      : group(g), params(std::move(p)), had_grad(params.size()), ready(params.size()) {}

  const ProcessGroup& group;
  std::vector<Tensor> params;
  std::vector<Bucket> buckets;   // float32 parameters, in reverse order of registration
  std::vector<std::size_t> f64;  // float64 parameters: summed in finish(), one by one
  std::map<const TensorImpl*, std::size_t> index_of;  // a float32 parameter -> its index
  std::vector<std::size_t> bucket_of;                 // a parameter's bucket
  std::vector<double>
      had_grad;             // per parameter: did a gradient arrive here (as its bucket started)?
  std::vector<bool> ready;  // per parameter: complete in this step's backward
  std::size_t next = 0;     // the next bucket to start: they start in order on every rank
  Tape* tape = nullptr;
  bool watching = false;  // between watch() and finish()
#ifdef TAPEGRAD_MPI
  std::vector<MPI_Request> pending;
#endif

  bool sums_pending() const {
#ifdef TAPEGRAD_MPI
    return !pending.empty();
#else
    return false;
#endif
  }

  // Lets started sums advance: Open MPI moves a non-blocking collective along only inside MPI
  // calls.
  void progress() {
#ifdef TAPEGRAD_MPI
    if (pending.empty()) return;
    int done = 0;
    MPI_Testall(static_cast<int>(pending.size()), pending.data(), &done, MPI_STATUSES_IGNORE);
#endif
  }

  void start(std::size_t b) {
    Bucket& k = buckets[b];
    float* data = nullptr;
    std::size_t n = 0;
    for (std::size_t m : k.members) had_grad[m] = params[m].has_grad();
    if (k.in_place) {
      Tensor& p = params[k.members[0]];
      if (!p.has_grad())
        p.impl()->grad =
            Array<float>(xt::zeros<float>(p.shape()));  // reset in finish() if no rank had one
      auto& g = std::get<Array<float>>(*p.impl()->grad);
      data = g.data();
      n = g.size();
    } else {
      k.values.clear();
      for (std::size_t m : k.members) {
        const Tensor& p = params[m];
        if (p.has_grad()) {
          const auto& g = p.grad_data<float>();
          k.values.insert(k.values.end(), g.begin(), g.end());
        } else {
          k.values.resize(k.values.size() + p.numel(), 0.0f);
        }
      }
      data = k.values.data();
      n = k.values.size();
    }
#ifdef TAPEGRAD_MPI
    if (group.uses_mpi_) {
      MPI_Request request;
      check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_FLOAT, MPI_SUM,
                               MPI_COMM_WORLD, &request),
                "allreduce");
      pending.push_back(request);
      progress();
    }
#else
    (void)data;
    (void)n;
#endif
  }

  void mark_ready(std::size_t i) {
    if (ready[i]) return;
    ready[i] = true;
    ++buckets[bucket_of[i]].ready;
  }

  void start_complete_buckets() {
    while (next < buckets.size() && buckets[next].ready == buckets[next].members.size())
      start(next++);
  }

  // Before any gradient of a backward is computed.  A second backward in a step could add into
  // a gradient whose sum has started: refused here, before it does.  Parameters that no op on
  // the tape takes are ready now, or they would hold back every bucket after theirs.
  void backward_begins() {
    if (next > 0)
      throw std::logic_error(
          "GradientReducer: a second backward in one step would add to gradients already being "
          "summed across ranks; sum the losses and call backward once between watch() and "
          "finish()");
    std::set<const TensorImpl*> on_tape;
    for (const auto& node : tape->data().nodes)
      for (const Edge& e : node.inputs)
        if (e.leaf) on_tape.insert(e.leaf.get());
    for (const auto& [leaf, i] : index_of)
      if (!on_tape.count(leaf)) mark_ready(i);
    start_complete_buckets();
  }

  void leaf_done(const TensorImpl& leaf) {
    const auto it = index_of.find(&leaf);
    if (it == index_of.end()) return;  // not one of ours (an input that requires grad, say)
    mark_ready(it->second);
    start_complete_buckets();
    progress();
  }

  void unhook() {
    if (tape) tape->on_backward({}, {});
    tape = nullptr;
  }

  void reset() {
    next = 0;
    std::fill(ready.begin(), ready.end(), false);
    for (auto& b : buckets) b.ready = 0;
  }
};

GradientReducer::GradientReducer(std::vector<Tensor> params, const ProcessGroup& group,
                                 std::size_t bucket_bytes)
    : state_(std::make_unique<State>(std::move(params), group)) {
  State& s = *state_;
  const std::size_t bucket_size = std::max<std::size_t>(bucket_bytes / sizeof(float), 1);
  s.bucket_of.assign(s.params.size(), SIZE_MAX);
  std::set<const TensorImpl*> seen;
  std::size_t packed = 0;  // floats in the last packed bucket
  for (std::size_t i = s.params.size(); i-- > 0;) {
    const Tensor& p = s.params[i];
    if (!seen.insert(p.impl().get()).second)
      throw std::invalid_argument("GradientReducer: parameter " + std::to_string(i) + " ('" +
                                  p.name() +
                                  "') is listed twice; its gradient would be summed twice");
    if (p.dtype() == Dtype::f64) {
      s.f64.push_back(i);
      continue;
    }
    if (p.numel() >= bucket_size) {
      s.buckets.emplace_back().in_place = true;
    } else if (s.buckets.empty() || s.buckets.back().in_place || packed + p.numel() > bucket_size) {
      s.buckets.emplace_back();
      packed = 0;
    }
    s.buckets.back().members.push_back(i);
    packed += p.numel();
    s.bucket_of[i] = s.buckets.size() - 1;
    s.index_of[p.impl().get()] = i;
  }
}

GradientReducer::~GradientReducer() {
  state_->unhook();
  if (state_->sums_pending()) {  // MPI still writes into buffers about to be freed: stop everything
    std::fprintf(stderr,
                 "GradientReducer: destroyed with sums in flight (watch() without finish())\n");
    state_->group.abort(1);
  }
}

std::size_t GradientReducer::buckets() const { return state_->buckets.size(); }

void GradientReducer::watch(Tape& tape) {
  State& s = *state_;
  if (s.watching) throw std::logic_error("GradientReducer: watch() again before finish()");
  s.watching = true;
  s.unhook();
  s.reset();
  s.tape = &tape;
  tape.on_backward([&s] { s.backward_begins(); },
                   [&s](const TensorImpl& leaf) { s.leaf_done(leaf); });
}

std::size_t GradientReducer::finish(std::span<double> extra) {
  State& s = *state_;
  s.unhook();
  s.watching = false;
  const std::size_t early = s.next;
  for (; s.next < s.buckets.size(); ++s.next) s.start(s.next);
#ifdef TAPEGRAD_MPI
  if (!s.pending.empty())
    check_mpi(
        MPI_Waitall(static_cast<int>(s.pending.size()), s.pending.data(), MPI_STATUSES_IGNORE),
        "allreduce");
  s.pending.clear();
#endif
  // Which parameters had a gradient on some rank, and `extra`, in one small exchange.
  for (std::size_t i : s.f64) s.had_grad[i] = s.params[i].has_grad();
  std::vector<double> small(s.had_grad);
  small.insert(small.end(), extra.begin(), extra.end());
  s.group.allreduce_sum(std::span<double>(small));
  std::copy(small.begin() + s.params.size(), small.end(), extra.begin());
  for (const auto& b : s.buckets) {
    std::size_t at = 0;
    for (std::size_t m : b.members) {
      Tensor& p = s.params[m];
      const std::size_t n = p.numel();
      if (small[m] == 0) {
        p.zero_grad();  // no rank had one: none, as one process would have it
      } else if (!b.in_place) {
        if (!p.has_grad()) p.impl()->grad = Array<float>(xt::zeros<float>(p.shape()));
        auto& g = std::get<Array<float>>(*p.impl()->grad);
        std::copy_n(b.values.data() + at, n, g.data());
      }
      at += n;
    }
  }
  for (std::size_t i : s.f64) {
    if (small[i] == 0) continue;
    Tensor& p = s.params[i];
    if (!p.has_grad()) p.impl()->grad = Array<double>(xt::zeros<double>(p.shape()));
    auto& g = std::get<Array<double>>(*p.impl()->grad);
    s.group.allreduce_sum(std::span<double>(g.data(), g.size()));
  }
  s.reset();  // a finish() without watch() sums this step's gradients again, not last step's
  return early;
}

void broadcast_parameters(const std::vector<Tensor>& params, const ProcessGroup& group) {
  if (group.size() == 1) return;
  for (const Tensor& p : params)
    dispatch(p.dtype(), [&]<class T>() {
      auto& values = const_cast<Tensor&>(p).data<T>();
      group.broadcast(std::span<T>(values.data(), values.size()));
    });
}

namespace {

// FNV-1a, mixing one unit (a byte, a word) at a time: the checksums ranks compare.
struct Fnv1a {
  std::uint64_t h = 14695981039346656037ull;
  void mix(std::uint64_t unit) { h = (h ^ unit) * 1099511628211ull; }
};

}  // namespace

std::uint64_t parameter_checksum(const std::vector<Tensor>& params) {
  Fnv1a sum;  // over the shapes, and the values a 32-bit word at a time
  for (const Tensor& p : params) {
    for (std::size_t n : p.shape()) sum.mix(n);
    dispatch(p.dtype(), [&]<class T>() {
      const auto& values = p.data<T>();
      const auto* words = reinterpret_cast<const std::uint32_t*>(values.data());
      for (std::size_t i = 0; i < values.size() * sizeof(T) / 4; ++i) sum.mix(words[i]);
    });
  }
  return sum.h;
}

namespace {

// The ranks (after 0) whose checksum differs from rank 0's, as "1, 3"; empty when all agree.
std::string ranks_differing(const ProcessGroup& group, std::uint64_t checksum) {
  const auto sums = group.allgather(checksum);
  std::string differ;
  for (std::size_t r = 1; r < sums.size(); ++r)
    if (sums[r] != sums[0]) {
      if (!differ.empty()) differ += ", ";
      differ += std::to_string(r);
    }
  return differ;
}

}  // namespace

void check_ranks_agree(const std::string& state, const ProcessGroup& group,
                       const std::string& what) {
  if (group.size() == 1) return;
  Fnv1a sum;  // over the text, a byte at a time
  for (unsigned char c : state) sum.mix(c);
  const std::string differ = ranks_differing(group, sum.h);
  if (!differ.empty())
    throw std::runtime_error(
        "data-parallel training: rank(s) " + differ + " start from another " + what +
        " than rank 0 (the same command, data and checkpoint on every machine?)");
}

void check_parameters_agree(const std::vector<Tensor>& params, const ProcessGroup& group,
                            std::size_t step) {
  if (group.size() == 1) return;
  const std::string differ = ranks_differing(group, parameter_checksum(params));
  if (!differ.empty())
    throw std::runtime_error("data-parallel training: after step " + std::to_string(step) +
                             " the parameters of rank(s) " + differ +
                             " differ from rank 0's (checksums compared across all " +
                             std::to_string(group.size()) +
                             " ranks); the ranks no longer train one model");
}

}  // namespace tg::nn

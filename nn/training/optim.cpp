#include "optim.hpp"

#include <cmath>

#include <xtensor/xmath.hpp>

#include "../../autograd/runtime/fast_math.hpp"
#include "../../autograd/runtime/kernels.hpp"

namespace tg::nn {

Optimizer::Optimizer(NamedTensors params, double lr, std::vector<std::string> slots)
    : params_(std::move(params)), lr_(lr), slot_names_(std::move(slots)) {
  set_lr(lr);
  for (const auto& [name, p] : params_)
    if (!p.defined() || !p.requires_grad() || !p.is_leaf())
      fail("Optimizer", "parameter '" + name + "' must be a defined leaf that requires grad");
  for (const std::string& s : slot_names_)
    for (const auto& [name, p] : params_) slots_[s].push_back(zeros_like(p).impl()->value);
}

void Optimizer::set_lr(double lr) {
  if (!(lr >= 0) || !std::isfinite(lr))
    fail("Optimizer", "the learning rate must be finite and >= 0, got " + std::to_string(lr));
  lr_ = lr;
}

void Optimizer::step() {
  ++steps_;
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (params_[i].second.has_grad()) update(i, steps_);
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

AnyArray& Optimizer::slot(const std::string& name, std::size_t i) { return slots_.at(name)[i]; }

StateDict Optimizer::state() const {
  StateDict out;
  for (const auto& [s, buffers] : slots_)
    for (std::size_t i = 0; i < params_.size(); ++i) out[s + "." + params_[i].first] = buffers[i];
  out["steps"] = Array<double>(static_cast<double>(steps_));
  return out;
}

const AnyArray& state_entry(const char* who, const StateDict& state, const std::string& key,
                            const Tensor& like) {
  const auto it = state.find(key);
  if (it == state.end()) fail(who, "missing '" + key + "'");
  const Tensor found = std::visit([](const auto& a) { return Tensor(a); }, it->second);
  if (found.shape() != like.shape() || found.dtype() != like.dtype())
    fail(who, "'" + key + "' is " + shape_str(found.shape()) + " " + dtype_name(found.dtype()) +
                  ", expected " + shape_str(like.shape()) + " " + dtype_name(like.dtype()));
  return it->second;
}

double state_scalar(const char* who, const StateDict& state, const std::string& key) {
  const auto it = state.find(key);
  if (it == state.end()) fail(who, "missing '" + key + "'");
  const auto* v = std::get_if<Array<double>>(&it->second);
  if (v == nullptr || v->size() != 1 || !(*v->begin() >= 0))
    fail(who, "'" + key + "' must be one float64 value >= 0");
  return *v->begin();
}

void Optimizer::load_state(const StateDict& state) {
  const std::string who = std::string("Optimizer(") + name() + ")::load_state";
  std::size_t expected = 1;
  for (const auto& [s, buffers] : slots_)
    for (std::size_t i = 0; i < params_.size(); ++i, ++expected)
      state_entry(who.c_str(), state, s + "." + params_[i].first, params_[i].second);
  const double steps = state_scalar(who.c_str(), state, "steps");
  if (state.size() != expected) {
    for (const auto& [key, value] : state) {
      bool known = key == "steps";
      for (const auto& [sn, buffers] : slots_)
        for (const auto& [pn, p] : params_) known = known || key == sn + "." + pn;
      if (!known) fail(who.c_str(), "unexpected '" + key + "'");
    }
  }
  // Everything checked: now assign.
  for (auto& [sn, buffers] : slots_)
    for (std::size_t i = 0; i < params_.size(); ++i)
      buffers[i] = state.at(sn + "." + params_[i].first);
  steps_ = static_cast<std::size_t>(steps);
}

// ---- SGD ---------------------------------------------------------------------------------

Sgd::Sgd(NamedTensors params, const SgdOptions& options)
    : Optimizer(
          std::move(params), options.lr,
          options.momentum > 0 ? std::vector<std::string>{"momentum"} : std::vector<std::string>{}),
      options_(options) {
  if (!(options.momentum >= 0 && options.momentum < 1))
    fail("Sgd", "momentum must be in [0, 1), got " + std::to_string(options.momentum));
  if (!(options.weight_decay >= 0))
    fail("Sgd", "weight_decay must be >= 0, got " + std::to_string(options.weight_decay));
}

void Sgd::update(std::size_t i, std::size_t) {
  Tensor& p = params_[i].second;
  dispatch(p.dtype(), [&]<class T>() {
    Array<T>& w = p.data<T>();
    Array<T> g = p.grad_data<T>() + static_cast<T>(options_.weight_decay) * w;
    if (options_.momentum > 0) {
      Array<T>& v = std::get<Array<T>>(slot("momentum", i));
      v = static_cast<T>(options_.momentum) * v + g;
      w -= static_cast<T>(lr_) * v;
    } else {
      w -= static_cast<T>(lr_) * g;
    }
  });
}

// ---- Adam, AdamW -------------------------------------------------------------------------

Adam::Adam(NamedTensors params, const AdamOptions& options)
    : Adam(std::move(params), options, false) {}

Adam::Adam(NamedTensors params, const AdamOptions& options, bool decoupled)
    : Optimizer(std::move(params), options.lr, {"exp_avg", "exp_avg_sq"}),
      options_(options),
      decoupled_(decoupled) {
  const char* who = decoupled ? "AdamW" : "Adam";
  if (!(options.beta1 >= 0 && options.beta1 < 1) || !(options.beta2 >= 0 && options.beta2 < 1))
    fail(who, "beta1 and beta2 must be in [0, 1), got " + std::to_string(options.beta1) + ", " +
                  std::to_string(options.beta2));
  if (!(options.eps > 0)) fail(who, "eps must be > 0");
  if (!(options.weight_decay >= 0)) fail(who, "weight_decay must be >= 0");
}

namespace {

struct AdamStep {
  double lr, weight_decay, eps, beta1, beta2, c1, c2;  // c1, c2: bias corrections 1 - beta^t
  bool decoupled;
};

// One step over elements [lo, hi) of a parameter w, its gradient and its two averages m and v.
// Inlined into each version below, to be compiled for its instruction set.  This file is
// compiled with -ffp-contract=off (CMakeLists.txt): no multiply-add is fused, in the vector
// versions either, so every version rounds as this plain loop does, on any CPU.
template <class T>
[[gnu::always_inline]] inline void adam_range(T* __restrict w, const T* __restrict grad,
                                              T* __restrict m, T* __restrict v, std::size_t lo,
                                              std::size_t hi, const AdamStep& s) {
  const T lr = static_cast<T>(s.lr), wd = static_cast<T>(s.weight_decay),
          eps = static_cast<T>(s.eps);
  const T b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2);
  const T c1 = static_cast<T>(s.c1), c2 = static_cast<T>(s.c2);
  const bool decoupled = s.decoupled;
  for (std::size_t j = lo; j < hi; ++j) {
    T g = grad[j];
    if (decoupled) w[j] -= lr * wd * w[j];  // AdamW: shrink the weights, apart from the gradient
    else g += wd * w[j];                    // Adam: L2 through the gradient
    m[j] = b1 * m[j] + (T(1) - b1) * g;
    v[j] = b2 * v[j] + (T(1) - b2) * g * g;
    w[j] -= lr * (m[j] / c1) / (std::sqrt(v[j] / c2) + eps);
  }
}

// float32 compiled for AVX-512, AVX2 and plain x86-64 (a step over the sentiment model's 3M
// parameters was 8% of its training step).
TAPEGRAD_CPU_CLONES("arch=x86-64-v4", "avx2", "default")
void adam_range_f32(float* w, const float* grad, float* m, float* v, std::size_t lo, std::size_t hi,
                    const AdamStep& s) {
  adam_range(w, grad, m, v, lo, hi, s);
}

}  // namespace

// One fused pass over each parameter: no temporaries.
void Adam::update(std::size_t i, std::size_t t) {
  Tensor& p = params_[i].second;
  const bool decays = options_.decay_vectors || p.dim() >= 2;
  // Bias correction: m and v start at 0, so early averages are too small by 1 - b^t.
  const AdamStep step{.lr = lr_,
                      .weight_decay = decays ? options_.weight_decay : 0.0,
                      .eps = options_.eps,
                      .beta1 = options_.beta1,
                      .beta2 = options_.beta2,
                      .c1 = 1 - std::pow(options_.beta1, static_cast<double>(t)),
                      .c2 = 1 - std::pow(options_.beta2, static_cast<double>(t)),
                      .decoupled = decoupled_};
  dispatch(p.dtype(), [&]<class T>() {
    T* w = p.data<T>().data();
    const T* grad = p.grad_data<T>().data();
    T* m = std::get<Array<T>>(slot("exp_avg", i)).data();
    T* v = std::get<Array<T>>(slot("exp_avg_sq", i)).data();
    parallel_range(p.numel(), [&](std::size_t lo, std::size_t hi) {
      if constexpr (std::is_same_v<T, float>) adam_range_f32(w, grad, m, v, lo, hi, step);
      else adam_range(w, grad, m, v, lo, hi, step);
    });
  });
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  if (!(max_norm > 0))
    fail("clip_grad_norm", "max_norm must be > 0, got " + std::to_string(max_norm));
  double total = 0;
  for (const Tensor& p : params) {
    if (!p.has_grad()) continue;
    dispatch(p.dtype(), [&]<class T>() {
      for (T g : p.grad_data<T>()) total += static_cast<double>(g) * g;
    });
  }
  const double norm = std::sqrt(total);
  if (norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const Tensor& p : params) {
      if (!p.has_grad()) continue;
      std::visit(
          [&](auto& g) { g *= static_cast<typename std::decay_t<decltype(g)>::value_type>(scale); },
          *p.impl()->grad);
    }
  }
  return norm;
}

}  // namespace tg::nn

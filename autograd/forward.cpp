#include "forward.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "ops.hpp"

namespace tg {
namespace {

thread_local std::vector<int> t_levels;    // the running jvps, outermost first
thread_local int t_hidden_from = INT_MAX;  // levels >= this are hidden (a rule is running)
thread_local int t_next_level = 0;

bool visible(int level) {
  return level < t_hidden_from &&
         std::find(t_levels.begin(), t_levels.end(), level) != t_levels.end();
}

Tensor tangent_at(const Tensor& x, int level) {
  for (const auto& [l, t] : x.impl()->tangents)
    if (l == level) return Tensor::from_impl(t);
  return Tensor();
}

// Opens a level for the life of the object.
class Level {
 public:
  Level() : level_(++t_next_level) {
    t_levels.push_back(level_);
    ++detail::jvp_levels;
  }
  ~Level() {
    t_levels.pop_back();
    --detail::jvp_levels;
  }
  Level(const Level&) = delete;
  Level& operator=(const Level&) = delete;
  int id() const { return level_; }

 private:
  int level_;
};

}  // namespace

namespace detail {

bool has_tangent(const Tensor& x) {
  if (!x.defined()) return false;
  for (const auto& entry : x.impl()->tangents)
    if (visible(entry.first)) return true;
  return false;
}

void compute_tangents(const char* op, Tensor& out, const Tensor* const* inputs, std::size_t n,
                      const JvpFn& jvp, bool once_differentiable) {
  const std::vector<int> levels = t_levels;
  for (int level : levels) {
    if (level >= t_hidden_from) break;
    std::vector<Tensor> t(n);
    std::vector<bool> given(n, false);
    bool any = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (!inputs[i]->defined()) continue;
      t[i] = tangent_at(*inputs[i], level);
      given[i] = t[i].defined();
      any = any || given[i];
    }
    if (!any) continue;
    if (!jvp)
      fail(op, once_differentiable
                   ? "this op's rule works on arrays, so it has no forward mode (write its rules "
                     "with tensor ops, see docs/ops.md)"
                   : "this op has no forward-mode (jvp) rule");
    for (std::size_t i = 0; i < n; ++i)
      if (!given[i] && inputs[i]->defined()) t[i] = zeros_like(*inputs[i]);
    Tensor dy;
    {
      detail::ScopedSetting<int> hide(t_hidden_from, level);
      dy = jvp(Tangents(t, given));
    }
    if (!dy.defined() || dy.shape() != out.shape() || dy.dtype() != out.dtype())
      throw std::logic_error(std::string(op) + ": the jvp rule gave a tangent of " +
                             (dy.defined() ? shape_str(dy.shape()) + " " + dtype_name(dy.dtype())
                                           : std::string("nothing")) +
                             " for an output of " + shape_str(out.shape()) + " " +
                             dtype_name(out.dtype()));
    out.impl()->tangents.emplace_back(level, dy.impl());
  }
}

}  // namespace detail

JvpResult jvp(const MultiFunction& f, const std::vector<Tensor>& primals,
              const std::vector<Tensor>& tangents) {
  if (tangents.size() != primals.size())
    fail("jvp", std::to_string(primals.size()) + " primals but " + std::to_string(tangents.size()) +
                    " tangents; give one tangent per primal");
  for (std::size_t i = 0; i < primals.size(); ++i) {
    check_defined("jvp", primals[i]);
    const Tensor& t = tangents[i];
    if (t.defined() && (t.shape() != primals[i].shape() || t.dtype() != primals[i].dtype()))
      fail("jvp", "tangent " + std::to_string(i) + " is " + shape_str(t.shape()) + " " +
                      dtype_name(t.dtype()) + ", its primal " + shape_str(primals[i].shape()) +
                      " " + dtype_name(primals[i].dtype()) + "; they must match");
  }
  JvpResult r;
  {
    Level level;
    std::vector<Tensor> duals;
    for (std::size_t i = 0; i < primals.size(); ++i) {
      Tensor d = clone(primals[i]);  // recorded: gradients still reach the primal
      if (tangents[i].defined()) d.impl()->tangents.emplace_back(level.id(), tangents[i].impl());
      duals.push_back(d);
    }
    r.outputs = f(duals);
    for (Tensor& y : r.outputs) {
      check_defined("jvp", y);
      Tensor t = tangent_at(y, level.id());
      r.tangents.push_back(t.defined() ? t : zeros_like(y));
    }
    for (Tensor& y : r.outputs) {  // the level ends: its tangents go
      auto& ts = y.impl()->tangents;
      ts.erase(std::remove_if(ts.begin(), ts.end(),
                              [&](const auto& e) { return e.first == level.id(); }),
               ts.end());
    }
  }
  return r;
}

std::pair<Tensor, Tensor> jvp(const Function& f, const std::vector<Tensor>& primals,
                              const std::vector<Tensor>& tangents) {
  JvpResult r = jvp([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in)}; },
                    primals, tangents);
  return {r.outputs[0], r.tangents[0]};
}

}  // namespace tg

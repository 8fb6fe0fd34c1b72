// Tensor: an N-d array of float32 (default) or float64 values, with an optional gradient and a
// link to the op on the tape that produced it.
//
// A Tensor is a cheap handle (a shared pointer): copies share the same values.  Values of a
// tensor made by an op never change afterwards; only leaves (parameters) are updated in place,
// by optimizers, outside recording.  Nothing in tapegrad aliases another tensor's memory:
// reshape, slice and detach copy, so reading one value never depends on another tensor.
#pragma once

#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

#include "shape.hpp"

namespace tg {

template <class T>
using Array = xt::xarray<T>;  // row-major, any rank
using AnyArray = std::variant<Array<float>, Array<double>>;
using Ids = xt::xarray<std::int64_t>;  // token ids, class targets
using Mask = xt::xarray<bool>;         // true = keep / select, see each op

namespace detail {
struct TapeData;
}

// What a Tensor handle points to.
struct TensorImpl {
  AnyArray value;
  std::optional<AnyArray> grad;  // leaves: accumulated by backward until zero_grad()
  bool requires_grad = false;
  std::uint64_t tape_id = 0;  // the recording that made it (0 for a leaf)
  std::int32_t node = -1;     // index of the op that made it on that tape (-1 for a leaf)
  std::weak_ptr<detail::TapeData> tape;  // lets Tensor::backward() find its tape
  std::string name;                      // optional, shown in tape listings
  // Forward mode (forward.hpp): the tangent of this value for each tg::jvp that is running,
  // keyed by that jvp's level.  Empty outside jvp.
  std::vector<std::pair<int, std::shared_ptr<TensorImpl>>> tangents;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (no value); defined() is false

  // The values are moved straight into the new TensorImpl, once: a TensorImpl made empty first
  // would hold xtensor's default array, which allocates one element only to free it again.
  template <class T>
  explicit Tensor(Array<T>&& value, bool requires_grad = false)
      : impl_(std::make_shared<TensorImpl>(std::move(value), std::nullopt, requires_grad)) {}
  template <class T>
  explicit Tensor(const Array<T>& value, bool requires_grad = false)
      : Tensor(Array<T>(value), requires_grad) {}

  bool defined() const { return impl_ != nullptr; }
  Dtype dtype() const { return impl_->value.index() == 0 ? Dtype::f32 : Dtype::f64; }
  const Shape& shape() const;
  std::size_t dim() const { return shape().size(); }
  std::size_t size(std::int64_t axis) const;  // negative axes count from the end
  std::size_t numel() const;

  // The values, for element type T (throws if the tensor holds the other type).
  template <class T>
  const Array<T>& data() const;
  // Mutable values: for initialisation and optimizer updates of leaves only.
  template <class T>
  Array<T>& data();
  double item() const;  // the single value of a one-element tensor

  // Gradients.  A leaf that requires grad accumulates into grad() on every backward.
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Tensor& set_requires_grad(bool on = true);  // leaves only
  bool is_leaf() const { return impl_->node < 0; }
  bool has_grad() const { return impl_->grad.has_value(); }
  Tensor grad() const;  // a copy of the gradient as a tensor; zeros if none arrived yet
  template <class T>
  const Array<T>& grad_data() const;
  void zero_grad() { impl_->grad.reset(); }

  // Runs backward on the tape that recorded this tensor.  A scalar (one-element) output gets
  // d out / d out = 1; any other output needs g_out of its own shape.  (Defined in tape.cpp,
  // beside the replay it starts.)
  void backward() const;
  void backward(const Tensor& g_out) const;

  // A copy of the values as a new leaf, not connected to any tape.
  Tensor detach() const;
  // A copy converted to `dtype`, as a new leaf with the same requires_grad (not recorded).
  Tensor to(Dtype dtype) const;

  const std::string& name() const { return impl_->name; }
  Tensor& set_name(std::string name);

  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  static Tensor from_impl(std::shared_ptr<TensorImpl> impl) {
    Tensor t;
    t.impl_ = std::move(impl);
    return t;
  }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Factories.  Shapes are given as {d0, d1, ...}; the dtype defaults to float32.
Tensor zeros(const Shape& shape, Dtype dtype = Dtype::f32);
Tensor ones(const Shape& shape, Dtype dtype = Dtype::f32);
Tensor full(const Shape& shape, double value, Dtype dtype = Dtype::f32);
Tensor scalar(double value, Dtype dtype = Dtype::f32);
// Values in row-major order; their count must match the shape.
Tensor from_vector(const std::vector<double>& values, const Shape& shape, Dtype dtype = Dtype::f32);
Tensor arange(std::size_t n, Dtype dtype = Dtype::f32);  // 0, 1, ..., n-1
Tensor zeros_like(const Tensor& t);

// Throws "op: the input is an undefined tensor" for a default-constructed tensor.
void check_defined(const char* op, const Tensor& x);

// ---- inline definitions ------------------------------------------------------------------

template <class T>
const Array<T>& Tensor::data() const {
  if (const auto* a = std::get_if<Array<T>>(&impl_->value)) return *a;
  fail("Tensor::data", std::string("asked for ") + dtype_name(dtype_of<T>()) + " values of a " +
                           dtype_name(dtype()) + " tensor");
}

template <class T>
Array<T>& Tensor::data() {
  if (auto* a = std::get_if<Array<T>>(&impl_->value)) return *a;
  fail("Tensor::data", std::string("asked for ") + dtype_name(dtype_of<T>()) + " values of a " +
                           dtype_name(dtype()) + " tensor");
}

template <class T>
const Array<T>& Tensor::grad_data() const {
  if (!impl_->grad) fail("Tensor::grad_data", "no gradient has arrived (call backward first)");
  if (const auto* a = std::get_if<Array<T>>(&*impl_->grad)) return *a;
  fail("Tensor::grad_data", std::string("asked for ") + dtype_name(dtype_of<T>()) +
                                " gradient of a " + dtype_name(dtype()) + " tensor");
}

// Calls f.template operator()<T>() with T the element type of `dtype`: the way ops write one
// kernel for float and double.  Both instantiations must return the same type.
template <class F>
decltype(auto) dispatch(Dtype dtype, F&& f) {
  if (dtype == Dtype::f32) return f.template operator()<float>();
  return f.template operator()<double>();
}

}  // namespace tg

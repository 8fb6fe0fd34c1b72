#include "tensor.hpp"

#include <ostream>
#include <xtensor/xio.hpp>

namespace tg {

const Shape& Tensor::shape() const {
  if (!impl_) fail("Tensor::shape", "the tensor is undefined (default-constructed)");
  if (const auto* a = std::get_if<Array<float>>(&impl_->value)) return a->shape();
  return std::get<Array<double>>(impl_->value).shape();
}

std::size_t Tensor::size(std::int64_t axis) const {
  return shape()[normalize_axis("Tensor::size", axis, dim())];
}

std::size_t Tensor::numel() const { return shape_numel(shape()); }

double Tensor::item() const {
  if (numel() != 1)
    fail("Tensor::item",
         "needs a tensor with one element, this one has shape " + shape_str(shape()));
  return std::visit([](const auto& a) { return static_cast<double>(*a.begin()); }, impl_->value);
}

Tensor& Tensor::set_requires_grad(bool on) {
  if (!is_leaf())
    fail("Tensor::set_requires_grad",
         "only leaves can change requires_grad; this tensor was made by an op on a tape "
         "(use detach() to get a leaf)");
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  if (!impl_->grad) return zeros(shape(), dtype());
  return std::visit([](const auto& g) { return Tensor(g); }, *impl_->grad);
}

Tensor Tensor::detach() const {
  return std::visit([](const auto& v) { return Tensor(v); }, impl_->value);
}

Tensor Tensor::to(Dtype target) const {
  Tensor out = dispatch(target, [&]<class T>() {
    return std::visit([](const auto& v) { return Tensor(Array<T>(xt::cast<T>(v))); }, impl_->value);
  });
  out.impl_->requires_grad = requires_grad();
  out.impl_->name = impl_->name;
  return out;
}

Tensor& Tensor::set_name(std::string name) {
  impl_->name = std::move(name);
  return *this;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  os << "tensor(" << shape_str(t.shape()) << ", " << dtype_name(t.dtype());
  if (t.requires_grad()) os << ", requires_grad";
  os << ")\n";
  std::visit([&](const auto& v) { os << v; }, t.impl()->value);
  return os;
}

Tensor full(const Shape& shape, double value, Dtype dtype) {
  return dispatch(dtype, [&]<class T>() {
    Array<T> a = Array<T>::from_shape(shape);
    a.fill(static_cast<T>(value));
    return Tensor(std::move(a));
  });
}

Tensor zeros(const Shape& shape, Dtype dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, Dtype dtype) { return full(shape, 1.0, dtype); }
Tensor scalar(double value, Dtype dtype) { return full(Shape{}, value, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }

void check_defined(const char* op, const Tensor& x) {
  if (!x.defined()) fail(op, "the input is an undefined tensor");
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, Dtype dtype) {
  if (values.size() != shape_numel(shape))
    fail("from_vector", std::to_string(values.size()) + " values do not fill shape " +
                            shape_str(shape) + " (" + std::to_string(shape_numel(shape)) +
                            " elements)");
  return dispatch(dtype, [&]<class T>() {
    Array<T> a = Array<T>::from_shape(shape);
    std::copy(values.begin(), values.end(), a.begin());
    return Tensor(std::move(a));
  });
}

Tensor arange(std::size_t n, Dtype dtype) {
  return dispatch(dtype, [&]<class T>() {
    Array<T> a = Array<T>::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) a(i) = static_cast<T>(i);
    return Tensor(std::move(a));
  });
}

}  // namespace tg

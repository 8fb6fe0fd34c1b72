#include "shape.hpp"

#include <ostream>

namespace tg {

const char* dtype_name(Dtype dtype) { return dtype == Dtype::f32 ? "float32" : "float64"; }

std::size_t dtype_size(Dtype dtype) { return dtype == Dtype::f32 ? 4 : 8; }

std::ostream& operator<<(std::ostream& os, Dtype dtype) { return os << dtype_name(dtype); }

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

std::size_t shape_numel(const Shape& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

std::size_t normalize_axis(const char* op, std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r)
    fail(op, "axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
                 std::to_string(rank) + " (valid: " + std::to_string(-r) + " to " +
                 std::to_string(r - 1) + ")");
  return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

void fail(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}

}  // namespace tg

// Shapes, dtypes and the error helpers every op uses.
//
// Shape legend (used in comments on every op and forward):
//   B batch, T time (target), S source time, C channels, H heads, D head dim, V vocabulary,
//   N rows (any flattened leading dims), "..." any number of leading dims.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <xtensor/xstorage.hpp>

namespace tg {

// The shape type of xt::xarray: a small vector that holds up to 4 dims inline (no allocation).
using Shape = xt::svector<std::size_t, 4>;

enum class Dtype { f32, f64 };

template <class T>
constexpr Dtype dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "tapegrad tensors hold float or double");
  return std::is_same_v<T, float> ? Dtype::f32 : Dtype::f64;
}

const char* dtype_name(Dtype dtype);  // "float32" / "float64"
std::size_t dtype_size(Dtype dtype);  // bytes per element
std::ostream& operator<<(std::ostream& os, Dtype dtype);

std::string shape_str(const Shape& shape);  // "(4, 3)", "()" for a scalar
std::size_t shape_numel(const Shape& shape);

// Normalises a possibly negative axis for a tensor of rank `rank`:
// -1 means the last axis.  Throws naming `op` when out of range.
std::size_t normalize_axis(const char* op, std::int64_t axis, std::size_t rank);

// All errors from bad arguments (shapes, axes, ids, dtypes) are std::invalid_argument whose
// message starts with the op's name: "matmul: inner dimensions differ: a is (4, 3), b is (5, 2)".
[[noreturn]] void fail(const char* op, const std::string& what);

}  // namespace tg

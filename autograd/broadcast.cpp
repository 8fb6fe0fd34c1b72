// The broadcasting rule and the dtype check that every binary op runs first (broadcast.hpp).
#include "broadcast.hpp"

#include <algorithm>
#include <string>

namespace tg {

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::size_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(op, "shapes do not broadcast: a is " + shape_str(a) + ", b is " + shape_str(b) +
                   " (dim " + std::to_string(i) + ": " + std::to_string(da) + " vs " +
                   std::to_string(db) + ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) fail(op, "an input is an undefined tensor");
  if (a.dtype() != b.dtype()) {
    // Named tensors (parameters are named after their module) say where the mismatch comes from.
    const auto named = [](const Tensor& t) {
      return t.name().empty() ? std::string() : " '" + t.name() + "'";
    };
    fail(op, std::string("dtypes differ: a") + named(a) + " is " + dtype_name(a.dtype()) + ", b" +
                 named(b) + " is " + dtype_name(b.dtype()) +
                 " (convert one with .to(), or a module with module.to())");
  }
}

}  // namespace tg

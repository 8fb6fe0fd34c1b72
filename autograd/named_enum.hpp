// Enums with names, for command lines, model files and messages: one table beside the enum,
// found by argument-dependent lookup, serves every conversion.
//
//   enum class Pooling { mean, max, mean_max };
//   constexpr auto enum_table(Pooling) {
//     return named_values<Pooling>("pooling", {{Pooling::mean, "mean"}, {Pooling::max, "max"},
//                                              {Pooling::mean_max, "mean-max"}});
//   }
//
//   enum_name(Pooling::max)               -> "max"
//   enum_from_name<Pooling>("mean-max")   -> Pooling::mean_max
//   enum_from_name<Pooling>("sum")        throws "pooling: unknown pooling 'sum' (known: mean, max,
//   mean-max)" enum_choices<Pooling>()               -> "mean, max, mean-max"
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "shape.hpp"

namespace tg {

template <class E, std::size_t N>
struct EnumTable {
  const char* what;  // what the values are ("pooling", "position scheme"), for messages
  std::array<std::pair<E, const char*>, N> values;
};

// The table of an enum E, its N (value, name) pairs in the order they are listed to users.
template <class E, std::size_t N>
constexpr EnumTable<E, N> named_values(const char* what,
                                       const std::pair<E, const char*> (&values)[N]) {
  EnumTable<E, N> table{what, {}};
  for (std::size_t i = 0; i < N; ++i) table.values[i] = values[i];
  return table;
}

// An enum that has a table beside it.
template <class E>
concept NamedEnum = std::is_enum_v<E> && requires(E e) {
  enum_table(e).values;
};

template <NamedEnum E>
const char* enum_name(E value) {
  for (const auto& [v, name] : enum_table(E{}).values)
    if (v == value) return name;
  fail(enum_table(E{}).what,
       "a value without a name: " + std::to_string(static_cast<long long>(value)));
}

// Every name, as "a, b, c".
template <NamedEnum E>
std::string enum_choices() {
  std::string out;
  for (const auto& [v, name] : enum_table(E{}).values)
    out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

template <NamedEnum E>
E enum_from_name(std::string_view name) {
  const auto table = enum_table(E{});
  for (const auto& [v, n] : table.values)
    if (name == n) return v;
  fail(table.what, "unknown " + std::string(table.what) + " '" + std::string(name) +
                       "' (known: " + enum_choices<E>() + ")");
}

}  // namespace tg

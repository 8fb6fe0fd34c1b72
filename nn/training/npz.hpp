// NumPy .npz files: uncompressed zip archives of .npy arrays, written and read here so that
// checkpoints open in Python with numpy.load, and so that every byte of a file we read is
// checked: sizes, offsets, headers and each member's CRC-32.  A truncated or corrupt file gives
// a std::runtime_error that names the file and the problem, never a crash or wrong numbers.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "../../autograd/tensor.hpp"

namespace tg::nn {

// One array as stored: NumPy dtype ("<f4", "<f8", "<i8", "|u1"), shape, raw little-endian bytes.
struct NpyArray {
  std::string dtype;
  Shape shape;
  std::string bytes;
};

using NpzEntries = std::vector<std::pair<std::string, NpyArray>>;  // names without ".npy"

NpyArray to_npy(const AnyArray& a);             // float32 -> "<f4", float64 -> "<f8"
NpyArray text_to_npy(const std::string& text);  // "|u1" bytes: bytes(a).decode() in Python
NpyArray int_to_npy(std::int64_t value);        // "<i8", shape ()
// The reverse conversions; `what` names the entry in errors ("model.npz: 'fc.weight'").
AnyArray npy_to_array(const NpyArray& a, const std::string& what);
std::string npy_to_text(const NpyArray& a, const std::string& what);
std::int64_t npy_to_int(const NpyArray& a, const std::string& what);

// Writes atomically: to a temporary file beside `path`, flushed to disk, then renamed over
// `path`, so a crash mid-save leaves the previous file intact.
void write_npz(const std::string& path, const NpzEntries& entries);
NpzEntries read_npz(const std::string& path);

}  // namespace tg::nn

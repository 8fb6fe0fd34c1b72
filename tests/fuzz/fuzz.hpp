// What the fuzz targets share.  Each target is a file defining LLVMFuzzerTestOneInput: libFuzzer
// (clang -fsanitize=fuzzer) calls it with generated inputs, and fuzz_replay.cpp calls it with the
// kept corpus as a regression test.  A target accepts the errors tapegrad promises for bad input
// (DataError and the other runtime_error / invalid_argument messages); anything else --
// a crash, a sanitizer report, std::bad_alloc, std::out_of_range -- is a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include "models/data/readers.hpp"

namespace fuzz {

// Writes the input to a file of this process (the readers take paths) and returns its path.
inline std::string write_input(const std::uint8_t* data, std::size_t size, const char* name) {
  const std::string path = "/tmp/tapegrad-fuzz-" + std::to_string(getpid()) + "-" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// Runs f; the promised errors are fine, everything else propagates (and aborts the fuzzer).
template <class F>
void expect_clean_errors(F f) {
  try {
    f();
  } catch (const std::invalid_argument&) {
  } catch (const std::runtime_error&) {
  }
}

// A reader run on the input twice: strictly (it stops at the first bad line) and skipping bad
// lines.  read(bad) reads with `bad` (nullptr: strictly); check(record) throws std::logic_error,
// a finding, for a record that the skipping read should not have kept.
template <class Read, class Check>
void read_strictly_and_skipping(Read read, Check check) {
  expect_clean_errors([&] { read(nullptr); });
  expect_clean_errors([&] {
    tg::models::BadLines bad{.skip = true};
    for (const auto& record : read(&bad)) check(record);
  });
}

}  // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

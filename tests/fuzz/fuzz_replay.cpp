// Runs a fuzz target on every file of the given folders (the kept corpus and the seeds): the
// regression test of what fuzzing found, built with the normal compiler, no libFuzzer needed.
//   fuzz_replay_conllu tests/fuzz/corpus/conllu tests/fuzz/seeds/conllu
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <vector>

#include "fuzz.hpp"

void make_checkpoint_seed(const std::string& path);  // fuzz_checkpoint.cpp only

int main(int argc, char** argv) {
  std::size_t count = 0;
  bool made_seed = false;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
#ifdef FUZZ_CHECKPOINT
    if (arg == "--make-checkpoint-seed" && a + 1 < argc) {
      make_checkpoint_seed(argv[++a]);
      made_seed = true;
      continue;
    }
#endif
    if (!std::filesystem::is_directory(arg)) {
      std::cerr << arg << ": not a folder\n";
      return 2;
    }
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(arg))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                            std::istreambuf_iterator<char>());
      try {
        LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      } catch (const std::exception& e) {
        std::cerr << f.string() << ": " << e.what() << "\n";
        return 1;
      }
      ++count;
    }
  }
  if (made_seed && count == 0) return 0;
  std::cout << "replayed " << count << " inputs without a finding\n";
  return count > 0 ? 0 : 1;  // nothing to replay is a broken test setup
}

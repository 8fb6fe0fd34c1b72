// Fuzz target: the CoNLL-U reader, stopping at the first bad line and skipping bad lines.
#include "fuzz.hpp"
#include "models/data/readers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::write_input(data, size, "input.conllu");
  fuzz::expect_clean_errors([&] { tg::models::read_conllu(path); });
  fuzz::expect_clean_errors([&] {
    tg::models::BadLines bad{.skip = true};
    for (const auto& s : tg::models::read_conllu(path, &bad))
      if (s.words.empty() || s.words.size() != s.tags.size()) throw std::logic_error("read_conllu: a broken sentence");
  });
  return 0;
}

// Fuzz target: the CoNLL-U reader, stopping at the first bad line and skipping bad lines.
#include "fuzz.hpp"
#include "models/data/readers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::write_input(data, size, "input.conllu");
  fuzz::read_strictly_and_skipping(
      [&](tg::models::BadLines* bad) { return tg::models::read_conllu(path, bad); },
      [](const tg::models::TaggedSentence& s) {
        if (s.words.empty() || s.words.size() != s.tags.size())
          throw std::logic_error("read_conllu: a broken sentence");
      });
  return 0;
}

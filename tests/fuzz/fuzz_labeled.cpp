// Fuzz target: the sentiment readers (sentence<TAB>label with a header, or <label> <sentence>).
#include "fuzz.hpp"
#include "models/data/readers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::write_input(data, size, "input.tsv");
  fuzz::read_strictly_and_skipping(
      [&](tg::models::BadLines* bad) { return tg::models::read_labeled(path, bad); },
      [](const tg::models::LabeledSentence& s) {
        if (s.words.empty() || s.label.empty())
          throw std::logic_error("read_labeled: an empty sentence or label");
      });
  return 0;
}

// Fuzz target: aligned translation files and the tokeniser.  The input holds the source side,
// a zero byte, then the target side (no zero byte: the same text on both sides).
#include <algorithm>

#include "fuzz.hpp"
#include "models/data/readers.hpp"
#include "models/data/text.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::uint8_t* zero = std::find(data, data + size, 0);
  const std::size_t split = static_cast<std::size_t>(zero - data);
  const std::string source = fuzz::write_input(data, split, "input.src");
  const std::string target =
      zero == data + size ? source : fuzz::write_input(zero + 1, size - split - 1, "input.tgt");
  for (bool lower : {false, true})
    fuzz::read_strictly_and_skipping(
        [&](tg::models::BadLines* bad) {
          return tg::models::read_parallel(source, target, lower, bad);
        },
        [](const tg::models::SentencePair& p) {
          if (p.source.empty() || p.target.empty())
            throw std::logic_error("read_parallel: an empty side");
        });
  // BLEU and the tokenisers take any bytes (13a) or any UTF-8 (tokenize).
  const std::string text(reinterpret_cast<const char*>(data), size);
  tg::models::tokenize_13a(text);
  tg::models::corpus_bleu({text}, {text}, false);
  fuzz::expect_clean_errors([&] { tg::models::detokenize(tg::models::tokenize(text, true)); });
  return 0;
}

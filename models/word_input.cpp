#include "word_input.hpp"

#include <algorithm>

namespace tg::models {

void WordInput::encode(const std::vector<const Words*>& sentences, Ids& ids, Ids& subs) const {
  std::size_t T = 1;
  for (const Words* s : sentences) T = std::max(T, s->size());
  const std::size_t B = sentences.size(), K = subwords.buckets > 0 ? subwords.max_features : 0;
  ids = xt::zeros<std::int64_t>({B, T});
  subs = xt::zeros<std::int64_t>({B, T, K});
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < sentences[b]->size(); ++t) {
      const std::string& w = (*sentences[b])[t];
      ids(b, t) = words.id(w);
      if (K == 0) continue;
      const auto f = subword_ids(w, subwords);
      for (std::size_t k = 0; k < f.size(); ++k) subs(b, t, k) = f[k];
    }
}

void WordInput::save(nn::ModelFile& file) const {
  file.set_text("vocab/words", words.to_text());
  file.set_options(subwords);
}

WordInput WordInput::load(const nn::ModelFile& file) {
  WordInput in;
  in.words = Vocab::from_text(file.text("vocab/words"), file.path());
  if (file.format() == 1) {  // what files of tapegrad 0.1 meant when they did not say
    if (!file.has_option("subword_buckets")) in.subwords.buckets = 0;
    if (!file.has_option("subword_grouped")) in.subwords.grouped = file.kind() != "tagger";
  }
  file.get_options(in.subwords);
  return in;
}

}  // namespace tg::models

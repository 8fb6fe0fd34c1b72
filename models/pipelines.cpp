#include "pipelines.hpp"

#include <algorithm>

#include "../autograd/ops.hpp"

namespace tg::models {

// ---- tagging --------------------------------------------------------------------------------

Tensor TaggingPipeline::loss(const std::vector<const Words*>& sentences,
                             const std::vector<const Words*>& gold, double word_dropout,
                             double rare_word_dropout) {
  Ids ids, subs;
  input_.encode(sentences, ids, subs);
  Ids tag_ids = xt::full_like(ids, std::int64_t{-100});  // -100: padding, no loss
  for (std::size_t b = 0; b < sentences.size(); ++b)
    for (std::size_t t = 0; t < gold[b]->size(); ++t) tag_ids(b, t) = labels_.id((*gold[b])[t]);
  drop_words(ids, word_dropout, gen_);
  drop_rare_words(ids, input_.words, rare_word_dropout, gen_);
  return net_->mean([&](Tagger& m) { return m.loss(ids, tag_ids, input_.subwords_of(subs)); });
}

std::vector<std::vector<std::int64_t>> TaggingPipeline::predict(
    const std::vector<Words>& sentences, std::vector<Tensor>* weights) const {
  std::vector<std::vector<std::int64_t>> out(sentences.size());
  for_each_prediction(sentences, weights,
                      [&](const std::vector<std::size_t>& batch, const Array<float>& p) {
                        const std::size_t T = p.shape()[1], V = p.shape()[2];  // p: (B, T, tags)
                        for (std::size_t b = 0; b < batch.size(); ++b)
                          for (std::size_t t = 0; t < sentences[batch[b]].size(); ++t) {
                            const float* row = p.data() + (b * T + t) * V;
                            out[batch[b]].push_back(std::max_element(row, row + V) - row);
                          }
                      });
  return out;
}

// ---- sentiment ------------------------------------------------------------------------------

Tensor SentimentPipeline::member_loss(std::size_t k, const std::vector<const Words*>& sentences,
                                      const std::vector<const std::string*>& labels,
                                      double word_dropout) {
  Ids ids, subs;
  input_.encode(sentences, ids, subs);
  Ids y = Ids::from_shape({sentences.size()});
  for (std::size_t i = 0; i < sentences.size(); ++i)
    y(i) = labels[i]->empty() ? -100 : labels_.id(*labels[i]);
  drop_words(ids, word_dropout, gen_);
  return net_->members().at(k)->loss(ids, y, input_.subwords_of(subs));
}

std::vector<std::vector<double>> SentimentPipeline::predict(const std::vector<Words>& sentences,
                                                            std::vector<Tensor>* weights) const {
  std::vector<std::vector<double>> out(sentences.size());
  for_each_prediction(sentences, weights,
                      [&](const std::vector<std::size_t>& batch, const Array<float>& p) {
                        for (std::size_t b = 0; b < batch.size(); ++b)  // p: (B, classes)
                          for (std::size_t c = 0; c < p.shape()[1]; ++c)
                            out[batch[b]].push_back(p(b, c));
                      });
  return out;
}

}  // namespace tg::models

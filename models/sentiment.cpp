#include "sentiment.hpp"

namespace tg::models {

Tensor SentimentPipeline::member_loss(std::size_t k, const std::vector<const Words*>& sentences,
                                      const std::vector<const std::string*>& labels, double word_dropout) {
  Ids ids, subs;
  input_.encode(sentences, ids, subs);
  Ids y = Ids::from_shape({sentences.size()});
  for (std::size_t i = 0; i < sentences.size(); ++i) y(i) = labels[i]->empty() ? -100 : labels_.id(*labels[i]);
  drop_words(ids, word_dropout, gen_);
  return net_->members().at(k)->loss(ids, y, input_.subwords_of(subs));
}

std::vector<std::vector<double>> SentimentPipeline::predict(const std::vector<Words>& sentences,
                                                            std::vector<Tensor>* weights) const {
  std::vector<std::vector<double>> out(sentences.size());
  for_each_prediction(sentences, weights, [&](const std::vector<std::size_t>& batch, const Array<float>& p) {
    for (std::size_t b = 0; b < batch.size(); ++b)  // p: (B, classes)
      for (std::size_t c = 0; c < p.shape()[1]; ++c) out[batch[b]].push_back(p(b, c));
  });
  return out;
}

}  // namespace tg::models

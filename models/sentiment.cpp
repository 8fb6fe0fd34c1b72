#include "sentiment.hpp"

#include "../autograd/ops.hpp"
#include "../autograd/tape.hpp"

namespace tg::models {

SentimentPipeline::SentimentPipeline(WordInput input, Vocab labels, ClassifierOptions options, std::size_t members,
                                     std::uint64_t seed)
    : gen_(seed), input_(std::move(input)), labels_(std::move(labels)) {
  options.vocab = input_.words.size();
  options.classes = labels_.size();
  options.subword_buckets = input_.subwords.buckets;
  options.subword_groups = input_.subwords.buckets > 0 ? input_.subwords.groups() : std::vector<std::size_t>{};
  net_ = std::make_unique<Ensemble<Classifier>>(members, options, gen_);
}

std::unique_ptr<SentimentPipeline> SentimentPipeline::load(const std::string& path) {
  const ModelFile file = ModelFile::read(path, kKind);
  ClassifierOptions options;
  if (file.format() == 1) options.conv_width = 0;  // tapegrad 0.1 wrote no width when there was no convolution
  file.get_options(options);
  options.dropout = 0;
  auto p = std::make_unique<SentimentPipeline>(WordInput::load(file), Vocab::from_text(file.text("vocab/labels"), path),
                                               options, file.option<std::size_t>("members", 1), 0);
  file.load_parameters(*p->net_);
  p->net_->eval();
  return p;
}

void SentimentPipeline::save(const std::string& path, const std::string& command) const {
  ModelFile file(kKind);
  input_.save(file);
  file.set_text("vocab/labels", labels_.to_text());
  file.set_options(net_->front().options());
  file.set_option("members", net_->size());
  file.set_command(command);
  file.save(path, *net_);
}

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
  NoGradGuard no_grad;
  input_.for_each_batch(sentences, [&](const std::vector<std::size_t>& batch, const Ids& ids, const Ids& subs) {
    const Tensor probs = net_->mean([&](Classifier& m) {
      std::vector<Tensor>* w = &m == &net_->front() ? weights : nullptr;
      return softmax(m.forward(ids, input_.subwords_of(subs), w));
    });
    weights = nullptr;  // the first batch only
    const auto& p = probs.data<float>();
    for (std::size_t b = 0; b < batch.size(); ++b)
      for (std::size_t c = 0; c < labels_.size(); ++c) out[batch[b]].push_back(p(b, c));
  });
  return out;
}

}  // namespace tg::models

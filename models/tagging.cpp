#include "tagging.hpp"

#include <algorithm>

#include "../autograd/ops.hpp"
#include "../autograd/tape.hpp"

namespace tg::models {

TaggingPipeline::TaggingPipeline(WordInput input, Vocab tags, TaggerOptions options, std::size_t members,
                                 std::uint64_t seed)
    : gen_(seed), input_(std::move(input)), tags_(std::move(tags)) {
  options.vocab = input_.words.size();
  options.tags = tags_.size();
  options.subword_buckets = input_.subwords.buckets;
  options.subword_groups = input_.subwords.buckets > 0 ? input_.subwords.groups() : std::vector<std::size_t>{};
  net_ = std::make_unique<Ensemble<Tagger>>(members, options, gen_);
}

std::unique_ptr<TaggingPipeline> TaggingPipeline::load(const std::string& path) {
  const ModelFile file = ModelFile::read(path, kKind);
  TaggerOptions options;
  if (file.format() == 1) options.conv_width = 0;  // tapegrad 0.1 wrote no width when there was no convolution
  file.get_options(options);
  options.dropout = 0;
  auto p = std::make_unique<TaggingPipeline>(WordInput::load(file), Vocab::from_text(file.text("vocab/tags"), path),
                                             options, file.option<std::size_t>("members", 1), 0);
  file.load_parameters(*p->net_);
  p->net_->eval();
  return p;
}

void TaggingPipeline::save(const std::string& path, const std::string& command) const {
  ModelFile file(kKind);
  input_.save(file);
  file.set_text("vocab/tags", tags_.to_text());
  file.set_options(net_->front().options());
  file.set_option("members", net_->size());
  file.set_command(command);
  file.save(path, *net_);
}

Tensor TaggingPipeline::loss(const std::vector<const Words*>& sentences, const std::vector<const Words*>& gold,
                             double word_dropout, double rare_word_dropout) {
  Ids ids, subs;
  input_.encode(sentences, ids, subs);
  Ids tag_ids = xt::full_like(ids, std::int64_t{-100});  // -100: padding, no loss
  for (std::size_t b = 0; b < sentences.size(); ++b)
    for (std::size_t t = 0; t < gold[b]->size(); ++t) tag_ids(b, t) = tags_.id((*gold[b])[t]);
  drop_words(ids, word_dropout, gen_);
  drop_rare_words(ids, input_.words, rare_word_dropout, gen_);
  return net_->mean([&](Tagger& m) { return m.loss(ids, tag_ids, input_.subwords_of(subs)); });
}

std::vector<std::vector<std::int64_t>> TaggingPipeline::predict(const std::vector<Words>& sentences,
                                                                std::vector<Tensor>* weights) const {
  std::vector<std::vector<std::int64_t>> out(sentences.size());
  NoGradGuard no_grad;
  input_.for_each_batch(sentences, [&](const std::vector<std::size_t>& batch, const Ids& ids, const Ids& subs) {
    const Tensor probs = net_->mean([&](Tagger& m) {
      std::vector<Tensor>* w = &m == &net_->front() ? weights : nullptr;
      return softmax(m.forward(ids, input_.subwords_of(subs), w));
    });
    weights = nullptr;  // the first batch only
    const auto& p = probs.data<float>();
    const std::size_t T = ids.shape()[1], V = tags_.size();
    for (std::size_t b = 0; b < batch.size(); ++b)
      for (std::size_t t = 0; t < sentences[batch[b]].size(); ++t) {
        const float* row = p.data() + (b * T + t) * V;
        out[batch[b]].push_back(std::max_element(row, row + V) - row);
      }
  });
  return out;
}

}  // namespace tg::models


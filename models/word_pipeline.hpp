// What the tagging and the sentiment pipelines share: the word input (vocabulary, subword
// features), a closed label set (tags, classes), an ensemble of `Model`, and their model file.
// A pipeline derives from WordPipeline<itself, Model> and adds its task's loss and predict:
//
//   class TaggingPipeline : public WordPipeline<TaggingPipeline, Tagger> {
//     static constexpr FileNames kFile{"tagger", "vocab/tags"};
//     static void with_labels(TaggerOptions& o, std::size_t n) { o.tags = n; }
//     ...
//   };
//
// kFile names the model file's kind and where the labels are; with_labels says how many labels
// the model's output layer has.  Model::Options has `encoder` (SentenceEncoderOptions).
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../autograd/tape.hpp"
#include "../nn/training/model_file.hpp"
#include "ensemble.hpp"
#include "word_input.hpp"

namespace tg::models {

struct FileNames {
  const char* kind;    // nn::ModelFile::kind()
  const char* labels;  // the text that holds the label set
};

template <class Derived, class Model>
class WordPipeline {
 public:
  using Options = std::remove_cvref_t<decltype(std::declval<Model>().options())>;

  // A new, untrained ensemble of `members` models; the vocabulary size, the label count and
  // the subword settings in `options` are taken from `input` and `labels`.
  WordPipeline(WordInput input, Vocab labels, Options options, std::size_t members,
               std::uint64_t seed)
      : gen_(seed), input_(std::move(input)), labels_(std::move(labels)) {
    options.encoder.vocab = input_.words.size();
    options.encoder.subword_buckets = input_.subwords.buckets;
    options.encoder.subword_groups =
        input_.subwords.buckets > 0 ? input_.subwords.groups() : std::vector<std::size_t>{};
    Derived::with_labels(options, labels_.size());
    net_ = std::make_unique<Ensemble<Model>>(members, options, gen_);
  }

  // Reads a model file of kind Derived::kFile.kind, ready to predict (evaluation mode, no dropout).
  static std::unique_ptr<Derived> load(const std::string& path) {
    const nn::ModelFile file = nn::ModelFile::read(path, Derived::kFile.kind);
    Options options;
    if (file.format() == 1) {  // what tapegrad 0.1's files meant when they did not say
      options.encoder.conv_width = 0;
      options.encoder.mlp_scale = 512;
    }
    file.get_options(options);
    options.encoder.dropout = 0;
    auto p = std::make_unique<Derived>(WordInput::load(file),
                                       Vocab::from_text(file.text(Derived::kFile.labels), path),
                                       options, file.option<std::size_t>("members", 1), 0);
    file.load_for_inference(p->net());
    return p;
  }

  // Writes the model file; `command` (the command line that trained it) goes into it.
  void save(const std::string& path, const std::string& command = "") const {
    nn::ModelFile file(Derived::kFile.kind);
    input_.save(file);
    file.set_text(Derived::kFile.labels, labels_.to_text());
    file.set_options(net_->front().options());
    file.set_option("members", net_->size());
    file.set_command(command);
    file.save(path, *net_);
  }

  const WordInput& input() const { return input_; }
  const Vocab& labels() const { return labels_; }
  Ensemble<Model>& net() { return *net_; }
  const Ensemble<Model>& net() const { return *net_; }
  Generator& gen() { return gen_; }  // dropout's draws (a training checkpoint saves it)

 protected:
  // The members' mean probabilities, (B, ...) a batch, for each batch of sentences:
  // f(indices, probabilities).  `weights`, if given, receives the first member's attention for
  // the first batch.
  template <class F>
  void for_each_prediction(const std::vector<Words>& sentences, std::vector<Tensor>* weights,
                           F&& f) const {
    NoGradGuard no_grad;
    input_.for_each_batch(
        sentences, [&](const std::vector<std::size_t>& batch, const Ids& ids, const Ids& subs) {
          const Tensor probs = net_->mean([&](Model& m) {
            std::vector<Tensor>* w = &m == &net_->front() ? weights : nullptr;
            return softmax(m.forward(ids, input_.subwords_of(subs), w));
          });
          weights = nullptr;  // the first batch only
          f(batch, probs.data<float>());
        });
  }

  Generator gen_;
  WordInput input_;
  Vocab labels_;
  std::unique_ptr<Ensemble<Model>> net_;
};

}  // namespace tg::models

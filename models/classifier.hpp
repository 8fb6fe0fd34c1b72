// Sequence classifier (sentiment): embeddings, positions (learnable Fourier features by
// default), a transformer encoder, pooling over real tokens (mean, max, or both side by side),
// a classifier.
//   ids: (B, T), 0 = padding  ->  logits (B, classes)
#pragma once

#include <string>

#include "blocks.hpp"

namespace tg::models {

// How the encoder's outputs (B, T, C) become one vector per sentence.  Max pooling does not
// thin out a strong word in a long sentence the way a mean does.
enum class Pooling { mean, max, mean_max };  // mean_max: the two concatenated, (B, 2C)
constexpr auto enum_table(Pooling) {
  return named_values<Pooling>(
      "pooling", {{Pooling::mean, "mean"}, {Pooling::max, "max"}, {Pooling::mean_max, "mean-max"}});
}

struct ClassifierOptions {
  SentenceEncoderOptions encoder{.positions = nn::PositionScheme::fourier, .relative_k = 16};
  std::size_t classes = 2;
  Pooling pooling = Pooling::mean;

  // The options a model file stores (model_file.hpp).
  template <class F>
  void fields(F&& f) {
    encoder.fields(f);
    f("classes", classes), f("pooling", pooling);
  }
};

class Classifier : public SentenceModel<ClassifierOptions> {
 public:
  Classifier(const ClassifierOptions& options, Generator& gen);

  // ids: (B, T) -> logits (B, classes); subwords: (B, T, K) feature ids (needed when
  // options.encoder.subword_buckets > 0).  `weights`, if given, receives each layer's attention.
  Tensor forward(const Ids& ids, const Ids* subwords = nullptr,
                 std::vector<Tensor>* weights = nullptr);
  // The sentence vectors: the encoder's outputs h (B, T, C) of ids (B, T) pooled over the real
  // tokens -> (B, C), or (B, 2C) for mean-max.  A sentence of padding only pools to 0.
  Tensor pool(const Tensor& h, const Ids& ids) const;
  Tensor loss(const Ids& ids, const Ids& labels, const Ids* subwords = nullptr);  // labels: (B)
};

}  // namespace tg::models

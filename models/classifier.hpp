// Sequence classifier (sentiment): embeddings, positions (learnable Fourier features by
// default), a transformer encoder, pooling over real tokens (mean, max, or both side by side),
// a classifier.
//   ids: (B, T), 0 = padding  ->  logits (B, classes)
#pragma once

#include <memory>

#include "../nn/conv1d.hpp"
#include "../nn/embedding.hpp"
#include "../nn/linear.hpp"
#include "../nn/positional.hpp"
#include "../nn/subword_embedding.hpp"
#include "../nn/transformer.hpp"

namespace tg::models {

// How the encoder's outputs (B, T, C) become one vector per sentence.  Max pooling does not
// thin out a strong word in a long sentence the way a mean does.
enum class Pooling { mean, max, mean_max };  // mean_max: the two concatenated, (B, 2C)
Pooling pooling_from_name(const std::string& name);  // "mean", "max", "mean-max"
std::string pooling_name(Pooling pooling);
// Pooling as a model-file option (models/model_file.hpp).
std::string option_text(Pooling pooling);
void parse_option(const std::string& text, Pooling& pooling, const std::string& what);

struct ClassifierOptions {
  std::size_t vocab = 0;
  std::size_t classes = 2;
  std::size_t d_model = 128, heads = 4, ff = 512, layers = 2;
  double dropout = 0.2;
  nn::PositionScheme positions = nn::PositionScheme::fourier;
  std::size_t fourier_features = 64, fourier_hidden = 128;
  std::size_t relative_k = 16;
  std::size_t max_len = 512;
  Pooling pooling = Pooling::mean;
  // > 0: hashed subword features (subword_ids in data.hpp) added to the word embeddings, so
  // that unseen words ("unfunny") are read from their pieces.
  std::size_t subword_buckets = 1 << 15;
  std::vector<std::size_t> subword_groups = {1, 4, 19};  // SubwordOptions::groups(); empty: one pool
  // > 0: a convolution of this width over the word vectors, added to them before the encoder
  // (x + dropout(relu(conv(x))): add_neighbours), so that neighbouring words ("not good") are read together.
  std::size_t conv_width = 5;

  // The options a model file stores (models/model_file.hpp); subword_groups comes from the
  // file's SubwordOptions.
  template <class F>
  void fields(F&& f) {
    f("vocab", vocab), f("classes", classes), f("d_model", d_model), f("heads", heads), f("ff", ff);
    f("layers", layers), f("dropout", dropout), f("positions", positions), f("fourier_features", fourier_features);
    f("fourier_hidden", fourier_hidden), f("relative_k", relative_k), f("max_len", max_len), f("pooling", pooling);
    f("subword_buckets", subword_buckets), f("conv_width", conv_width);
  }
};

class Classifier : public nn::Module {
 public:
  Classifier(const ClassifierOptions& options, Generator& gen);

  // ids: (B, T) -> logits (B, classes); subwords: (B, T, K) feature ids (needed when
  // options.subword_buckets > 0).  `weights`, if given, receives each layer's attention.
  Tensor forward(const Ids& ids, const Ids* subwords = nullptr, std::vector<Tensor>* weights = nullptr);
  Tensor loss(const Ids& ids, const Ids& labels, const Ids* subwords = nullptr);  // labels: (B)

  const ClassifierOptions& options() const { return options_; }

  nn::Embedding embed;
  std::unique_ptr<nn::SubwordEmbedding> subword_embed;  // when subword_buckets > 0
  std::unique_ptr<nn::Conv1d> conv;  // when conv_width > 0
  std::unique_ptr<nn::PositionalEncoding> positions;
  nn::Encoder encoder;
  nn::Linear head;

 private:
  ClassifierOptions options_;
  nn::Dropout drop_;
};

}  // namespace tg::models

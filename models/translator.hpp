// Translator: an encoder-decoder transformer (learned-MLP positions by default).
//   src: (B, S), tgt_in: (B, T), 0 = padding  ->  logits (B, T, tgt_vocab)
// Training uses teacher forcing: tgt_in is the target shifted right (starting with BOS), and
// the loss compares the logits with tgt_out (the target, ending with EOS).
//
// Non-autoregressive (options.non_autoregressive; Gu et al. 2018, Ghazvininejad et al. 2019):
// the decoder has no causal mask and reads the whole target at once, some or all of its tokens
// replaced by a mask token, and predicts every position in one pass; a length classifier on the
// pooled encoder output says how many positions there are.  tgt then holds no BOS or EOS:
//   src: (B, S), tgt: (B, T) with mask tokens  ->  logits (B, T, tgt_vocab); lengths (B, 2R + 1)
#pragma once

#include <memory>

#include "../nn/embedding.hpp"
#include "../nn/linear.hpp"
#include "../nn/positions/absolute.hpp"
#include "../nn/transformer.hpp"
#include "blocks.hpp"

namespace tg::models {

struct TranslatorOptions {
  std::size_t src_vocab = 0, tgt_vocab = 0;
  std::size_t d_model = 256, heads = 8, ff = 512, layers = 3;
  double dropout = 0.1;
  double label_smoothing = 0.1;
  nn::PositionScheme positions = nn::PositionScheme::mlp;
  std::size_t mlp_hidden = 64;
  // The MLP reads position / mlp_scale.  Sentences of 10-40 words train much faster with 16
  // than with the 512 of the benchmark workload, where neighbouring positions look alike.
  double mlp_scale = 16;
  std::size_t relative_k = 16;
  std::size_t max_len = 512;
  nn::AttentionKind attention =
      nn::AttentionKind::softmax;    // self-attention; kernelized (Luo et al. 2021)
  std::size_t kernel_features = 64;  // kernelized: random features
  bool non_autoregressive = false;   // a mask-predict decoder (see above) instead of a causal one
  std::size_t length_offsets =
      32;  // non-autoregressive: the length classes are offsets -R..R from the source length
  double length_weight =
      0.1;  // non-autoregressive: the length loss's weight beside the tokens' loss

  // The options a model file stores (nn/training/model_file.hpp; transformer_fields: blocks.hpp).
  template <class F>
  void fields(F&& f) {
    f("src_vocab", src_vocab), f("tgt_vocab", tgt_vocab), transformer_fields(*this, f);
    f("label_smoothing", label_smoothing), f("non_autoregressive", non_autoregressive);
    f("length_offsets", length_offsets), f("length_weight", length_weight);
  }
};

class Translator : public nn::Module {
 public:
  Translator(const TranslatorOptions& options, Generator& gen);

  // src: (B, S) -> memory (B, S, C)
  Tensor encode(const Ids& src);
  // tgt: (B, T) target positions offset .. offset+T-1, memory (B, S, C) -> logits (B, T, V).
  // With a cache, tgt holds only the new positions (incremental decoding).  A non-autoregressive
  // model: tgt is the whole target (with mask tokens), every position sees every other, no cache.
  Tensor decode(const Ids& tgt, const Tensor& memory, const Mask& src_mask,
                nn::DecoderCache* cache = nullptr, std::vector<Tensor>* cross_weights = nullptr);
  // Label-smoothed cross-entropy over the real target tokens (tgt_out 0 = padding, ignored).
  Tensor loss(const Ids& src, const Ids& tgt_in, const Ids& tgt_out);
  // log p(y | x) of each whole target sequence: the sum of its real tokens' log-probabilities
  // (tgt_out 0 = padding), no smoothing.  -> (B)
  Tensor sequence_log_probs(const Ids& src, const Ids& tgt_in, const Ids& tgt_out);
  // Non-autoregressive only.  The target length's class: memory (B, S, C), src (B, S) -> logits
  // (B, 2R + 1), from the mean of the encoder output over the real source positions.
  Tensor length_logits(const Tensor& memory, const Ids& src);
  // Class k stands for the offset k - R of the target length from the source length (clipped).
  std::int64_t length_class(std::size_t source_length, std::size_t target_length) const;
  std::size_t class_length(std::size_t source_length,
                           std::int64_t length_class) const;  // at least 1
  // The conditional masked language model's loss (Ghazvininejad et al. 2019): label-smoothed
  // cross-entropy of the tokens at the masked positions (gold: the token there, 0 elsewhere)
  // + length_weight * the length classifier's cross-entropy (the length: tgt's real tokens).
  // src (B, S), tgt (B, T) with mask tokens, gold (B, T) -> ()
  Tensor nat_loss(const Ids& src, const Ids& tgt, const Ids& gold);
  // decode without the output layer: (B, T, C), for a caller that needs only some positions.
  Tensor decoder_states(const Ids& tgt, const Tensor& memory, const Mask& src_mask,
                        nn::DecoderCache* cache = nullptr,
                        std::vector<Tensor>* cross_weights = nullptr);

  const TranslatorOptions& options() const { return options_; }

  nn::Embedding src_embed, tgt_embed;
  std::unique_ptr<nn::PositionalEncoding> src_positions, tgt_positions;
  nn::Encoder encoder;
  nn::Decoder decoder;
  nn::Linear head;
  std::unique_ptr<nn::Linear> length_head;  // non-autoregressive only: C -> 2R + 1

 private:
  void require(bool non_autoregressive,
               const char* who) const;  // throws naming `who` for the other kind
  Tensor token_loss(const Tensor& states,
                    const Ids& targets);  // (B, T, C), (B, T) -> () over targets != 0
  TranslatorOptions options_;
  nn::Dropout drop_;
};

}  // namespace tg::models

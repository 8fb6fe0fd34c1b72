// Blocks every model here is built from: the padding mask of a batch of ids, word embeddings
// with subword features, and a convolution over neighbouring words.
#pragma once

#include "../autograd/tensor.hpp"
#include "../nn/conv1d.hpp"
#include "../nn/dropout.hpp"
#include "../nn/embedding.hpp"
#include "../nn/subword_embedding.hpp"

namespace tg::models {

// The key padding mask (B, 1, 1, T) of ids (B, T): true where the id is not 0.
Mask key_padding_mask(const Ids& ids);

// Word embeddings of ids (B, T), plus the pooled subword features (B, T, K) when the model has a
// subword table (then `subword_ids` must be given, matching ids): (B, T, C).  `who` names the
// model in errors.
Tensor embed_words(nn::Embedding& words, nn::SubwordEmbedding* subwords, const Ids& ids, const Ids* subword_ids,
                   const char* who);

// x + dropout(relu(conv(x))) for word vectors x (B, T, C) of ids (B, T): each word gets a mix of its
// neighbours ("not good") before attention mixes the whole sentence.  Padded steps (id 0) are
// read as zeros, so a sentence's result does not depend on the padding after it.
Tensor add_neighbours(nn::Conv1d& conv, nn::Dropout& drop, const Tensor& x, const Ids& ids);

}  // namespace tg::models

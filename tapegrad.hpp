// tapegrad: the umbrella header for users.  (The library's own files include what they use.)
// One block per folder, in the order of the layers: each includes only the ones above it (so
// nn/transformer.hpp, built on attention, has a block after nn/attention/).
#pragma once

// the engine: tensors, the tape, the ops and their gradient checks
#include "autograd/activation_checkpoint.hpp"
#include "autograd/forward.hpp"
#include "autograd/functional.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "autograd/shape.hpp"
#include "autograd/tape.hpp"
#include "autograd/tensor.hpp"
// what the engine runs on: random numbers, threads, memory
#include "autograd/runtime/bf16.hpp"
#include "autograd/runtime/generator.hpp"
#include "autograd/runtime/memory.hpp"
#include "autograd/runtime/parallel.hpp"

// modules and layers
#include "nn/activation.hpp"
#include "nn/conv1d.hpp"
#include "nn/dropout.hpp"
#include "nn/embedding.hpp"
#include "nn/init.hpp"
#include "nn/layer_norm.hpp"
#include "nn/linear.hpp"
#include "nn/losses.hpp"
#include "nn/mlp.hpp"
#include "nn/module.hpp"
#include "nn/sequential.hpp"
#include "nn/subword_embedding.hpp"
// positions: the schemes and what each is, the absolute encodings, the helpers of the schemes
// inside attention
#include "nn/positions/absolute.hpp"
#include "nn/positions/in_attention.hpp"
#include "nn/positions/scheme.hpp"
// attention: masks, multi-head attention, kernelized attention
#include "nn/attention/kernelized.hpp"
#include "nn/attention/masks.hpp"
#include "nn/attention/multihead.hpp"
// transformer blocks
#include "nn/transformer.hpp"
// measures of embedding matrices: these need tapegrad::linalg linked too
#include "nn/positions/measures.hpp"
// training: optimizers, schedules, averaging, checkpoints, model files, the loop, MPI
#include "nn/training/average.hpp"
#include "nn/training/checkpoint.hpp"
#include "nn/training/distributed.hpp"
#include "nn/training/loop.hpp"
#include "nn/training/model_file.hpp"
#include "nn/training/npz.hpp"
#include "nn/training/optim.hpp"
#include "nn/training/schedule.hpp"

// the task models
#include "models/blocks.hpp"
#include "models/classifier.hpp"
#include "models/ensemble.hpp"
#include "models/language_model.hpp"
#include "models/language_modelling.hpp"
#include "models/pipelines.hpp"
#include "models/plots.hpp"
#include "models/search.hpp"
#include "models/tagger.hpp"
#include "models/translation.hpp"
#include "models/translation_training.hpp"
#include "models/translator.hpp"
#include "models/word_input.hpp"
#include "models/word_pipeline.hpp"
// their data: readers, tokens, vocabularies, subwords, batches, BLEU
#include "models/data/batching.hpp"
#include "models/data/characters.hpp"
#include "models/data/readers.hpp"
#include "models/data/subword_vocab.hpp"
#include "models/data/subwords.hpp"
#include "models/data/text.hpp"
#include "models/data/text_vocab.hpp"
#include "models/data/vocab.hpp"

// The data side of the models in one include: readers of the tasks' files, vocabularies,
// subword features and batching, each in a file of its own.
#pragma once

#include "batching.hpp"
#include "readers.hpp"
#include "subwords.hpp"
#include "text.hpp"
#include "vocab.hpp"

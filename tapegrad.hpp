// tapegrad: the umbrella header for users.  (The library's own files include what they use.)
#pragma once

#include "autograd/generator.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "autograd/shape.hpp"
#include "autograd/tape.hpp"
#include "autograd/tensor.hpp"

#include "nn/activation.hpp"
#include "nn/checkpoint.hpp"
#include "nn/dropout.hpp"
#include "nn/embedding.hpp"
#include "nn/init.hpp"
#include "nn/layer_norm.hpp"
#include "nn/linear.hpp"
#include "nn/losses.hpp"
#include "nn/mlp.hpp"
#include "nn/module.hpp"
#include "nn/npz.hpp"
#include "nn/optim.hpp"
#include "nn/schedule.hpp"
#include "nn/sequential.hpp"

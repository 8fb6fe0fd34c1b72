// tapegrad: the umbrella header for users.  (The library's own files include what they use.)
#pragma once

#include "autograd/generator.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "autograd/shape.hpp"
#include "autograd/tape.hpp"
#include "autograd/tensor.hpp"

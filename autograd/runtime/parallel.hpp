// One thread budget for tapegrad's parallel kernels (oneTBB) and OpenBLAS together, so that
// the two never oversubscribe the cores (PyTorch's pool and OpenBLAS's threads fight on a
// 2-core machine).
#pragma once

#include <cstddef>

namespace tg {

// Sets the number of threads for TBB kernels and for OpenBLAS.  0 means all cores.
void set_num_threads(std::size_t n);
std::size_t num_threads();

}  // namespace tg

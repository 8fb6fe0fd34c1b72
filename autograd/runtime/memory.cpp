#include "memory.hpp"

#include <cstdlib>  // defines __GLIBC__ on glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace tg {

void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);              // no block mapped on its own: all from the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // give back the heap's top only past 1 GB free
#endif
}

}  // namespace tg

// heap-peak: the most bytes a process had allocated at one time, as opposed to its peak resident
// memory.  Loaded into any program with LD_PRELOAD (the old tapegrad-bench as well as the new),
// it counts every block glibc's malloc hands out and takes back, and prints at exit:
//   heap-peak: 129.04 MB in use at the peak; the heap grew to 148.41 MB
// The difference between the two is the allocator's layout (free blocks between blocks in
// use), which moves with the order of allocations even when the bytes asked for are the same;
// peak_rss_mb (tapegrad-bench) includes it, this figure does not.  docs/speed.md, "Memory".
//   LD_PRELOAD=build/bench/libheap-peak.so build/bench/tapegrad-bench --workload sentiment
// glibc only: it forwards to glibc's own entry points (__libc_malloc, ...).
#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdio>

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* block, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void __libc_free(void* block);
}

namespace {

std::atomic<std::size_t> in_use{0}, peak{0};

void taken(void* block) {
  if (block == nullptr) return;
  const std::size_t now = in_use += malloc_usable_size(block);
  std::size_t seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

void given_back(void* block) {
  if (block != nullptr) in_use -= malloc_usable_size(block);
}

__attribute__((destructor)) void report() {
  const struct mallinfo2 heap = mallinfo2();
  std::fprintf(stderr, "heap-peak: %.2f MB in use at the peak; the heap grew to %.2f MB\n",
               static_cast<double>(peak.load()) / 1e6,
               static_cast<double>(heap.arena + heap.hblkhd) / 1e6);
}

}  // namespace

extern "C" {

void* malloc(std::size_t size) {
  void* block = __libc_malloc(size);
  taken(block);
  return block;
}

void free(void* block) {
  given_back(block);
  __libc_free(block);
}

void* calloc(std::size_t count, std::size_t size) {
  void* block = __libc_calloc(count, size);
  taken(block);
  return block;
}

void* realloc(void* block, std::size_t size) {
  const std::size_t before = block != nullptr ? malloc_usable_size(block) : 0;
  void* moved = __libc_realloc(block, size);
  if (moved == nullptr && size > 0) return nullptr;  // the old block stands, counted
  in_use -= before;
  taken(moved);
  return moved;
}

void* memalign(std::size_t alignment, std::size_t size) {
  void* block = __libc_memalign(alignment, size);
  taken(block);
  return block;
}

void* aligned_alloc(std::size_t alignment, std::size_t size) { return memalign(alignment, size); }

int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  void* block = memalign(alignment, size);
  if (block == nullptr) return 12;  // ENOMEM
  *out = block;
  return 0;
}

}  // extern "C"

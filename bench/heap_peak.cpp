// heap-peak: the most bytes a process had allocated at one time, as opposed to its peak resident
// memory.  Loaded into any program with LD_PRELOAD (the old tapegrad-bench as well as the new),
// it counts every block glibc's malloc hands out and takes back, and prints at exit:
//   heap-peak: 129.04 MB in use at the peak; the heap holds 148.41 MB at exit
// The difference between the two is the allocator's layout (free blocks between blocks in
// use), which moves with the order of allocations even when the bytes asked for are the same;
// peak_rss_mb (tapegrad-bench) includes it, this figure does not.  docs/speed.md, "Memory".
//   LD_PRELOAD=build/bench/libheap-peak.so build/bench/tapegrad-bench --workload sentiment
// The heap's size at exit is its largest in tapegrad's programs, which give no memory back
// (keep_freed_memory); other programs may have returned some by then.
// glibc only: it forwards to glibc's own entry points (__libc_malloc, ...).
#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* block, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void* __libc_valloc(std::size_t size);
void* __libc_pvalloc(std::size_t size);
void __libc_free(void* block);
}

namespace {

// Signed: a block allocated through an entry point not counted here, then freed, takes the
// count down without wrapping it round.
std::atomic<long long> in_use{0}, peak{0};

long long size_of(void* block) { return static_cast<long long>(malloc_usable_size(block)); }

void* taken(void* block) {
  if (block == nullptr) return nullptr;
  const long long now = in_use += size_of(block);
  long long seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
  return block;
}

void given_back(void* block) {
  if (block != nullptr) in_use -= size_of(block);
}

bool power_of_two(std::size_t n) { return n != 0 && (n & (n - 1)) == 0; }

__attribute__((destructor)) void report() {
  const struct mallinfo2 heap = mallinfo2();
  std::fprintf(stderr, "heap-peak: %.2f MB in use at the peak; the heap holds %.2f MB at exit\n",
               static_cast<double>(peak.load()) / 1e6,
               static_cast<double>(heap.arena + heap.hblkhd) / 1e6);
}

}  // namespace

extern "C" {

void* malloc(std::size_t size) noexcept { return taken(__libc_malloc(size)); }

void free(void* block) noexcept {
  given_back(block);
  __libc_free(block);
}

void* calloc(std::size_t count, std::size_t size) noexcept {
  return taken(__libc_calloc(count, size));
}

void* realloc(void* block, std::size_t size) noexcept {
  const long long before = block != nullptr ? size_of(block) : 0;
  void* moved = __libc_realloc(block, size);
  if (moved == nullptr && size > 0) return nullptr;  // the old block stands, counted
  in_use -= before;
  return taken(moved);
}

void* memalign(std::size_t alignment, std::size_t size) noexcept {
  return taken(__libc_memalign(alignment, size));
}

void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  if (!power_of_two(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return memalign(alignment, size);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  if (!power_of_two(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  void* block = memalign(alignment, size);
  if (block == nullptr) return ENOMEM;
  *out = block;
  return 0;
}

void* valloc(std::size_t size) noexcept { return taken(__libc_valloc(size)); }

void* pvalloc(std::size_t size) noexcept { return taken(__libc_pvalloc(size)); }

}  // extern "C"

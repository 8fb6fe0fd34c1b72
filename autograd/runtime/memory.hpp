// How a training program asks glibc's malloc to keep the memory of freed tensors.
#pragma once

namespace tg {

// Freed memory stays with the process, for the next step's tensors of the same sizes.
//
// By default glibc's malloc hands large blocks back to the system when they are freed (it maps
// every block above a threshold on its own, and trims the top of its heap), and every training
// step then takes them back one zero-filled page at a time: a page fault per 4 KB, a fifth to a
// third of a step on a 2-core VM (the translator's 65 MB of logits alone cost 40 ms a step).
// After this call the main heap maps no block on its own and keeps up to 1 GB free at its top,
// so the same sizes reuse the same blocks step after step, and peak memory is no higher
// (build/bench/tapegrad-bench reports it).  Blocks larger than a thread heap (64 MB) that a
// worker thread allocates are still mapped on their own.
//
// It changes the whole process's malloc, so tapegrad does not do it by itself: the programs
// (examples/programs/cli.cpp) and the benchmark call it first thing; call it in your own training
// program. The price: the process's memory stays at its peak until it exits.  Elsewhere than glibc
// it does nothing.  The same as
// GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824.
void keep_freed_memory();

}  // namespace tg

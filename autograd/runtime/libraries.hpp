// oneDNN and BLAS, opened the first time a product needs them.
//
// tapegrad's own kernels (gemm_small.hpp) run every float32 product up to 1.2e8 multiply-adds,
// so a small model never calls oneDNN, and only float64 products (gradcheck) call BLAS.  Linked
// the usual way, both would still be mapped and relocated when the program starts, with their
// OpenMP and Fortran runtimes: 4.6 of the tiny benchmark's 12.6 MB (docs/speed.md).  So they are
// opened with dlopen at their first call: from the folder CMake found each in, else by its
// SONAME (TAPEGRAD_DNNL_PATH, TAPEGRAD_DNNL_SONAME and the same for BLAS).  Opening is
// thread-safe and happens once; a library that cannot be opened is an error that names it.
#pragma once

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

namespace tg::detail {

// oneDNN's sgemm, and the OpenMP runtime it was built with (Debian's: GNU OpenMP).
struct OneDnn {
  decltype(&dnnl_sgemm) sgemm;
  void (*omp_set_num_threads)(int);
};
const OneDnn& onednn();

// BLAS's dgemm (OpenBLAS's).
struct Blas {
  decltype(&cblas_dgemm) dgemm;
};
const Blas& blas();

// OpenBLAS's own thread count: set now if it is open, or when it opens.
void set_blas_threads(int n);

}  // namespace tg::detail

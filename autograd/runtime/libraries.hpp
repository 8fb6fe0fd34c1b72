// oneDNN and BLAS, opened the first time a product needs them.
//
// tapegrad's own kernels (gemm_small.hpp) run every float32 product up to 1.2e8 multiply-adds
// (2^22 on Intel CPUs), so a small model never calls oneDNN, and only float64 products
// (gradcheck) call BLAS.  Linked
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

// What the bfloat16 products need of oneDNN's C API (gemm_bf16.cpp): its matmul primitive,
// built once per shape and run on memory the caller owns.
struct OneDnnMatmul {
  decltype(&dnnl_engine_create) engine_create;
  decltype(&dnnl_stream_create) stream_create;
  decltype(&dnnl_stream_destroy) stream_destroy;
  decltype(&dnnl_memory_desc_init_by_strides) memory_desc_init_by_strides;
  decltype(&dnnl_matmul_desc_init) matmul_desc_init;
  decltype(&dnnl_primitive_attr_create) primitive_attr_create;
  decltype(&dnnl_primitive_attr_destroy) primitive_attr_destroy;
  decltype(&dnnl_post_ops_create) post_ops_create;
  decltype(&dnnl_post_ops_append_sum) post_ops_append_sum;
  decltype(&dnnl_post_ops_destroy) post_ops_destroy;
  decltype(&dnnl_primitive_attr_set_post_ops) primitive_attr_set_post_ops;
  decltype(&dnnl_primitive_desc_create) primitive_desc_create;
  decltype(&dnnl_primitive_desc_query) primitive_desc_query;
  decltype(&dnnl_primitive_desc_destroy) primitive_desc_destroy;
  decltype(&dnnl_primitive_create) primitive_create;
  decltype(&dnnl_primitive_destroy) primitive_destroy;
  decltype(&dnnl_memory_create) memory_create;
  decltype(&dnnl_memory_set_data_handle) memory_set_data_handle;
  decltype(&dnnl_memory_destroy) memory_destroy;
  decltype(&dnnl_primitive_execute) primitive_execute;
  decltype(&dnnl_stream_wait) stream_wait;
};
const OneDnnMatmul& onednn_matmul();

// BLAS's dgemm (OpenBLAS's).
struct Blas {
  decltype(&cblas_dgemm) dgemm;
};
const Blas& blas();

// OpenBLAS's own thread count: set now if it is open, or when it opens.
void set_blas_threads(int n);

}  // namespace tg::detail

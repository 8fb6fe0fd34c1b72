#include "libraries.hpp"

#include <dlfcn.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace tg::detail {
namespace {

// The library's handle, opened for good (never closed: its functions are kept in statics).  First
// from the folder CMake found it in, then by its SONAME wherever the loader looks.
void* open_library(const char* what, const char* path, const char* soname) {
  if (void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL)) return handle;
  void* handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr)
    throw std::runtime_error(std::string("gemm: cannot open ") + what + " (" + path + ", or " +
                             soname + " on the loader's path): " + dlerror() +
                             "; run scripts/install-deps.sh");
  return handle;
}

// A function of the library or of one it depends on, as type F.
template <class F>
F symbol(void* handle, const char* soname, const char* name) {
  void* address = dlsym(handle, name);
  if (address == nullptr)
    throw std::runtime_error(std::string("gemm: ") + soname + " has no function " + name);
  return reinterpret_cast<F>(address);
}

// BLAS's thread count, kept until BLAS opens (guarded by blas_mutex).
std::mutex blas_mutex;
int blas_threads = 0;  // 0: OpenBLAS's own default
using SetThreads = void (*)(int);
SetThreads blas_set_threads = nullptr;

}  // namespace

const OneDnn& onednn() {
  static const OneDnn library = [] {
    void* handle = open_library("oneDNN", TAPEGRAD_DNNL_PATH, TAPEGRAD_DNNL_SONAME);
    return OneDnn{
        .sgemm = symbol<decltype(&dnnl_sgemm)>(handle, TAPEGRAD_DNNL_SONAME, "dnnl_sgemm"),
        .omp_set_num_threads =
            symbol<void (*)(int)>(handle, TAPEGRAD_DNNL_SONAME, "omp_set_num_threads")};
  }();
  return library;
}

const OneDnnMatmul& onednn_matmul() {
  static const OneDnnMatmul library = [] {
    void* handle = open_library("oneDNN", TAPEGRAD_DNNL_PATH, TAPEGRAD_DNNL_SONAME);
    const auto get = [&]<class F>(F& f, const char* name) {
      f = symbol<F>(handle, TAPEGRAD_DNNL_SONAME, name);
    };
    OneDnnMatmul m{};
    get(m.engine_create, "dnnl_engine_create");
    get(m.stream_create, "dnnl_stream_create");
    get(m.stream_destroy, "dnnl_stream_destroy");
    get(m.memory_desc_init_by_strides, "dnnl_memory_desc_init_by_strides");
    get(m.matmul_desc_init, "dnnl_matmul_desc_init");
    get(m.primitive_attr_create, "dnnl_primitive_attr_create");
    get(m.primitive_attr_destroy, "dnnl_primitive_attr_destroy");
    get(m.post_ops_create, "dnnl_post_ops_create");
    get(m.post_ops_append_sum, "dnnl_post_ops_append_sum");
    get(m.post_ops_destroy, "dnnl_post_ops_destroy");
    get(m.primitive_attr_set_post_ops, "dnnl_primitive_attr_set_post_ops");
    get(m.primitive_desc_create, "dnnl_primitive_desc_create");
    get(m.primitive_desc_query, "dnnl_primitive_desc_query");
    get(m.primitive_desc_destroy, "dnnl_primitive_desc_destroy");
    get(m.primitive_create, "dnnl_primitive_create");
    get(m.primitive_destroy, "dnnl_primitive_destroy");
    get(m.memory_create, "dnnl_memory_create");
    get(m.memory_set_data_handle, "dnnl_memory_set_data_handle");
    get(m.memory_destroy, "dnnl_memory_destroy");
    get(m.primitive_execute, "dnnl_primitive_execute");
    get(m.stream_wait, "dnnl_stream_wait");
    return m;
  }();
  return library;
}

const Blas& blas() {
  static const Blas library = [] {
    void* handle = open_library("BLAS", TAPEGRAD_BLAS_PATH, TAPEGRAD_BLAS_SONAME);
    const Blas opened{
        .dgemm = symbol<decltype(&cblas_dgemm)>(handle, TAPEGRAD_BLAS_SONAME, "cblas_dgemm")};
    std::lock_guard lock(blas_mutex);
    blas_set_threads = symbol<SetThreads>(handle, TAPEGRAD_BLAS_SONAME, "openblas_set_num_threads");
    if (blas_threads > 0) blas_set_threads(blas_threads);
    return opened;
  }();
  return library;
}

void set_blas_threads(int n) {
  std::lock_guard lock(blas_mutex);
  blas_threads = n;
  if (blas_set_threads != nullptr) blas_set_threads(n);
}

}  // namespace tg::detail

#include "parallel.hpp"
#include "libraries.hpp"

#include <memory>
#include <thread>

#include <oneapi/tbb/global_control.h>

namespace tg {
namespace {

std::unique_ptr<tbb::global_control> g_control;
std::size_t g_threads = 0;

}  // namespace

void set_num_threads(std::size_t n) {
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  g_control =
      std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, n);
  detail::set_blas_threads(static_cast<int>(n));
  g_threads = n;
}

std::size_t num_threads() {
  return g_threads > 0 ? g_threads : std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace tg

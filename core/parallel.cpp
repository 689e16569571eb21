#include "cyclone/core/parallel.h"

#include <omp.h>

namespace cyclone {

int cpu_threads() { return omp_get_max_threads(); }

namespace detail {
void run_chunks(int64_t chunks, const std::function<void(int64_t)>& chunk) {
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) chunk(c);
}
}  // namespace detail

}  // namespace cyclone

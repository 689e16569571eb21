#include "cyclone/core/parallel.h"

#include <omp.h>

namespace cyclone {
int cpu_threads() { return omp_get_max_threads(); }
}  // namespace cyclone

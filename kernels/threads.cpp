// CPU thread count: OpenMP (thaw's own loops) and OpenBLAS (the GEMMs) use the same number.
#include <cblas.h>
#include <omp.h>

#include "core/error.h"
#include "kernels/ops.h"

namespace thaw::ops {

void set_cpu_threads(int threads) {
  THAW_CHECK(threads >= 1, "set_cpu_threads: need at least one thread, got {}", threads);
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int cpu_threads() {
  return omp_get_max_threads();
}

}  // namespace thaw::ops

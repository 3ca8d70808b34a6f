// add_relu on the CPU: y = relu(a + b), the residual join, in one pass over the three tensors. Bit for bit
// relu_forward(add(a, b)): the same sum, then the same comparison (NaN passes through, as in relu).
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/parallel.h"

namespace thaw::cpu {

void add_relu_forward(const Tensor& a, const Tensor& b, const Tensor& y) {
  visit_floating(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* py = y.data<T>();
    parallel_ranges(a.numel(), 32768, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        const T sum = pa[i] + pb[i];
        py[i] = sum < T(0) ? T(0) : sum;
      }
    });
  });
}

}  // namespace thaw::cpu

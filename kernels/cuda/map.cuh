// The elementwise map that elementwise.cu (add, add_, mul, scale, fill_) and relu.cu share:
//   y[i] = op(x0[i], x1[i], ...) for i in [0, n), float32, with zero to two inputs of n elements each.
// op is a functor with a __device__ float operator()(float...) const; it sees one element at a time, so the
// result of an element does not depend on how the elements are split among threads. An input may be y itself
// (add_ updates y in place): each element is read before it is written, by the same thread.
//
// When y and every input are 16-byte aligned (tensors from the caching allocator are; a view with an offset
// may not be), each thread of the grid-stride loop moves 4 elements with one float4 load per input and one
// float4 store, and the last n % 4 elements take the scalar path; otherwise every element takes it.
#pragma once

#include <cstdint>

#include "kernels/cuda/launch.h"

namespace thaw::cuda {

// op applied to each of the four lanes of the float4s v.
template <typename Op, typename... V>
__device__ inline float4 map4(const Op& op, V... v) {
  return make_float4(op(v.x...), op(v.y...), op(v.z...), op(v.w...));
}

// vectors: the number of leading float4s of y (and of each input) taken whole, n / 4 when every pointer is
// 16-byte aligned, else 0; elements from 4 * vectors on go one at a time.
template <typename Op, typename... In>
__global__ void map_kernel(Op op, int64_t n, int64_t vectors, float* y, const In*... x) {
  for (const int64_t v : grid_stride(vectors))
    reinterpret_cast<float4*>(y)[v] = map4(op, reinterpret_cast<const float4*>(x)[v]...);
  for (const int64_t i : grid_stride(4 * vectors, n))
    y[i] = op(x[i]...);
}

inline bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Launches map_kernel over n > 0 elements on stream(): float4s when every pointer is 16-byte aligned, the
// grid sized for n / 4 vectors (plus the tail) or n scalars. The caller checks the launch.
template <typename Op, typename... In>
void launch_map(Op op, int64_t n, float* y, const In*... x) {
  const bool vectorize = aligned16(y) && (aligned16(x) && ...);
  const int64_t vectors = vectorize ? n / 4 : 0;
  const int64_t threads = vectorize ? (n + 3) / 4 : n;  // covers the n / 4 vectors and the n % 4 tail alike
  map_kernel<<<blocks_for(threads), kThreadsPerBlock, 0, stream()>>>(op, n, vectors, y, x...);
}

}  // namespace thaw::cuda

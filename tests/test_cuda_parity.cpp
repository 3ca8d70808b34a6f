// CUDA against the CPU backend, for every op that has a CUDA twin so far, with integer-valued inputs where
// that makes the comparison exact. Skips visibly without a CUDA build or device; fails (does not skip)
// when a device is present and a result differs.
#include "core/cuda_runtime.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "tests/support/allclose.h"
#include "tests/support/catch.h"

using namespace thaw;

namespace {

// Integers in [-8, 8] as float32: sums and products of a few of them are exact in float32.
Tensor integer_valued(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> v(size_t(shape_numel(shape)));
  for (float& x : v)
    x = float(gen.next_int(-8, 9));
  return Tensor::from_data<float>(shape, v);
}

bool have_cuda_device() {
  return cuda_runtime::built_with_cuda() && cuda_runtime::device_count() > 0;
}

std::string skip_reason() {
  return cuda_runtime::built_with_cuda() ? "no CUDA device: CUDA parity tests skipped"
                                         : "built without CUDA: CUDA parity tests skipped";
}

}  // namespace

TEST_CASE("CUDA: .to(device) round trip is exact") {
  if (!have_cuda_device()) THAW_SKIP(skip_reason());
  const Tensor x = integer_valued({3, 5, 7}, 1);
  const Tensor on_gpu = x.to(Device::cuda());
  REQUIRE(on_gpu.device() == Device::cuda());
  REQUIRE(on_gpu.to(Device::cpu()).to_vector<float>() == x.to_vector<float>());
  REQUIRE(Tensor::zeros({4}, DType::Float32, Device::cuda()).to_vector<float>() ==
          std::vector<float>(4, 0.0f));
}

TEST_CASE("CUDA: elementwise ops and relu match the CPU backend exactly") {
  if (!have_cuda_device()) THAW_SKIP(skip_reason());
  const Device gpu = Device::cuda();
  for (const Shape& shape : {Shape{1}, Shape{7}, Shape{2, 3, 17, 19}, Shape{64, 1000}}) {
    INFO("shape " << shape_str(shape));
    const Tensor a = integer_valued(shape, 2), b = integer_valued(shape, 3);
    const Tensor ga = a.to(gpu), gb = b.to(gpu);
    REQUIRE_ALLCLOSE(ops::add(ga, gb), ops::add(a, b), 0, 0);
    REQUIRE_ALLCLOSE(ops::mul(ga, gb), ops::mul(a, b), 0, 0);
    REQUIRE_ALLCLOSE(ops::scale(ga, -0.5), ops::scale(a, -0.5), 0, 0);
    REQUIRE_ALLCLOSE(ops::relu_forward(ga), ops::relu_forward(a), 0, 0);
    REQUIRE_ALLCLOSE(ops::relu_backward(gb, ops::relu_forward(ga)),
                     ops::relu_backward(b, ops::relu_forward(a)), 0, 0);
    const Tensor y = a.clone(), gy = ga.clone();
    ops::add_(y, b, 2.0);
    ops::add_(gy, gb, 2.0);
    REQUIRE_ALLCLOSE(gy, y, 0, 0);
    ops::fill_(gy, 3.25);
    REQUIRE_ALLCLOSE(gy, Tensor::full(shape, 3.25), 0, 0);
  }
}

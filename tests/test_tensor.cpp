// Tensor: creation, views, copies, conversions, element access, printing, and the errors of each.
#include <sstream>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "tests/support/catch.h"

using namespace thaw;

TEST_CASE("creation: shapes, dtypes and fill values") {
  const Tensor z = Tensor::zeros({2, 3});
  REQUIRE(z.shape() == Shape{2, 3});
  REQUIRE(z.numel() == 6);
  REQUIRE(z.dtype() == DType::Float32);
  REQUIRE(z.device() == Device::cpu());
  REQUIRE(z.at({1, 2}) == 0.0);
  REQUIRE(Tensor::ones({4}, DType::Int64).at({3}) == 1.0);
  REQUIRE(Tensor::full({2, 2}, -2.5, DType::Float64).at({1, 0}) == -2.5);
  const Tensor scalar = Tensor::full({}, 7.0);
  REQUIRE(scalar.dim() == 0);
  REQUIRE(scalar.numel() == 1);
  REQUIRE(scalar.item() == 7.0);
  REQUIRE(Tensor::empty({0, 5}).numel() == 0);
  REQUIRE(Tensor::from_data<int32_t>({2}, {5, -6}).at({1}) == -6.0);
  REQUIRE(Tensor::from_data<float>({2, 2}, {1, 2, 3, 4}).to_vector<float>() ==
          std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("random creation is reproducible and within range") {
  Generator a(42), b(42);
  const Tensor u1 = Tensor::uniform({1000}, -2, 3, a), u2 = Tensor::uniform({1000}, -2, 3, b);
  REQUIRE(u1.to_vector<float>() == u2.to_vector<float>());
  for (float v : u1.to_vector<float>())
    REQUIRE((v >= -2 && v < 3));
  const Tensor n = Tensor::normal({20000}, 1.0, 2.0, a, DType::Float64);
  double mean = 0, sq = 0;
  for (double v : n.to_vector<double>())
    mean += v / 20000;
  for (double v : n.to_vector<double>())
    sq += (v - mean) * (v - mean) / 20000;
  REQUIRE(std::abs(mean - 1.0) < 0.05);
  REQUIRE(std::abs(std::sqrt(sq) - 2.0) < 0.05);
}

TEST_CASE("reshape is a view of the same storage and clone is a deep copy") {
  Tensor t = Tensor::from_data<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor v = t.reshape({3, -1});
  REQUIRE(v.shape() == Shape{3, 2});
  REQUIRE(v.raw_data() == t.raw_data());
  v.data<float>()[5] = 50;
  REQUIRE(t.at({1, 2}) == 50.0);
  Tensor c = t.clone();
  c.data<float>()[0] = -1;
  REQUIRE(t.at({0, 0}) == 0.0);
  REQUIRE(c.raw_data() != t.raw_data());
}

TEST_CASE("copy_ and dtype conversion") {
  Tensor src = Tensor::from_data<float>({3}, {1.5f, -2.5f, 3.0f});
  Tensor dst = Tensor::zeros({3});
  dst.copy_(src);
  REQUIRE(dst.to_vector<float>() == src.to_vector<float>());
  REQUIRE(src.to(DType::Float64).to_vector<double>() == std::vector<double>{1.5, -2.5, 3.0});
  REQUIRE(src.to(DType::Int64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3});
  REQUIRE_THROWS_WITH(dst.copy_(Tensor::zeros({4})), ContainsSubstring("does not match"));
}

TEST_CASE("4-D tensors carry the NCHW memory-format tag") {
  const Tensor x = Tensor::zeros({1, 2, 3, 4});
  REQUIRE(x.memory_format() == MemoryFormat::NCHW);
  REQUIRE(x.reshape({2, 1, 3, 4}).memory_format() == MemoryFormat::NCHW);
}

TEST_CASE("bad shapes, dtypes and indices are errors that name the tensor") {
  REQUIRE_THROWS_WITH(Tensor::zeros({2, -1}), ContainsSubstring("negative dimension"));
  REQUIRE_THROWS_WITH(Tensor::from_data<float>({2, 2}, {1, 2, 3}),
                      ContainsSubstring("3 values given for shape [2, 2]"));
  Tensor t = Tensor::zeros({2, 3}).set_name("layer1.0.conv1.weight");
  REQUIRE_THROWS_WITH(t.reshape({4, 2}),
                      ContainsSubstring("layer1.0.conv1.weight") && ContainsSubstring("[4, 2]"));
  REQUIRE_THROWS_WITH(t.reshape({-1, -1}), ContainsSubstring("only one dimension may be -1"));
  REQUIRE_THROWS_WITH(t.data<double>(), ContainsSubstring("accessed as float64"));
  REQUIRE_THROWS_WITH(t.at({2, 0}), ContainsSubstring("out of range"));
  REQUIRE_THROWS_WITH(t.item(), ContainsSubstring("one-element"));
  REQUIRE_THROWS_WITH(t.size(2), ContainsSubstring("out of range"));
  REQUIRE(t.size(-1) == 3);
  REQUIRE_THROWS_WITH(Tensor().shape(), ContainsSubstring("undefined tensor"));
  REQUIRE_THROWS_WITH(Tensor::uniform({2}, 0, 1, *std::make_unique<Generator>(), DType::Int32),
                      ContainsSubstring("floating"));
}

TEST_CASE("devices: parsing, and CUDA without a device or without the backend is a clear error") {
  REQUIRE(Device::parse("cpu") == Device::cpu());
  REQUIRE(Device::parse("cuda:1") == Device::cuda(1));
  REQUIRE_THROWS_WITH(Device::parse("gpu"), ContainsSubstring("unknown device 'gpu'"));
  REQUIRE_THROWS_WITH(Device::parse("cuda:x"), ContainsSubstring("unknown device"));
  if (cuda_runtime::device_count() == 0) {
    REQUIRE_THROWS_AS(Tensor::zeros({2}).to(Device::cuda()), Error);
  }
  REQUIRE_THROWS_WITH(Tensor::zeros({2}, DType::Float64, Device::cuda()), ContainsSubstring("CPU only"));
}

TEST_CASE("printing shows dtype, shape, device and values") {
  std::ostringstream os;
  os << Tensor::from_data<float>({2, 2}, {1, 2, 3, 4.5f}).set_name("w");
  REQUIRE(os.str() == "tensor('w' float32[2, 2] on cpu)\n[[1, 2],\n [3, 4.5]]");
  const std::string big = to_string(Tensor::zeros({100}));
  REQUIRE(big.find("...") != std::string::npos);
  REQUIRE(big.size() < 120);
}

TEST_CASE("host block cache: a freed large block serves the next tensor of its size, within the limit") {
  if (cpu_cache_limit() == 0) THAW_SKIP("the host block cache is off in this build (AddressSanitizer)");
  release_cpu_cache();
  const size_t limit = cpu_cache_limit();
  const int64_t big = int64_t(kCpuCacheMinBytes);  // floats: 4 MiB
  const void* first = nullptr;
  {
    const Tensor a = Tensor::full({big}, 1.5);
    first = a.raw_data();
  }
  CpuMemoryStats s = cpu_memory_stats();
  REQUIRE(s.cached == size_t(big) * 4);
  const size_t hits = s.cache_hits;
  {
    const Tensor b = Tensor::zeros({big - 100});  // rounds to the same block
    REQUIRE(b.raw_data() == first);
    REQUIRE(b.at({big - 101}) == 0.0);  // a reused block is filled like a new one
    REQUIRE(cpu_memory_stats().cache_hits == hits + 1);
    REQUIRE(cpu_memory_stats().cached == 0);
    const Tensor c = Tensor::empty({big * 2});  // more than 1/8 larger than anything cached: a new block
    REQUIRE(c.raw_data() != first);
  }
  REQUIRE(cpu_memory_stats().cached == size_t(big) * 12);
  { const Tensor small = Tensor::empty({1000}); }  // small blocks go back to malloc
  REQUIRE(cpu_memory_stats().cached == size_t(big) * 12);

  set_cpu_cache_limit(size_t(big) * 4);  // the largest blocks are freed first
  REQUIRE(cpu_memory_stats().cached == size_t(big) * 4);
  set_cpu_cache_limit(0);
  REQUIRE(cpu_memory_stats().cached == 0);
  { const Tensor d = Tensor::empty({big}); }
  REQUIRE(cpu_memory_stats().cached == 0);  // off: nothing is kept
  set_cpu_cache_limit(limit);
}

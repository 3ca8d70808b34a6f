// The CUDA side of the device transforms (data/cuda/device_transforms.cu) run on the CPU through
// tests/cuda_emulation/cuda_runtime.h: the transformer's buffers, uploads, cache copies, labels and its five
// kernels (as written for the GPU: grid-stride loops, per-sample offsets, the warp-shuffle luma sum and its
// atomics) give the CPU twin's bytes. What the emulation cannot show (real streams running concurrently,
// events, the device's arithmetic units) is left to the GPU tests; the kernels' arithmetic is the shared
// code of data/packed_sample.h. This program links the emulated .cu instead of the data library, so it
// builds in every configuration.
#include <cstring>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "data/device_transforms.h"
#include "data/transforms.h"
#include "tests/support/catch.h"
#include "tests/support/pattern_image.h"

using namespace thaw;
using namespace thaw::data;
using thaw::test::pattern_image;

TEST_CASE(
    "emulated CUDA device transforms give the CPU twin's bytes, skipped samples and the cache included") {
  for (const bool augment : {true, false}) {
    INFO("augment " << augment);
    TransformConfig config;
    config.crop_size = 24;
    config.resize_size = 28;
    config.augment = augment;
    const int64_t region_bytes = packed_region_bytes(config), batch = 9;
    DeviceTransformer transformer(config, region_bytes, batch, 2, Device::cuda(0));
    std::vector<Image> images;
    for (int64_t k = 0; k < batch; ++k)
      images.push_back(pattern_image(28 + 3 * k, 40 - 2 * k, uint64_t(k)));
    std::vector<uint8_t*> cached(size_t(batch), nullptr);
    for (int round = 0; round < 3; ++round) {  // round 0: windows; 1: whole images into the cache; 2: cached
      INFO("round " << round);
      const int slot = round % 2;
      transformer.wait_until_writable(slot);
      uint8_t* regions = transformer.host_regions(slot);
      std::vector<int64_t> labels;
      for (int64_t k = 0; k < batch; ++k) {
        uint8_t* region = regions + k * region_bytes;
        Generator gen{uint64_t(round), uint64_t(k)};
        const Image& image = images[size_t(k)];
        const SampleParams params = draw_sample_params(config, image.height, image.width, gen);
        if (round == 0) {
          pack_sample(image, config, params, region, region_bytes);
        } else if (round == 1) {
          cached[size_t(k)] = transformer.allocate_cache(int64_t(image.pixels.size()));
          REQUIRE(cached[size_t(k)] != nullptr);
          REQUIRE(pack_sample_for_cache(image, cached[size_t(k)], config, params, region, region_bytes) > 0);
        } else {
          pack_cached_sample(image.height, image.width, cached[size_t(k)], config, params, region,
                             region_bytes);
        }
        const bool skipped = k % 4 == 1 && round != 1;  // every image reaches the cache in round 1
        set_packed_output(region, skipped ? -1 : int32_t(labels.size()));
        if (!skipped) labels.push_back(100 + k);
      }
      const auto n = int64_t(labels.size());
      // The CPU twin on a copy of the same regions (round 1's copies into the cache happen twice: same
      // bytes).
      std::vector<uint8_t> copy(regions, regions + batch * region_bytes);
      std::vector<float> expected(size_t(n * 3 * 24 * 24));
      unpack_batch_cpu(copy.data(), region_bytes, batch, expected.data());
      Tensor out = Tensor::empty({n, 3, 24, 24});
      Tensor out_labels = Tensor::empty({n}, DType::Int64);
      std::memset(out.raw_data(), 0xFF, size_t(out.numel()) * sizeof(float));
      transformer.run(slot, batch, labels, out, out_labels);
      const std::vector<float> got = out.to_vector<float>();
      CHECK(std::memcmp(got.data(), expected.data(), expected.size() * sizeof(float)) == 0);
      CHECK(out_labels.to_vector<int64_t>() == labels);
      if (round == 2) {
        // What the cache holds is each image's bytes.
        for (int64_t k = 0; k < batch; ++k)
          CHECK(std::memcmp(cached[size_t(k)], images[size_t(k)].pixels.data(),
                            images[size_t(k)].pixels.size()) == 0);
      }
    }
    const DeviceTransformer::Times times = transformer.times();
    CHECK(times.batches == 3);
  }
}

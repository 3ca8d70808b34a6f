// The threaded Loader (data/loader.h) on tiny datasets the tests write as BMP files: batch shapes and
// dtypes, each sample once per epoch in the seeded order, bit-identical batches for any thread count (with
// and without the decoded-image cache), explicit orders, bad files (skipped and counted, or an error naming
// the file), and prompt shutdown mid-epoch. Plus a run over pets-mini's real files when it is present, and
// a CUDA target when a GPU is. The device transforms (data/device_transforms.h) and the decoded-image cache
// on the device give the CPU loader's batches bit for bit, on the CPU target (the consumer expands them) and
// on CUDA (the kernels do). And `thaw data download`'s offline half (data/download.h): digests,
// verify-and-unpack of archives the tests build with tar (good, corrupted, truncated, wrong layout), and the
// no-network message.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "data/download.h"
#include "data/loader.h"
#include "tests/support/catch.h"
#include "tests/support/cuda.h"
#include "tests/support/scratch.h"

namespace fs = std::filesystem;
using namespace thaw;
using namespace thaw::data;

namespace {

using test::TempDir;

void put_u16(std::ofstream& f, uint16_t v) {
  const char b[2] = {char(v & 0xff), char(v >> 8)};
  f.write(b, 2);
}
void put_u32(std::ofstream& f, uint32_t v) {
  const char b[4] = {char(v & 0xff), char((v >> 8) & 0xff), char((v >> 16) & 0xff), char(v >> 24)};
  f.write(b, 4);
}

// A 24-bit uncompressed BMP with a pattern that depends on `seed`, so each file has different content.
void write_bmp(const fs::path& path, int width, int height, int seed) {
  std::ofstream f(path, std::ios::binary);
  const int row_bytes = (width * 3 + 3) / 4 * 4;
  const uint32_t data_bytes = uint32_t(row_bytes * height);
  f.write("BM", 2);
  put_u32(f, 54 + data_bytes);
  put_u32(f, 0);
  put_u32(f, 54);
  put_u32(f, 40);  // BITMAPINFOHEADER
  put_u32(f, uint32_t(width));
  put_u32(f, uint32_t(height));  // positive: rows bottom-up
  put_u16(f, 1);
  put_u16(f, 24);
  put_u32(f, 0);  // BI_RGB
  put_u32(f, data_bytes);
  put_u32(f, 2835);
  put_u32(f, 2835);
  put_u32(f, 0);
  put_u32(f, 0);
  std::vector<char> row(size_t(row_bytes), 0);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      row[size_t(x * 3 + 0)] = char((x * 7 + seed * 31) & 0xff);        // B
      row[size_t(x * 3 + 1)] = char((y * 5 + seed * 17) & 0xff);        // G
      row[size_t(x * 3 + 2)] = char(((x ^ y) * 3 + seed * 53) & 0xff);  // R
    }
    f.write(row.data(), row_bytes);
  }
}

// n BMP files of varying sizes (all larger than `min_side`), label = i % 3.
std::vector<LoaderSample> write_dataset(const fs::path& dir, int n, int min_side = 24) {
  std::vector<LoaderSample> samples;
  for (int i = 0; i < n; ++i) {
    const fs::path p = dir / ("img_" + std::to_string(i) + ".bmp");
    write_bmp(p, min_side + 3 * (i % 5) + 8, min_side + 2 * (i % 4), i);
    samples.push_back({p.string(), i % 3});
  }
  return samples;
}

LoaderOptions small_options(int threads) {
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.threads = threads;
  opt.seed = 1234;
  opt.transform.crop_size = 16;
  opt.transform.resize_size = 20;
  opt.transform.augment = true;
  opt.prefetch = 2;
  return opt;
}

struct Epoch {
  std::vector<std::vector<float>> images;
  std::vector<std::vector<int64_t>> labels;
  std::vector<int64_t> indices;  // all batches, concatenated
  std::vector<int64_t> sizes;
};

Epoch run_epoch(Loader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  Epoch out;
  Batch batch;
  while (loader.next(batch)) {
    out.images.push_back(batch.images.to_vector<float>());
    out.labels.push_back(batch.labels.to_vector<int64_t>());
    out.indices.insert(out.indices.end(), batch.indices.begin(), batch.indices.end());
    out.sizes.push_back(int64_t(batch.indices.size()));
  }
  return out;
}

}  // namespace

TEST_CASE("loader: batch shapes, dtypes and labels") {
  TempDir dir;
  const auto samples = write_dataset(dir.path, 10);
  Loader loader(samples, small_options(2));
  loader.start_epoch(0);
  CHECK(loader.batches_in_epoch() == 3);
  Batch batch;
  std::vector<int64_t> sizes;
  while (loader.next(batch)) {
    const int64_t n = int64_t(batch.indices.size());
    sizes.push_back(n);
    CHECK(batch.images.dtype() == DType::Float32);
    CHECK(batch.images.shape() == Shape{n, 3, 16, 16});
    CHECK(batch.images.device().is_cpu());
    CHECK(batch.labels.dtype() == DType::Int64);
    CHECK(batch.labels.shape() == Shape{n});
    const auto labels = batch.labels.to_vector<int64_t>();
    for (int64_t j = 0; j < n; ++j)
      CHECK(labels[size_t(j)] == samples[size_t(batch.indices[size_t(j)])].label);
    // Normalized values: (x/255 - mean)/std stays within about [-2.2, 2.7].
    const auto values = batch.images.to_vector<float>();
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    CHECK(*lo >= -2.2f);
    CHECK(*hi <= 2.7f);
  }
  CHECK(sizes == std::vector<int64_t>{4, 4, 2});
  CHECK_FALSE(loader.next(batch));  // stays over

  LoaderOptions opt = small_options(2);
  opt.drop_last = true;
  Loader dropping(samples, opt);
  const Epoch e = run_epoch(dropping, 0);
  CHECK(e.sizes == std::vector<int64_t>{4, 4});
}

TEST_CASE("loader: every sample once per epoch, in the seeded shuffle") {
  TempDir dir;
  const auto samples = write_dataset(dir.path, 11);
  LoaderOptions opt = small_options(3);
  Loader loader(samples, opt);
  std::vector<std::vector<int64_t>> orders;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const Epoch e = run_epoch(loader, epoch);
    CHECK(e.indices == shuffled_order(11, opt.seed, epoch));
    std::vector<int64_t> sorted = e.indices;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> all(11);
    for (int64_t i = 0; i < 11; ++i)
      all[size_t(i)] = i;
    CHECK(sorted == all);
    orders.push_back(e.indices);
  }
  CHECK(orders[0] != orders[1]);
  CHECK(orders[1] != orders[2]);

  // The shuffle is Fisher-Yates with Generator(seed, epoch): recompute it here.
  Generator gen(opt.seed, 1);
  std::vector<int64_t> expected(11);
  for (int64_t i = 0; i < 11; ++i)
    expected[size_t(i)] = i;
  for (int64_t i = 10; i >= 1; --i)
    std::swap(expected[size_t(i)], expected[size_t(gen.next_int(0, i + 1))]);
  CHECK(orders[1] == expected);

  opt.shuffle = false;
  Loader in_order(samples, opt);
  const Epoch e = run_epoch(in_order, 5);
  for (int64_t i = 0; i < 11; ++i)
    CHECK(e.indices[size_t(i)] == i);
}

TEST_CASE("loader: batches are bit-identical for 1 and 3 workers") {
  TempDir dir;
  const auto samples = write_dataset(dir.path, 13);
  LoaderOptions opt1 = small_options(1);
  LoaderOptions opt3 = small_options(3);
  opt3.prefetch = 3;
  Loader one(samples, opt1), three(samples, opt3);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    const Epoch a = run_epoch(one, epoch), b = run_epoch(three, epoch);
    CHECK(a.indices == b.indices);
    CHECK(a.labels == b.labels);
    REQUIRE(a.images.size() == b.images.size());
    for (size_t k = 0; k < a.images.size(); ++k)
      CHECK(a.images[k] == b.images[k]);  // exact
  }
  // Augmentation really is random: two epochs of the same sample differ.
  const Epoch e0 = run_epoch(one, 0), e1 = run_epoch(one, 1);
  CHECK(e0.images != e1.images);
}

TEST_CASE("loader: the decoded-image cache gives the same batches for any thread count") {
  TempDir dir;
  const auto samples = write_dataset(dir.path, 9, 40);  // shorter sides 40..46 > S = 20: cached downscaled
  LoaderOptions opt1 = small_options(1), opt3 = small_options(3);
  opt1.cache = opt3.cache = true;
  Loader one(samples, opt1), three(samples, opt3);
  run_epoch(one, 0);
  run_epoch(three, 0);
  LoaderStats s = three.stats();
  CHECK(s.decoded == 9);
  CHECK(s.cache_hits == 0);
  CHECK(s.cached_images == 9);
  CHECK(s.cached_bytes > 0);
  const Epoch a = run_epoch(one, 1), b = run_epoch(three, 1);
  s = three.stats();
  CHECK(s.decoded == 9);  // epoch 1 decoded nothing
  CHECK(s.cache_hits == 9);
  CHECK(a.indices == b.indices);
  CHECK(a.images == b.images);

  // Hits and misses give the same images: a fresh cached loader's first epoch 1 equals the warm one's.
  Loader fresh(samples, opt3);
  const Epoch c = run_epoch(fresh, 1);
  CHECK(c.images == a.images);
  CHECK(fresh.stats().cache_hits == 0);
  INFO(three.stats().summary());
  CHECK_THAT(three.stats().summary(), ContainsSubstring("from the cache"));
}

TEST_CASE(
    "loader: a bounded cache keeps what fits, decodes the rest every epoch, and gives the same batches") {
  TempDir dir;
  const auto samples = write_dataset(dir.path, 9, 40);  // each cached image: 20 x 2x x 3 bytes, x >= 20
  LoaderOptions bounded = small_options(2), unbounded = small_options(2);
  bounded.cache = unbounded.cache = true;
  Loader all(samples, unbounded);
  run_epoch(all, 0);
  const int64_t total = all.stats().cached_bytes;
  bounded.cache_max_bytes = total / 2;
  Loader some(samples, bounded);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    INFO("epoch " << epoch);
    const Epoch a = run_epoch(all, epoch), b = run_epoch(some, epoch);
    CHECK(a.indices == b.indices);
    CHECK(a.images == b.images);  // cached or not, every image is downscaled to S alike
  }
  const LoaderStats s = some.stats();
  CHECK(s.cached_bytes <= total / 2);
  CHECK(s.cached_images > 0);
  CHECK(s.cached_images < 9);
  CHECK(s.cache_full_decodes == 3 * (9 - s.cached_images));  // the others, decoded in each of 3 epochs
  CHECK(s.decoded == s.cached_images + s.cache_full_decodes);
  CHECK_THAT(s.summary(), ContainsSubstring("the cache is full"));
}

TEST_CASE("loader: an explicit index order is honoured, repeats augmented differently") {
  TempDir dir;
  const auto samples = write_dataset(dir.path, 6);
  LoaderOptions opt = small_options(2);
  opt.batch_size = 3;
  Loader loader(samples, opt);
  const std::vector<int64_t> order = {3, 3, 0, 5, 3, 1, 1};
  loader.start_epoch(0, order);
  CHECK(loader.batches_in_epoch() == 3);
  std::vector<int64_t> seen;
  std::vector<std::vector<float>> images;
  Batch batch;
  while (loader.next(batch)) {
    seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
    const auto v = batch.images.to_vector<float>();
    const size_t per = 3 * 16 * 16;
    for (size_t j = 0; j < batch.indices.size(); ++j)
      images.emplace_back(v.begin() + long(j * per), v.begin() + long((j + 1) * per));
  }
  CHECK(seen == order);
  CHECK(images[0] != images[1]);  // sample 3, first and second occurrence
  CHECK(images[1] != images[4]);

  // The first occurrence is the same as in a shuffled epoch (the per-sample stream does not depend on order).
  Loader plain(samples, opt);
  plain.start_epoch(0, {3});
  REQUIRE(plain.next(batch));
  CHECK(batch.images.to_vector<float>() == images[0]);

  CHECK_THROWS_WITH(loader.start_epoch(1, {0, 6}), ContainsSubstring("order[1] = 6"));
}

TEST_CASE("loader: skip_bad counts a zero-byte file and a text file named .jpg") {
  TempDir dir;
  auto samples = write_dataset(dir.path, 8);
  const fs::path empty = dir.path / "empty.jpg", text = dir.path / "notes.jpg";
  std::ofstream(empty, std::ios::binary).close();
  std::ofstream(text) << "this is not an image\n";
  samples.insert(samples.begin() + 3, LoaderSample{empty.string(), 1});
  samples.push_back({text.string(), 2});  // 10 samples

  LoaderOptions opt = small_options(2);
  opt.skip_bad = true;
  Loader loader(samples, opt);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    const Epoch e = run_epoch(loader, epoch);
    CHECK(e.indices.size() == 8);
    for (int64_t i : e.indices) {
      CHECK(i != 3);
      CHECK(i != 9);
    }
  }
  const LoaderStats s = loader.stats();
  CHECK(s.skipped == 4);  // two files, two epochs
  CHECK(s.bad_files == std::vector<std::string>{empty.string(), text.string()});
  CHECK_THAT(s.summary(), ContainsSubstring("notes.jpg"));
  CHECK_THAT(s.summary(), ContainsSubstring("2 undecodable file(s)"));

  // A batch made only of bad files is skipped, not returned empty.
  Loader only_bad(samples, opt);
  only_bad.start_epoch(0, {3, 9, 3, 9, 0});
  Batch batch;
  REQUIRE(only_bad.next(batch));
  CHECK(batch.indices == std::vector<int64_t>{0});
  CHECK_FALSE(only_bad.next(batch));

  // Without skip_bad, next() throws naming the file, and the epoch is over.
  opt.skip_bad = false;
  opt.shuffle = false;
  Loader strict(samples, opt);
  strict.start_epoch(0);  // in order: the first batch holds sample 3, the zero-byte file
  bool threw = false;
  try {
    strict.next(batch);
  } catch (const Error& e) {
    threw = true;
    CHECK_THAT(std::string(e.what()), ContainsSubstring(empty.string()));
  }
  CHECK(threw);
  CHECK_FALSE(strict.next(batch));
  // The loader is still usable: an epoch over good files only.
  strict.start_epoch(1, {0, 1, 2});
  REQUIRE(strict.next(batch));
  CHECK(batch.indices.size() == 3);

  // The text file: named too.
  strict.start_epoch(2, {9});
  CHECK_THROWS_WITH(strict.next(batch), ContainsSubstring(text.string()));
}

TEST_CASE("loader: destroying it or starting a new epoch mid-epoch stops the old epoch's work") {
  TempDir dir;
  // 400 samples over 4 large files: an epoch is seconds of work. Cancelling it finishes at most the image
  // each worker is on; what is checked is how many images were decoded, not how long it took (no wall-clock
  // assertions: a loaded machine would make them flaky). A destructor that did not stop its workers would
  // decode the whole epoch first, and one that did not join them would be caught by the sanitizer build.
  std::vector<LoaderSample> samples;
  for (int i = 0; i < 4; ++i)
    write_bmp(dir.path / ("big_" + std::to_string(i) + ".bmp"), 1280, 960, i);
  for (int i = 0; i < 400; ++i)
    samples.push_back({(dir.path / ("big_" + std::to_string(i % 4) + ".bmp")).string(), i % 4});
  LoaderOptions opt = small_options(3);
  opt.batch_size = 2;
  opt.transform.crop_size = 128;
  opt.transform.resize_size = 146;
  opt.prefetch = 3;
  // What may be decoded ahead of the consumer: the prefetched batches and one image per worker.
  const int64_t ahead = opt.prefetch * opt.batch_size + opt.threads;
  for (int trial = 0; trial < 6; ++trial) {
    opt.device_transforms = trial >= 3;  // the same with the workers packing for the device transforms
    INFO("device_transforms " << opt.device_transforms);
    auto loader = std::make_unique<Loader>(samples, opt);
    loader->start_epoch(trial);
    Batch batch;
    if (trial % 3 > 0) REQUIRE(loader->next(batch));  // trials 0, 3: destroyed before any batch is taken
    if (trial % 3 == 2) {
      // A new epoch while the old one's workers are busy; it starts over and runs to its end, and the old
      // epoch's images beyond those in flight are never decoded.
      const int64_t before = loader->stats().decoded;
      std::vector<int64_t> order(20);
      for (int64_t i = 0; i < 20; ++i)
        order[size_t(i)] = 399 - i;
      loader->start_epoch(7, order);
      std::vector<int64_t> seen;
      while (loader->next(batch))
        seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
      CHECK(seen == order);
      const int64_t decoded = loader->stats().decoded - before;
      INFO(decoded << " images decoded from the new epoch's start to its end (20 in the epoch)");
      CHECK(decoded <= 20 + ahead);
      loader->start_epoch(8);
      REQUIRE(loader->next(batch));
    }
    const int64_t loaded = loader->stats().decoded;
    INFO("trial " << trial << ": " << loaded << " images of 400 decoded before the loader was destroyed");
    if (opt.device_transforms && trial % 3 > 0) CHECK(loader->stats().packed > 0);
    CHECK(loaded <= 20 + 3 * ahead);
    loader.reset();
  }
  { Loader idle(samples, opt); }  // constructed and destroyed without any epoch
}

TEST_CASE("loader: options are checked") {
  TempDir dir;
  const auto samples = write_dataset(dir.path, 2);
  LoaderOptions opt = small_options(1);
  CHECK_THROWS_WITH(Loader({}, opt), ContainsSubstring("empty"));
  opt.batch_size = 0;
  CHECK_THROWS_WITH(Loader(samples, opt), ContainsSubstring("batch_size"));
  opt = small_options(0);
  CHECK_THROWS_WITH(Loader(samples, opt), ContainsSubstring("threads"));
  Loader loader(samples, small_options(1));
  Batch batch;
  CHECK_THROWS_WITH(loader.next(batch), ContainsSubstring("start_epoch"));
  if (!cuda_runtime::built_with_cuda()) {
    opt = small_options(1);
    opt.device = Device::cuda(0);
    CHECK_THROWS_WITH(Loader(samples, opt), ContainsSubstring("without the CUDA backend"));
  }
}

TEST_CASE("loader: batches on a CUDA device equal the CPU's") {
  THAW_SKIP_WITHOUT_CUDA("the loader's CUDA target");
  TempDir dir;
  auto samples = write_dataset(dir.path, 10);
  const fs::path empty = dir.path / "empty.jpg";
  std::ofstream(empty, std::ios::binary).close();
  samples.push_back({empty.string(), 0});
  LoaderOptions cpu = small_options(2);
  cpu.skip_bad = true;  // exercise the compaction in pinned memory too
  LoaderOptions gpu = cpu;
  gpu.device = Device::cuda(0);
  Loader a(samples, cpu), b(samples, gpu);
  a.start_epoch(0);
  b.start_epoch(0);
  Batch x, y;
  while (a.next(x)) {
    REQUIRE(b.next(y));
    CHECK(y.images.device() == Device::cuda(0));
    CHECK(y.labels.device() == Device::cuda(0));
    CHECK(x.indices == y.indices);
    CHECK(x.images.to_vector<float>() == y.images.to_vector<float>());
    CHECK(x.labels.to_vector<int64_t>() == y.labels.to_vector<int64_t>());
  }
  CHECK_FALSE(b.next(y));
}

namespace {

// Runs `epochs` epochs of both loaders (each in the seeded shuffle, then one explicit order with repeats)
// and checks that their batches are identical.
void check_same_batches(const std::vector<LoaderSample>& samples, const LoaderOptions& reference,
                        const LoaderOptions& other, int64_t epochs) {
  Loader a(samples, reference), b(samples, other);
  std::vector<int64_t> repeats;
  for (int64_t i = 0; i < int64_t(samples.size()); ++i)
    repeats.insert(repeats.end(), {i, int64_t(samples.size()) - 1 - i, i});
  for (int64_t epoch = 0; epoch <= epochs; ++epoch) {
    if (epoch < epochs) {
      a.start_epoch(epoch);
      b.start_epoch(epoch);
    } else {
      a.start_epoch(epoch, repeats);
      b.start_epoch(epoch, repeats);
    }
    Batch x, y;
    int64_t batches = 0;
    while (a.next(x)) {
      INFO("epoch " << epoch << ", batch " << batches);
      REQUIRE(b.next(y));
      CHECK(y.images.device() == other.device);
      CHECK(y.labels.device() == other.device);
      CHECK(x.indices == y.indices);
      CHECK(x.images.shape() == y.images.shape());
      CHECK(x.images.to_vector<float>() == y.images.to_vector<float>());
      CHECK(x.labels.to_vector<int64_t>() == y.labels.to_vector<int64_t>());
      ++batches;
    }
    CHECK(batches > 0);
    CHECK_FALSE(b.next(y));
  }
  CHECK(a.stats().packed == 0);
  if (other.device_transforms) CHECK(b.stats().packed > 0);
}

// A dataset with images larger than the cache's S = 20 (downscaled) and smaller, and two bad files.
std::vector<LoaderSample> dataset_with_bad_files(const fs::path& dir) {
  auto samples = write_dataset(dir, 13, 14);
  const fs::path empty = dir / "empty.jpg", text = dir / "notes.jpg";
  std::ofstream(empty, std::ios::binary).close();
  std::ofstream(text) << "this is not an image\n";
  samples.insert(samples.begin() + 5, LoaderSample{empty.string(), 1});
  samples.push_back({text.string(), 2});
  return samples;
}

// The CPU loader the device paths are held to: workers, the decoded cache, bad files skipped.
LoaderOptions cached_reference(bool augment) {
  LoaderOptions reference = small_options(2);
  reference.transform.augment = augment;
  reference.cache = true;
  reference.skip_bad = true;
  return reference;
}

}  // namespace

TEST_CASE("loader: device transforms on the CPU give the cached loader's batches, skipped files included") {
  TempDir dir;
  const auto samples = dataset_with_bad_files(dir.path);
  for (const bool augment : {true, false}) {
    const LoaderOptions reference = cached_reference(augment);
    for (const int threads : {1, 3}) {
      for (const int64_t cache_max_bytes : {int64_t(-1), int64_t(0), int64_t(4000)}) {
        // -1: no cache; 0: an unbounded one; 4000 bytes: room for two or three images, the rest decoded
        // again every epoch.
        INFO("augment " << augment << ", " << threads << " threads, cache bound " << cache_max_bytes);
        LoaderOptions packed = reference;
        packed.threads = threads;
        packed.cache = cache_max_bytes >= 0;
        packed.cache_max_bytes = std::max<int64_t>(cache_max_bytes, 0);
        packed.device_transforms = true;
        check_same_batches(samples, reference, packed, 2);
      }
    }
  }
}

TEST_CASE(
    "loader: the decoded-image cache on the device gives the same batches and decodes each image once") {
  TempDir dir;
  const auto samples = dataset_with_bad_files(dir.path);  // 13 good images, 2 bad files
  for (const bool augment : {true, false}) {
    const LoaderOptions reference = cached_reference(augment);
    for (const int threads : {1, 3}) {
      INFO("augment " << augment << ", " << threads << " threads");
      LoaderOptions on_device = reference;
      on_device.threads = threads;
      on_device.device_transforms = true;
      on_device.cache_on_device = true;
      check_same_batches(samples, reference, on_device, 3);
      // Each good image was decoded once (the first epoch), then taken from the device cache.
      Loader loader(samples, on_device);
      run_epoch(loader, 0);
      run_epoch(loader, 1);
      const LoaderStats stats = loader.stats();
      CHECK(stats.decoded == 13);
      CHECK(stats.device_cached_images == 13);
      CHECK(stats.cache_hits == 13);
      CHECK(stats.cached_images == 0);  // nothing kept in RAM
      CHECK(stats.cache_full_decodes == 0);
      CHECK_THAT(stats.summary(), ContainsSubstring("the decoded-image cache is on the device: 13 images"));
    }
  }
}

TEST_CASE("loader: the device cache at its bound, and after a cancelled epoch, keeps the batches") {
  TempDir dir;
  const auto samples = dataset_with_bad_files(dir.path);
  const LoaderOptions reference = cached_reference(true);
  LoaderOptions bounded = reference;
  bounded.device_transforms = true;
  bounded.cache_on_device = true;
  bounded.cache_max_bytes = 4000;  // two or three of the 20x26-ish images; the rest decoded every epoch
  check_same_batches(samples, reference, bounded, 2);
  {
    Loader loader(samples, bounded);
    run_epoch(loader, 0);
    run_epoch(loader, 1);
    const LoaderStats stats = loader.stats();
    CHECK(stats.device_cached_images >= 1);
    CHECK(stats.device_cached_images < 13);
    CHECK(stats.device_cached_bytes <= 4000);
    CHECK(stats.cache_full_decodes > 0);
    CHECK(stats.decoded == 13 + (13 - stats.device_cached_images));
  }
  // An epoch cancelled after its first batch leaves images half-way (travelling whole in batches that are
  // never expanded); the next epochs must still see every image, cached or not.
  LoaderOptions on_device = reference;
  on_device.device_transforms = true;
  on_device.cache_on_device = true;
  on_device.prefetch = 3;
  Loader a(samples, reference), b(samples, on_device);
  Batch x, y;
  b.start_epoch(0);
  REQUIRE(b.next(y));
  for (int64_t epoch = 1; epoch < 4; ++epoch) {
    a.start_epoch(epoch);
    b.start_epoch(epoch);
    while (a.next(x)) {
      REQUIRE(b.next(y));
      CHECK(x.indices == y.indices);
      CHECK(x.images.to_vector<float>() == y.images.to_vector<float>());
    }
    CHECK_FALSE(b.next(y));
  }
  CHECK(b.stats().device_cached_images == 13);
}

TEST_CASE("loader: cache_on_device needs the cache and the device transforms") {
  TempDir dir;
  const auto samples = write_dataset(dir.path, 3);
  LoaderOptions opt = small_options(1);
  opt.cache_on_device = true;
  CHECK_THROWS_WITH(Loader(samples, opt), ContainsSubstring("cache_on_device"));
  opt.cache = true;
  CHECK_THROWS_WITH(Loader(samples, opt), ContainsSubstring("device_transforms"));
}

TEST_CASE("loader: device transforms on a CUDA device give the CPU loader's batches") {
  THAW_SKIP_WITHOUT_CUDA("the loader's device transforms");
  TempDir dir;
  const auto samples = dataset_with_bad_files(dir.path);
  for (const bool augment : {true, false}) {
    INFO("augment " << augment);
    const LoaderOptions reference = cached_reference(augment);
    LoaderOptions gpu = reference;
    gpu.device = Device::cuda(0);
    gpu.device_transforms = true;
    gpu.prefetch = 3;
    check_same_batches(samples, reference, gpu, 3);
    gpu.cache_on_device = true;  // the decoded images in device memory, uploaded once
    check_same_batches(samples, reference, gpu, 3);
  }
}

// THAW_TEST_JPEGS names another folder of pet JPEGs (scripts/gpu-check.sh points it at the subset it carries
// to a GPU machine, which has no pets-mini).
TEST_CASE("loader: device transforms on pets-mini's JPEGs at 224, on the CPU and on a CUDA device") {
  const char* other = std::getenv("THAW_TEST_JPEGS");
  if (other == nullptr) REQUIRE_PETS_MINI();
  const fs::path folder = other != nullptr ? fs::path(other) : test::pets_mini_dir() / "images";
  std::vector<LoaderSample> samples;
  for (const auto& entry : fs::directory_iterator(folder))
    samples.push_back({entry.path().string(), int64_t(samples.size() % 37)});
  std::sort(samples.begin(), samples.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  REQUIRE(samples.size() >= 40);
  samples.resize(40);
  LoaderOptions reference;
  reference.batch_size = 16;
  reference.threads = 2;
  reference.seed = 7;
  reference.transform.augment = true;
  reference.cache = true;
  reference.skip_bad = true;  // pets-mini keeps the release's odd files; whatever they are, both paths agree
  LoaderOptions packed = reference;
  packed.device_transforms = true;
  check_same_batches(samples, reference, packed, 1);
  LoaderOptions on_device = packed;
  on_device.cache_on_device = true;
  check_same_batches(samples, reference, on_device, 1);
  if (cuda_runtime::built_with_cuda() && cuda_runtime::device_count() > 0) {
    packed.device = on_device.device = Device::cuda(0);
    check_same_batches(samples, reference, packed, 2);
    check_same_batches(samples, reference, on_device, 2);
  }
}

TEST_CASE("loader: pets-mini's real files, odd formats included") {
  const fs::path root = test::pets_mini_dir();
  if (!fs::exists(root / "images")) THAW_SKIP("pets-mini not found at " << root.string() << ": test skipped");
  // The two odd files (a GIF and an RGBA PNG named .jpg) and some ordinary JPEGs.
  std::vector<LoaderSample> samples = {{(root / "images/Abyssinian_34.jpg").string(), 0},
                                       {(root / "images/Abyssinian_5.jpg").string(), 0}};
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root / "images"))
    names.push_back(entry.path().string());
  std::sort(names.begin(), names.end());
  for (size_t i = 0; i < names.size() && samples.size() < 30; i += 31)
    samples.push_back({names[i], int64_t(i % 37)});
  LoaderOptions opt;
  opt.batch_size = 8;
  opt.threads = 2;
  opt.transform.augment = true;
  opt.cache = true;
  Loader loader(samples, opt);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    const Epoch e = run_epoch(loader, epoch);
    CHECK(int64_t(e.indices.size()) == int64_t(samples.size()));
  }
  const LoaderStats s = loader.stats();
  CHECK(s.decoded == int64_t(samples.size()));
  CHECK(s.cache_hits == int64_t(samples.size()));
  CHECK(s.skipped == 0);
}

// ---- thaw data download --------------------------------------------------------------------------------

namespace {

std::string run_and_read(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    out.append(buf, n);
  ::pclose(pipe);
  return out;
}

// A tiny dataset in the official layout, packed as images.tar.gz and annotations.tar.gz in dir/archives.
void make_pets_archives(const fs::path& dir, bool with_annotations = true) {
  const fs::path src = dir / "src";
  fs::create_directories(src / "images");
  fs::create_directories(src / "annotations");
  write_bmp(src / "images/Abyssinian_1.jpg", 20, 16, 1);
  write_bmp(src / "images/beagle_1.jpg", 18, 22, 2);
  std::ofstream(src / "annotations/list.txt") << "Abyssinian_1 1 1 1\nbeagle_1 11 2 3\n";
  std::ofstream(src / "annotations/trainval.txt") << "Abyssinian_1 1 1 1\n";
  std::ofstream(src / "annotations/test.txt") << "beagle_1 11 2 3\n";
  fs::create_directories(dir / "archives");
  const std::string a = (dir / "archives").string(), s = src.string();
  REQUIRE(std::system(("tar -czf '" + a + "/images.tar.gz' -C '" + s + "' images").c_str()) == 0);
  if (with_annotations) {
    REQUIRE(std::system(("tar -czf '" + a + "/annotations.tar.gz' -C '" + s + "' annotations").c_str()) == 0);
  } else {
    REQUIRE(std::system(("tar -czf '" + a + "/annotations.tar.gz' -C '" + s + "' images").c_str()) == 0);
  }
}

std::string sha256sum_of(const fs::path& file) {
  return run_and_read("sha256sum '" + file.string() + "'").substr(0, 64);
}

}  // namespace

TEST_CASE("download: MD5 and SHA-256 match the standard test vectors and coreutils") {
  TempDir vectors;
  const auto digests_of = [&](const std::string& content) {
    const fs::path file = vectors.path / "vector.bin";
    std::ofstream(file, std::ios::binary) << content;
    return file_digests(file.string());
  };
  CHECK(digests_of("").md5 == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(digests_of("abc").md5 == "900150983cd24fb0d6963f7d28e17f72");
  CHECK(digests_of("The quick brown fox jumps over the lazy dog").md5 == "9e107d9d372bb6826bd81d3542a419d6");
  CHECK(digests_of("").sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(digests_of("abc").sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(digests_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").sha256 ==  // 56 bytes
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const FileDigests million = digests_of(std::string(1000000, 'a'));
  CHECK(million.sha256 == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK(million.md5 == "7707d6ae4e027c70eea2a935c2296f21");

  TempDir dir;
  make_pets_archives(dir.path);
  const fs::path archive = dir.path / "archives/images.tar.gz";
  const FileDigests d = file_digests(archive.string());
  CHECK(d.sha256 == sha256sum_of(archive));
  CHECK(d.md5 == run_and_read("md5sum '" + archive.string() + "'").substr(0, 32));
  CHECK_THROWS_WITH(file_digests((dir.path / "missing.tar.gz").string()),
                    ContainsSubstring("missing.tar.gz"));
}

TEST_CASE("download: verify and unpack local archives into the official layout") {
  TempDir dir;
  make_pets_archives(dir.path);
  const fs::path images = dir.path / "archives/images.tar.gz",
                 annotations = dir.path / "archives/annotations.tar.gz";
  DownloadOptions opt;
  opt.dir = (dir.path / "pets").string();
  opt.from_archives = {images.string(), annotations.string()};
  opt.sha256 = {sha256sum_of(images), sha256sum_of(annotations)};
  std::vector<std::string> log;
  opt.log = [&](const std::string& line) { log.push_back(line); };
  download_pets(opt);
  CHECK(fs::is_regular_file(dir.path / "pets/images/Abyssinian_1.jpg"));
  CHECK(fs::is_regular_file(dir.path / "pets/annotations/list.txt"));
  CHECK(fs::exists(images));  // local archives stay
  bool printed_sha = false;
  for (const std::string& line : log)
    printed_sha = printed_sha || line.find(opt.sha256[0]) != std::string::npos;
  CHECK(printed_sha);
  // Upper-case hex is accepted too.
  std::string upper = opt.sha256[0];
  for (char& c : upper)
    c = char(std::toupper(static_cast<unsigned char>(c)));
  CHECK_NOTHROW(verify_and_unpack(images.string(), (dir.path / "again").string(), upper));

  SECTION("a mismatching SHA-256 is an error naming the file and both digests") {
    opt.sha256[1] = std::string(64, '0');
    try {
      download_pets(opt);
      FAIL("no error for a mismatching SHA-256");
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK_THAT(what, ContainsSubstring(annotations.string()));
      CHECK_THAT(what, ContainsSubstring("SHA-256 mismatch"));
      CHECK_THAT(what, ContainsSubstring(std::string(64, '0')));
      CHECK_THAT(what, ContainsSubstring(sha256sum_of(annotations)));
    }
  }
  SECTION("a corrupted archive fails the check before anything is unpacked") {
    const std::string good_sha = sha256sum_of(images);
    {
      std::fstream f(images, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(40);
      f.put('\x5a');
    }
    const fs::path target = dir.path / "corrupt";
    CHECK_THROWS_WITH(verify_and_unpack(images.string(), target.string(), good_sha),
                      ContainsSubstring("SHA-256 mismatch"));
    CHECK_FALSE(fs::exists(target / "images"));
  }
  SECTION("official names without --sha256 are checked against the official MD5") {
    opt.sha256.clear();
    CHECK_THROWS_WITH(download_pets(opt), ContainsSubstring("MD5 mismatch with the official images.tar.gz"));
    CHECK_THROWS_WITH(download_pets(opt), ContainsSubstring("5c4f3ee8e5d25df40f4fd59a7f44e54c"));
  }
  SECTION("other names need a SHA-256") {
    const fs::path renamed = dir.path / "archives/mine.tar.gz";
    fs::copy_file(images, renamed);
    CHECK_THROWS_WITH(verify_and_unpack(renamed.string(), (dir.path / "x").string(), ""),
                      ContainsSubstring("no SHA-256 was given"));
  }
  SECTION("a truncated archive is a clear error from tar") {
    const auto size = fs::file_size(images);
    fs::resize_file(images, size / 2);
    try {
      verify_and_unpack(images.string(), (dir.path / "truncated").string(), sha256sum_of(images));
      FAIL("no error for a truncated archive");
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK_THAT(what, ContainsSubstring("could not unpack " + images.string()));
      CHECK_THAT(what, ContainsSubstring("truncated or corrupt"));
    }
  }
  SECTION("the count of --sha256 values must match the archives") {
    opt.sha256.pop_back();
    CHECK_THROWS_WITH(download_pets(opt), ContainsSubstring("1 SHA-256 value(s) given for 2 archive(s)"));
  }
}

TEST_CASE("download: archives without the official layout are an error") {
  TempDir dir;
  make_pets_archives(dir.path, false);  // "annotations.tar.gz" holds images/ again
  DownloadOptions opt;
  opt.dir = (dir.path / "pets").string();
  for (const char* name : {"images.tar.gz", "annotations.tar.gz"}) {
    const fs::path p = dir.path / "archives" / name;
    opt.from_archives.push_back(p.string());
    opt.sha256.push_back(sha256sum_of(p));
  }
  CHECK_THROWS_WITH(download_pets(opt), ContainsSubstring("does not have the official layout"));
  CHECK_THROWS_WITH(download_pets(opt), ContainsSubstring("annotations/list.txt"));
}

TEST_CASE("download: without network the error says what to do instead") {
  TempDir dir;
  DownloadOptions opt;
  opt.dir = (dir.path / "pets").string();
  // Port 9 on the loopback: refused at once (stands in for "no network").
  opt.archives = {{"images.tar.gz", {"http://127.0.0.1:9/images.tar.gz"}, "00"}};
  try {
    download_pets(opt);
    FAIL("no error without a server");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, ContainsSubstring("could not download images.tar.gz"));
    CHECK_THAT(what, ContainsSubstring("--from-archives"));
    CHECK_THAT(what, ContainsSubstring("tar -xzf"));
  }
  CHECK_FALSE(fs::exists(dir.path / "pets/images.tar.gz"));
}

// thaw bench loader (bench/loader.h).
#include "bench/loader.h"

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/atomic_write.h"
#include "core/error.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/pets.h"

namespace thaw::bench {

void run_loader(const LoaderBenchOptions& opt) {
  const data::PetsDataset pets = data::read_pets(opt.data);
  std::vector<data::LoaderSample> samples;
  for (const data::PetSample& s : pets.all) {
    if (opt.limit > 0 && int64_t(samples.size()) >= opt.limit) break;
    samples.push_back({pets.image_path(s), data::label_of(s, data::Task::Breeds)});
  }
  data::LoaderOptions lo;
  lo.batch_size = opt.batch;
  lo.threads = opt.threads;
  lo.seed = 0;
  lo.transform.crop_size = opt.size;
  lo.transform.augment = true;
  lo.cache = !opt.no_cache;
  data::Loader loader(samples, lo);

  fmt::print(
      "thaw loader: {} images of {}, batch {}, {}x{} training augmentation, {} worker thread(s), "
      "cache {}, JPEG decoder {}\n",
      samples.size(), opt.data, opt.batch, opt.size, opt.size, opt.threads, lo.cache ? "on" : "off",
      data::jpeg_decoder_name());
  fmt::print("{:>6} {:>10} {:>10} {:>10} {:>12}\n", "epoch", "seconds", "img/s", "decoded", "cache hits");
  nlohmann::json rows = nlohmann::json::array();
  int64_t decoded_before = 0, hits_before = 0;
  for (int epoch = 0; epoch < opt.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    loader.start_epoch(epoch);
    data::Batch batch;
    int64_t images = 0;
    while (loader.next(batch)) {
      // Check before counting: every batch has the promised shape and labels.
      const int64_t n = batch.images.size(0);
      THAW_CHECK(batch.images.shape() == (Shape{n, 3, opt.size, opt.size}) && batch.labels.numel() == n,
                 "bench loader: unexpected batch {}", batch.images.desc());
      images += n;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const data::LoaderStats stats = loader.stats();
    THAW_CHECK(images == int64_t(samples.size()), "bench loader: epoch {} delivered {} images of {}", epoch,
               images, samples.size());
    const int64_t decoded = stats.decoded - decoded_before, hits = stats.cache_hits - hits_before;
    decoded_before = stats.decoded, hits_before = stats.cache_hits;
    fmt::print("{:>6} {:>10.2f} {:>10.1f} {:>10} {:>12}\n", epoch, seconds, double(images) / seconds, decoded,
               hits);
    rows.push_back({{"epoch", epoch},
                    {"seconds", seconds},
                    {"images", images},
                    {"images_per_s", double(images) / seconds},
                    {"decoded", decoded},
                    {"cache_hits", hits}});
  }
  fmt::print("{}", loader.stats().summary());
  if (!opt.json_path.empty()) {
    write_text_atomic(opt.json_path, nlohmann::json{{"threads", opt.threads},
                                                    {"batch", opt.batch},
                                                    {"size", opt.size},
                                                    {"cache", lo.cache},
                                                    {"images", samples.size()},
                                                    {"jpeg_decoder", data::jpeg_decoder_name()},
                                                    {"epochs", rows}}
                                             .dump(2) +
                                         "\n");
  }
}

}  // namespace thaw::bench

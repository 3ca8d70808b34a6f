// thaw bench loader: images/s of the data loader (data/loader.h) over a dataset in the official layout, with
// the report's training augmentation, per epoch: the first epoch decodes every JPEG, later ones take the
// decoded images from the cache. bench/loader_cpu.py runs it beside torchvision's DataLoader.
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "core/error.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/pets.h"

namespace thaw::apps {

namespace {

struct LoaderBenchOptions {
  std::string data;
  int threads = 1;
  int epochs = 3;
  int64_t batch = 32;
  int64_t size = 224;
  int64_t limit = 0;  // use only the first `limit` images of list.txt (0: all)
  bool no_cache = false;
  std::string json_path;
};

void run_bench_loader(const LoaderBenchOptions& opt) {
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
    std::ofstream out(opt.json_path);
    THAW_CHECK(out.good(), "cannot write {}", opt.json_path);
    out << nlohmann::json{{"threads", opt.threads},
                          {"batch", opt.batch},
                          {"size", opt.size},
                          {"cache", lo.cache},
                          {"images", samples.size()},
                          {"jpeg_decoder", data::jpeg_decoder_name()},
                          {"epochs", rows}}
               .dump(2)
        << "\n";
  }
}

}  // namespace

void add_bench_loader_command(CLI::App& bench) {
  auto opt = std::make_shared<LoaderBenchOptions>();
  auto* cmd = bench.add_subcommand(
      "loader", "data loader images/s per epoch (first epoch decodes, later ones use the cache)");
  cmd->add_option("--data", opt->data, "dataset directory in the official layout (e.g. pets-mini)")
      ->required();
  cmd->add_option("--threads", opt->threads, "worker threads")->check(CLI::Range(1, 1024));
  cmd->add_option("--epochs", opt->epochs, "epochs to time")->check(CLI::Range(1, 1000));
  cmd->add_option("--batch", opt->batch, "batch size")->check(CLI::Range(1, 4096));
  cmd->add_option("--size", opt->size, "crop size")->check(CLI::Range(8, 1024));
  cmd->add_option("--limit", opt->limit, "use only the first N images of list.txt");
  cmd->add_flag("--no-cache", opt->no_cache, "decode every epoch");
  cmd->add_option("--json", opt->json_path, "also write the results as JSON to this file");
  cmd->callback([opt] { run_bench_loader(*opt); });
}

}  // namespace thaw::apps

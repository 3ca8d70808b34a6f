// thaw bench train (bench/train_run.h).
#include "bench/train_run.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_write.h"
#include "core/error.h"
#include "train/trainer.h"

namespace thaw::bench {

namespace {

// Removes the temporary run directory however the bench ends.
struct TempRunDir {
  std::filesystem::path path;
  ~TempRunDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

double percent(double part, double whole) {
  return whole > 0 ? 100.0 * part / whole : 0.0;
}

}  // namespace

void run_train_bench(const TrainBenchOptions& opt) {
  const TempRunDir dir{std::filesystem::temp_directory_path() / fmt::format("thaw-bench-train-{}", getpid())};
  train::Overrides overrides = opt.overrides;
  overrides.push_back({"runs_dir", dir.path.string()});
  overrides.push_back({"name", "bench"});
  const train::TrainConfig c = train::load_train_config(opt.config_path, overrides);
  const std::string trains =
      c.trainable == "last_layers" ? fmt::format("last_layers (l = {})", c.layers) : c.trainable;
  fmt::print("thaw bench train: {} {}, trains {}, {}x{}, batch {}, augment {}, bn_mode {}, {}, {} epochs\n",
             c.arch, c.task, trains, c.image_size, c.image_size, c.batch_size, c.augment ? "on" : "off",
             c.bn_mode, c.device, c.epochs);
  const auto start = std::chrono::steady_clock::now();
  THAW_CHECK(train::run_training(c, false, {.brief = true}) == train::TrainStatus::Completed,
             "bench train: the run was interrupted");
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::ifstream in(dir.path / "bench" / "summary.json");
  const nlohmann::json summary = nlohmann::json::parse(in);
  const nlohmann::json& times = summary["times"];
  const int64_t train_images = summary["images"]["train"].get<int64_t>();
  double data_s = 0, compute_s = 0;
  nlohmann::json epochs = nlohmann::json::array();
  fmt::print("\n{:>5} {:>9} {:>9} {:>22} {:>16}\n", "epoch", "train s", "img/s", "waiting for the loader",
             "computing");
  for (const nlohmann::json& e : summary["history"]) {
    const double d = e["data_s"].get<double>(), k = e["compute_s"].get<double>();
    data_s += d, compute_s += k;
    fmt::print("{:>5} {:>9.3f} {:>9.1f} {:>14.3f} s {:>3.0f}% {:>8.3f} s {:>3.0f}%\n",
               e["epoch"].get<int64_t>(), d + k, e["images_per_s"].get<double>(), d, percent(d, d + k), k,
               percent(k, d + k));
    epochs.push_back(
        {{"epoch", e["epoch"]}, {"data_s", d}, {"compute_s", k}, {"images_per_s", e["images_per_s"]}});
  }
  const double loop_s = data_s + compute_s;
  const double images_per_s = loop_s > 0 ? double(train_images * c.epochs) / loop_s : 0.0;
  fmt::print("{:>5} {:>9.3f} {:>9.1f} {:>14.3f} s {:>3.0f}% {:>8.3f} s {:>3.0f}%\n\n", "all", loop_s,
             images_per_s, data_s, percent(data_s, loop_s), compute_s, percent(compute_s, loop_s));
  const double decode = times["train_decode_worker_s"].get<double>();
  const double transform = times["train_transform_worker_s"].get<double>();
  const std::string transform_what = c.device_transforms ? "drawing and packing for the device transforms"
                                     : c.augment         ? "transforming and augmenting"
                                                         : "transforming";
  fmt::print(
      "the train loader's workers, beside the loop (seconds summed over workers): decoding {:.3f} s, {} "
      "{:.3f} s\n",
      decode, transform_what, transform);
  if (c.device_transforms && c.device != "cpu")
    fmt::print(
        "on the device (GPU time, queued beside the training kernels): uploading {:.3f} s, transforming "
        "{:.3f} s\n",
        times["train_device_upload_s"].get<double>(), times["train_device_transform_s"].get<double>());
  fmt::print("{}\n", summary["feature_cache"].get<std::string>());
  fmt::print(
      "{}: the train loops computed {:.0f}% of their time{}\n", c.device, percent(compute_s, loop_s),
      c.device == "cpu" ? "" : " (an upper bound of the device's utilization: it waited for data the rest)");
  fmt::print(
      "test accuracy {:.2f}%; the whole run took {:.1f} s (validation, test and checkpoints included)\n",
      100.0 * summary["test_accuracy"].get<double>(), wall);

  if (!opt.json_path.empty()) {
    const nlohmann::json j = {{"arch", c.arch},
                              {"trainable", trains},
                              {"image_size", c.image_size},
                              {"batch_size", c.batch_size},
                              {"augment", c.augment},
                              {"bn_mode", c.bn_mode},
                              {"device", c.device},
                              {"train_images", train_images},
                              {"epochs", epochs},
                              {"images_per_s", images_per_s},
                              {"data_s", data_s},
                              {"compute_s", compute_s},
                              {"decode_worker_s", decode},
                              {"transform_worker_s", transform},
                              {"device_transforms", c.device_transforms},
                              {"cache_on_device", c.cache_on_device},
                              {"device_upload_s", times["train_device_upload_s"]},
                              {"device_transform_s", times["train_device_transform_s"]},
                              {"feature_cache", summary["feature_cache"]},
                              {"feature_cache_s", times["feature_cache_s"]},
                              {"test_accuracy", summary["test_accuracy"]},
                              {"wall_s", wall}};
    write_text_atomic(opt.json_path, j.dump(2) + "\n");
  }
}

}  // namespace thaw::bench

// thaw bench loader: images/s of the data loader (data/loader.h) over a dataset in the official layout, with
// the report's training augmentation, per epoch: the first epoch decodes every JPEG, later ones take the
// decoded images from the cache. bench/loader_cpu.py runs it beside torchvision's DataLoader.
#pragma once

#include <cstdint>
#include <string>

namespace thaw::bench {

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

void run_loader(const LoaderBenchOptions& opt);

}  // namespace thaw::bench

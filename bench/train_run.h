// thaw bench train: one training run, end to end (JPEGs decoded, augmented, the network trained and
// evaluated), timed and taken apart: images/s, time per epoch, and where the train loops' time went
// (waiting for the loader, computing) beside what the loader's workers spent decoding and transforming, and
// the feature cache (train/feature_cache.h). The run is a `thaw train` run of CONFIG and --key value
// overrides, in a temporary run directory that is removed afterwards. bench/train_pipeline.py runs it beside
// the report's PyTorch loop on the same images.
#pragma once

#include <string>

#include "train/config.h"

namespace thaw::bench {

struct TrainBenchOptions {
  std::string config_path;  // may be empty: defaults and overrides only
  train::Overrides overrides;
  std::string json_path;  // also write the report as JSON here
};

void run_train_bench(const TrainBenchOptions& opt);

}  // namespace thaw::bench

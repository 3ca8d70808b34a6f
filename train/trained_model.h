// A weights file written by `thaw train`, loaded for use: what `thaw predict` and `thaw eval` share, so that
// they accept and refuse the same files with the same messages. And `thaw eval` itself: the accuracy of such
// a file on a split of the dataset (docs/training.md, "thaw eval").
//
// The file is models::save_weights' output; `thaw train` adds root attributes task (breeds|species),
// image_size, class_names ('\n'-joined in label order) and head (softmax | sigmoid). Each is optional here
// (predict also reads torchvision's converted weights, which have none), but one that is present must make
// sense: an Error names the file and the attribute otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/precision.h"
#include "models/resnet.h"
#include "train/evaluate.h"

namespace thaw::train {

struct TrainedModel {
  std::string path, arch;
  std::string task;                       // "" when the file does not say
  std::string head;                       // "softmax", "sigmoid", or "" when the file does not say
  int64_t outputs = 0;                    // the fc's outputs (1 for a binary head trained with BCE)
  int64_t image_size = 0;                 // the file's image_size attribute; 0 when it has none
  std::vector<std::string> class_names;   // one per class (2 for a binary head); empty when the file has none
  std::shared_ptr<models::ResNet> model;  // on the CPU, in eval mode, nothing trainable

  int64_t classes() const { return outputs == 1 ? 2 : outputs; }
};

// Reads and checks the file and builds its model (models::read_weights, build_model_from_weights), then the
// attributes, each naming the file and itself when wrong: task breeds or species, with as many classes as
// the head has; head softmax (C >= 2 outputs) or sigmoid (one output); image_size in kMinImageSize ..
// kMaxImageSize (train/config.h); class_names, one per class.
TrainedModel load_trained_model(const std::string& path);

struct EvalWeightsOptions {
  std::string split = "test";  // test | trainval
  Device device = Device::cpu();
  Precision precision = Precision::FP32;  // of the convolutions (core/precision.h)
  int64_t batch_size = 64, threads = 0;   // threads: train/config.h apply_threads
  int64_t image_size = 0;                 // 0: the file's image_size
  bool skip_bad = false;  // leave undecodable images out (listed in bad_files) instead of stopping
};

struct EvalWeightsResult {
  std::string arch, task, split;
  int64_t samples = 0;                   // images listed in the split
  int64_t image_size = 0;                // the crop size used
  std::vector<std::string> class_names;  // in label order
  EvalResult eval;                       // over the images that decoded (samples - bad_files.size())
  std::vector<std::string> bad_files;    // skip_bad: the images left out
};

// thaw eval: the file (load_trained_model; it must have task, image_size and class_names, as thaw train
// writes them) on the split of the dataset at data_root, with the eval transform (resize to image_size *
// 256 / 224, center crop). Throws Error naming the file for a file that does not fit, the image for an
// image that cannot be decoded (unless skip_bad) or whose outputs are NaN or Inf.
EvalWeightsResult evaluate_weights(const std::string& weights, const std::string& data_root,
                                   const EvalWeightsOptions& options = {});

}  // namespace thaw::train

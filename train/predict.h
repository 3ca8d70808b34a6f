// thaw predict WEIGHTS IMAGE... : the top-k classes of each image under a trained ResNet. The command as
// functions (tests call them) and the printed report. train/predict.cpp; docs/predict-and-plots.md.
//
// The weights file is read by load_trained_model (train/trained_model.h), as thaw eval reads it: its
// attributes task, image_size, class_names and head are optional, but checked when present. Without them the
// input size is 224 and the classes are named "class <i>" (e.g. torchvision's ImageNet weights converted by
// weights_tools).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/precision.h"

namespace thaw::train {

struct PredictOptions {
  Device device = Device::cpu();
  Precision precision = Precision::FP32;  // of the convolutions (core/precision.h)
  int64_t top = 5;                        // classes listed per image (at most the number of classes)
  int64_t image_size = 0;  // crop size, kMinImageSize..kMaxImageSize; 0: the file's image_size, else 224
  int64_t batch = 16;      // images per forward pass
};

struct ClassScore {
  int64_t label = 0;
  std::string name;
  double probability = 0;
};

struct ImagePrediction {
  std::string path;
  std::string error;            // non-empty: the image could not be read (the message names the file)
  std::vector<ClassScore> top;  // by probability, highest first (ties: lower label first)
};

struct PredictResult {
  std::string weights, arch, task;  // task "" when the file does not say
  int64_t image_size = 0, resize_size = 0;
  int64_t logits = 0;                    // the head's outputs (1 for a binary head)
  std::vector<std::string> class_names;  // one per class (2 for a binary head)
  std::vector<ImagePrediction> images;   // in the order given
  int64_t failed() const;
};

// The eval transform's resize for a crop size: the shorter side goes to 256 * image_size / 224 (rounded
// down), as for torchvision's Resize(256) + CenterCrop(224).
int64_t eval_resize_size(int64_t image_size);

// Class probabilities from one image's logits: softmax over C >= 2 logits; for one logit (a binary head
// trained with BCE) {P(class 0), P(class 1)} = {1 - sigmoid(z), sigmoid(z)}. Computed in double.
std::vector<double> class_probabilities(const std::vector<float>& logits);

// Loads the model (throws thaw::Error for an unusable weights file or option) and classifies every image.
// An image that cannot be decoded (not a regular file, not an image, ...) or whose outputs are NaN or Inf
// does not throw: its ImagePrediction carries the error, and the other images are still classified.
PredictResult predict_images(const std::string& weights, const std::vector<std::string>& images,
                             const PredictOptions& options = {});

// Prints the model line and each image's top classes to out, and each image error to err.
void print_predictions(const PredictResult& result, std::FILE* out, std::FILE* err);

}  // namespace thaw::train

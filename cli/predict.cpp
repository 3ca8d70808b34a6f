// thaw predict WEIGHTS IMAGE... [--device cpu|cuda] [--top 5] [--image-size N]: the top classes of each
// image (train/predict.h); one error line per image that cannot be read or gives NaN/Inf outputs, the others
// still classified; exit status 1 if any failed.
#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/device.h"
#include "core/precision.h"
#include "kernels/ops.h"
#include "train/config.h"
#include "train/predict.h"

namespace thaw::cli {

void add_predict_command(CLI::App& app) {
  auto weights = std::make_shared<std::string>();
  auto images = std::make_shared<std::vector<std::string>>();
  auto device = std::make_shared<std::string>("cpu");
  auto precision = std::make_shared<std::string>("fp32");
  auto options = std::make_shared<train::PredictOptions>();
  auto* cmd = app.add_subcommand("predict", "the top classes of images under a trained model (weights file)");
  cmd->add_option("WEIGHTS", *weights, "a thaw weights file (HDF5), e.g. runs/<name>/weights.h5")->required();
  cmd->add_option("IMAGE", *images, "image files (JPEG, PNG, GIF, BMP)")->required();
  cmd->add_option("--device", *device, "cpu or cuda");
  add_precision_option(cmd, precision.get());
  cmd->add_option("--top", options->top, "classes to list per image")->check(CLI::Range(1, 1000000));
  cmd->add_option("--image-size", options->image_size, "crop size (default: the file's image_size, else 224)")
      ->check(CLI::Range(train::kMinImageSize, train::kMaxImageSize));
  cmd->callback([weights, images, device, precision, options] {
    options->device = Device::parse(*device);
    options->precision = parse_precision(*precision);
    const train::PredictResult result = train::predict_images(*weights, *images, *options);
    if (ops::conv2d_precision(options->precision, options->device) != options->precision)
      fmt::print(stderr, "thaw predict: precision {}\n",
                 ops::conv2d_precision_note(options->precision, options->device));
    train::print_predictions(result, stdout, stderr);
    if (result.failed() > 0) throw CLI::RuntimeError(1);
  });
}

}  // namespace thaw::cli

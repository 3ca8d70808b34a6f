// thaw's weights file (docs/models-and-weights.md, "The weights file"): one HDF5 file per model, root
// datasets named exactly as torchvision's state_dict() keys, float32, PyTorch's shapes; root attributes
// format = "thaw-weights-1", arch, num_classes, source. `num_batches_tracked` datasets may be present and are
// ignored.
//
// Loading is strict: every missing, unexpected or mis-shaped name, wrong dtype or NaN/Inf is reported, all
// at once, naming the file and the dataset. The one allowed mismatch is the classifier head, and only when
// the caller asks to replace it (then fc.* in the file is ignored and the model keeps its new head).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/hdf5_file.h"
#include "core/tensor.h"
#include "models/resnet.h"

namespace thaw::models {

inline constexpr const char* kWeightsFormat = "thaw-weights-1";

struct WeightsFile {
  std::string path, arch, source;
  int64_t num_classes = 0;
  std::string task;  // what thaw train wrote (breeds | species), "" when absent
  std::vector<std::string>
      class_names;  // thaw train's class_names attribute ('\n'-joined), empty when absent
  std::map<std::string, Tensor> tensors;  // float32 CPU tensors by name (num_batches_tracked dropped)
};

// Reads and validates a weights file on its own: the format attribute; arch one that thaw builds; num_classes
// >= 1 and, when the file has fc.weight, its number of rows; float32 datasets with finite values. Each
// problem is an Error naming the file and the attribute or dataset.
WeightsFile read_weights(const std::string& path);

// The model the file describes (its arch and num_classes), with the file's tensors loaded strictly (as
// assign_weights without replace_head): what loading a trained model does, and what `thaw weights inspect`
// checks. The model is on the CPU.
std::shared_ptr<ResNet> build_model_from_weights(const WeightsFile& file);

// Reads and validates the datasets directly inside `group` of an open file (as read_weights does for the
// root of a weights file; the parity files keep their weights under /weights).
std::map<std::string, Tensor> read_weight_tensors(const H5File& file, const std::string& group = "/");

struct LoadOptions {
  bool replace_head = false;  // ignore fc.* in the file: the model keeps the head it has
};

// Copies tensors into model by name, strictly (see the file comment); `where` names the source in errors.
void assign_weights(ResNet& model, const std::map<std::string, Tensor>& tensors, const std::string& where,
                    const LoadOptions& options = {});

// Loads path into model (on whatever device the model is). Returns what was read (without tensors).
WeightsFile load_weights(ResNet& model, const std::string& path, const LoadOptions& options = {});

// Writes the model's state dict atomically (temporary file, then rename). extra_*: more root attributes
// (e.g. the train command's task, image_size, class_names).
void save_weights(const ResNet& model, const std::string& path, const std::string& source,
                  const std::map<std::string, std::string>& extra_strings = {},
                  const std::map<std::string, int64_t>& extra_ints = {});

}  // namespace thaw::models

#include "models/weights.h"

#include <cmath>
#include <set>
#include <vector>

#include "core/error.h"

namespace thaw::models {

namespace {

bool is_counter(const std::string& name) {
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_head(const std::string& name) {
  return name.rfind("fc.", 0) == 0;
}

}  // namespace

std::map<std::string, Tensor> read_weight_tensors(const H5File& file, const std::string& group) {
  std::map<std::string, Tensor> tensors;
  std::vector<std::string> problems;
  const std::string prefix = group == "/" ? "" : group + "/";
  for (const std::string& name : file.datasets(group)) {
    if (is_counter(name)) continue;
    Tensor t = file.read(prefix + name);
    if (t.dtype() != DType::Float32) {
      problems.push_back(
          fmt::format("dataset '{}{}' is {}, expected float32", prefix, name, dtype_name(t.dtype())));
      continue;
    }
    const float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (!std::isfinite(p[i])) {
        problems.push_back(
            fmt::format("dataset '{}{}' has a non-finite value ({}) at element {}", prefix, name, p[i], i));
        break;
      }
    }
    tensors.emplace(name, std::move(t));
  }
  THAW_CHECK(problems.empty(), "{}: {}", file.path(), fmt::join(problems, "; "));
  return tensors;
}

WeightsFile read_weights(const std::string& path) {
  H5File file = H5File::open(path);
  WeightsFile out;
  out.path = path;
  THAW_CHECK(file.has_attr("format"),
             "{}: no 'format' attribute: not a thaw weights file (convert torchvision weights with "
             "weights_tools/convert.py)",
             path);
  const std::string format = file.attr_string("format");
  THAW_CHECK(format == kWeightsFormat, "{}: format '{}' is not '{}'", path, format, kWeightsFormat);
  out.arch = file.attr_string("arch");
  out.num_classes = file.attr_int("num_classes");
  out.source = file.has_attr("source") ? file.attr_string("source") : "";
  out.tensors = read_weight_tensors(file);
  return out;
}

void assign_weights(ResNet& model, const std::map<std::string, Tensor>& tensors, const std::string& where,
                    const LoadOptions& options) {
  std::vector<std::string> problems;
  std::set<std::string> expected;
  const nn::NamedTensors state = model.state_dict();
  for (const auto& [name, t] : state) {
    if (options.replace_head && is_head(name)) continue;
    expected.insert(name);
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      problems.push_back(fmt::format("missing '{}' {}", name, shape_str(t.shape())));
    } else if (it->second.shape() != t.shape()) {
      problems.push_back(fmt::format("'{}' has shape {} in the file, the model expects {}{}", name,
                                     shape_str(it->second.shape()), shape_str(t.shape()),
                                     is_head(name) ? " (to train a new head, ask to replace it)" : ""));
    }
  }
  for (const auto& [name, _] : tensors) {
    if (options.replace_head && is_head(name)) continue;
    if (!expected.count(name)) problems.push_back(fmt::format("unexpected '{}'", name));
  }
  THAW_CHECK(problems.empty(), "{}: weights do not fit {} with {} classes: {}", where,
             arch_name(model.arch()), model.num_classes(), fmt::join(problems, "; "));
  for (const auto& [name, t] : state) {
    if (expected.count(name)) t.copy_(tensors.at(name));
  }
}

WeightsFile load_weights(ResNet& model, const std::string& path, const LoadOptions& options) {
  WeightsFile file = read_weights(path);
  THAW_CHECK(file.arch == arch_name(model.arch()), "{}: weights are for '{}' but the model is '{}'", path,
             file.arch, arch_name(model.arch()));
  assign_weights(model, file.tensors, path, options);
  file.tensors.clear();
  return file;
}

void save_weights(const ResNet& model, const std::string& path, const std::string& source,
                  const std::map<std::string, std::string>& extra_strings,
                  const std::map<std::string, int64_t>& extra_ints) {
  H5File file = H5File::create(path);
  for (const auto& [name, t] : model.state_dict())
    file.write(name, t);
  file.set_attr("format", std::string(kWeightsFormat));
  file.set_attr("arch", std::string(arch_name(model.arch())));
  file.set_attr("num_classes", model.num_classes());
  file.set_attr("source", source);
  for (const auto& [attr, value] : extra_strings) file.set_attr(attr, value);
  for (const auto& [attr, value] : extra_ints) file.set_attr(attr, value);
  file.commit();
}

}  // namespace thaw::models

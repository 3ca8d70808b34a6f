// Weights files: reading, strict loading, saving (models/weights.h).
#include "models/weights.h"

#include <cmath>
#include <set>
#include <sstream>
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
  for (const char* attr : {"arch", "num_classes"})
    THAW_CHECK(file.has_attr(attr), "{}: no '{}' attribute: not a thaw weights file", path, attr);
  out.arch = file.attr_string("arch");
  try {
    parse_arch(out.arch);
  } catch (const Error&) {
    fail("{}: attribute arch = '{}' is not an architecture thaw builds (resnet18, resnet50)", path, out.arch);
  }
  out.num_classes = file.attr_int("num_classes");
  THAW_CHECK(out.num_classes >= 1, "{}: attribute num_classes = {} is not >= 1", path, out.num_classes);
  out.source = file.has_attr("source") ? file.attr_string("source") : "";
  out.task = file.has_attr("task") ? file.attr_string("task") : "";
  if (file.has_attr("class_names")) {
    std::istringstream names(file.attr_string("class_names"));  // a final '\n' adds no empty name
    for (std::string name; std::getline(names, name);)
      out.class_names.push_back(name);
  }
  out.tensors = read_weight_tensors(file);
  const auto fc = out.tensors.find("fc.weight");
  if (fc != out.tensors.end()) {
    THAW_CHECK(fc->second.dim() == 2 && fc->second.size(0) == out.num_classes,
               "{}: attribute num_classes = {} disagrees with 'fc.weight' {} (its rows are the outputs)",
               path, out.num_classes, shape_str(fc->second.shape()));
  }
  return out;
}

std::shared_ptr<ResNet> build_model_from_weights(const WeightsFile& file) {
  // Before building: a num_classes that no fc.weight vouches for is not allocated (2^40 outputs...).
  THAW_CHECK(file.tensors.count("fc.weight") == 1, "{}: weights do not fit {}: missing 'fc.weight'",
             file.path, file.arch);
  Generator gen(0);  // every value is overwritten by the file's
  auto model = make_resnet(parse_arch(file.arch), file.num_classes, gen);
  assign_weights(*model, file.tensors, file.path);
  return model;
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
  nn::note_parameter_writes();  // nn/module.h: folded conv + BatchNorm weights (nn/conv_bn.h) recompute
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
  for (const auto& [attr, value] : extra_strings)
    file.set_attr(attr, value);
  for (const auto& [attr, value] : extra_ints)
    file.set_attr(attr, value);
  file.commit();
}

}  // namespace thaw::models

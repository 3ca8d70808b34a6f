// thaw weights inspect FILE: what a weights file holds. One line per tensor (name, shape, dtype, min, max,
// mean, std), the file's attributes and the total parameter count. Validates the file as loading does
// (format, arch, num_classes against fc.weight, float32, finite values, then every tensor against the model
// arch and num_classes describe), so a file that loading rejects is an error here too, naming what is wrong
// (exit status 1).
#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "cli/commands.h"
#include "models/weights.h"

namespace thaw::cli {

namespace {

struct Stats {
  double min = INFINITY, max = -INFINITY, mean = 0, std = 0;
};

Stats stats_of(const Tensor& t) {
  Stats s;
  const float* p = t.data<float>();
  const int64_t n = t.numel();
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    s.min = std::min(s.min, double(p[i]));
    s.max = std::max(s.max, double(p[i]));
    sum += p[i];
  }
  s.mean = n > 0 ? sum / double(n) : 0;
  double squares = 0;
  for (int64_t i = 0; i < n; ++i)
    squares += (p[i] - s.mean) * (p[i] - s.mean);
  s.std = n > 0 ? std::sqrt(squares / double(n)) : 0;
  return s;
}

bool is_buffer(const std::string& name) {
  return name.find("running_mean") != std::string::npos || name.find("running_var") != std::string::npos;
}

void inspect(const std::string& path) {
  const models::WeightsFile file = models::read_weights(path);
  fmt::print("{}\n  format {}, arch {}, num_classes {}, source: {}\n", path, models::kWeightsFormat,
             file.arch, file.num_classes, file.source.empty() ? "(none)" : file.source);
  fmt::print("{:<40} {:>18} {:>8} {:>11} {:>11} {:>11} {:>11}\n", "name", "shape", "dtype", "min", "max",
             "mean", "std");
  int64_t parameters = 0, buffers = 0;
  for (const auto& [name, t] : file.tensors) {
    const Stats s = stats_of(t);
    fmt::print("{:<40} {:>18} {:>8} {:>11.4g} {:>11.4g} {:>11.4g} {:>11.4g}\n", name, shape_str(t.shape()),
               dtype_name(t.dtype()), s.min, s.max, s.mean, s.std);
    (is_buffer(name) ? buffers : parameters) += t.numel();
  }
  fmt::print("{} tensors; {} parameters ({:.2f} M), {} buffer values\n", file.tensors.size(), parameters,
             double(parameters) / 1e6, buffers);
  std::fflush(stdout);
  // Last, what loading checks beyond the file itself: the tensors against the model that arch and
  // num_classes describe (missing, unexpected, mis-shaped names). A problem is an error, exit status 1.
  models::build_model_from_weights(file);
  fmt::print("loads as {} with {} classes\n", file.arch, file.num_classes);
}

}  // namespace

void add_weights_command(CLI::App& app) {
  auto* weights = app.add_subcommand("weights", "weights files");
  weights->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  auto* cmd =
      weights->add_subcommand("inspect", "names, shapes and statistics of every tensor in a weights file");
  cmd->add_option("FILE", *path, "a thaw weights file (HDF5)")->required();
  cmd->callback([path] { inspect(*path); });
}

}  // namespace thaw::cli

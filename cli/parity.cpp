// thaw parity --in IN.h5 --out OUT.h5 [--device cpu|cuda] [--dtype float32|float64] [--steps K]: runs a
// parity input file and writes what it computed (train/parity.h).
#include <fmt/format.h>

#include <memory>
#include <string>

#include "cli/commands.h"
#include "core/device.h"
#include "core/dtype.h"
#include "train/parity.h"

namespace thaw::cli {

void add_parity_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("parity",
                                 "run a parity input file (weights, batch, optimizer) and write the results");
  auto in = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>("cpu"), dtype = std::make_shared<std::string>("float32");
  auto steps = std::make_shared<int64_t>(-1);
  cmd->add_option("--in", *in, "parity input file (weights_tools/make_golden.py writes them)")->required();
  cmd->add_option("--out", *out, "where to write logits, loss, gradients, losses, parameters and buffers")
      ->required();
  cmd->add_option("--device", *device, "cpu or cuda");
  cmd->add_option("--dtype", *dtype, "float32, or float64 (CPU only): the whole run in double")
      ->check(CLI::IsMember({"float32", "float64"}));
  cmd->add_option("--steps", *steps, "optimizer steps, instead of the file's own K")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([in, out, device, dtype, steps] {
    train::run_parity(*in, *out, Device::parse(*device),
                      {*dtype == "float64" ? DType::Float64 : DType::Float32, *steps});
    fmt::print("thaw parity: wrote {}\n", *out);
  });
}

}  // namespace thaw::cli

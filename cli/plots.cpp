// thaw plots RUN_DIR: regenerates a run's plots and index.html from its metrics.csv and summary.json
// (report/plots.h; thaw train writes them at the end of every run).
#include <fmt/format.h>

#include <memory>
#include <string>

#include "cli/commands.h"
#include "report/plots.h"

namespace thaw::cli {

void add_plots_command(CLI::App& app) {
  auto run_dir = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "plots",
      "write a run's loss, accuracy and confusion-matrix plots (SVG) and index.html from its "
      "metrics.csv and summary.json");
  cmd->add_option("RUN_DIR", *run_dir, "a run directory (runs/<name>)")->required();
  cmd->callback([run_dir] {
    report::write_run_plots(*run_dir);
    fmt::print("wrote {0}/loss.svg, {0}/accuracy.svg, {0}/confusion.svg, {0}/index.html\n", *run_dir);
  });
}

}  // namespace thaw::cli

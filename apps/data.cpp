// thaw data: dataset tools. `thaw data check DIR` (apps/data_check.cpp) and `thaw data download DIR`
// (apps/data_download.cpp).
#include "apps/commands.h"

namespace thaw::apps {

void add_data_check_command(CLI::App& data);     // apps/data_check.cpp
void add_data_download_command(CLI::App& data);  // apps/data_download.cpp

void add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "the Oxford-IIIT Pet dataset: check a copy, download the official one");
  data->require_subcommand(1);
  add_data_check_command(*data);
  add_data_download_command(*data);
}

}  // namespace thaw::apps

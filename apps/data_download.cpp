// thaw data download DIR: fetch the official Oxford-IIIT Pet archives (curl, resumable), verify them, unpack
// them into DIR. With --from-archives, verify and unpack archives already on this machine (data/download.h).
#include <fmt/format.h>

#include <memory>

#include "apps/commands.h"
#include "data/download.h"

namespace thaw::apps {

void add_data_download_command(CLI::App& data) {
  auto opt = std::make_shared<data::DownloadOptions>();
  auto* cmd = data.add_subcommand(
      "download",
      "download the official Oxford-IIIT Pet archives (images.tar.gz, annotations.tar.gz) with curl, verify "
      "their MD5 (or --sha256), and unpack them into DIR");
  cmd->add_option("dir", opt->dir, "directory to unpack into (gets images/ and annotations/)")->required();
  cmd->add_option("--from-archives", opt->from_archives,
                  "verify and unpack these local archives instead of downloading (e.g. images.tar.gz "
                  "annotations.tar.gz fetched on another machine)")
      ->expected(1, 2);
  cmd->add_option("--sha256", opt->sha256,
                  "expected SHA-256 of each archive, in order (replaces the check of the official MD5; "
                  "required for archives not named like the official ones)")
      ->expected(1, 2);
  cmd->add_flag("--keep-archives", opt->keep_archives, "keep the downloaded archives after unpacking");
  cmd->callback([opt] {
    opt->log = [](const std::string& line) { fmt::print("{}\n", line); };
    data::download_pets(*opt);
  });
}

}  // namespace thaw::apps

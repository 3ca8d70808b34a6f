// thaw data: dataset tools.
//   thaw data check DIR      is a copy of the Oxford-IIIT Pet dataset usable? (data/check.h)
//   thaw data download DIR   fetch, verify and unpack the official archives (data/download.h)
#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "data/check.h"
#include "data/download.h"

namespace thaw::cli {

namespace {

void add_data_check_command(CLI::App& data) {
  auto root = std::make_shared<std::string>();
  auto options = std::make_shared<data::DataCheckOptions>();
  auto* cmd = data.add_subcommand("check",
                                  "check a copy of the Oxford-IIIT Pet dataset: counts per breed and "
                                  "split, odd and unreadable files; exit status 0 when usable");
  cmd->add_option("DIR", *root, "the dataset root (holds images/ and annotations/)")->required();
  cmd->add_flag("!--no-decode", options->decode, "skip decoding the images (counts and formats only)");
  cmd->add_option("--threads", options->threads, "decoding threads (0: one per core, at most 8)")
      ->check(CLI::Range(0, 256));
  cmd->callback([root, options] {
    const data::DataCheckResult result = data::check_pets_dir(*root, *options);
    data::print_data_check(result);
    if (!result.usable()) throw CLI::RuntimeError(1);
  });
}

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

}  // namespace

void add_data_command(CLI::App& app) {
  auto* data =
      app.add_subcommand("data", "the Oxford-IIIT Pet dataset: check a copy, download the official one");
  data->require_subcommand(1);
  add_data_check_command(*data);
  add_data_download_command(*data);
}

}  // namespace thaw::cli

// Reading a run's summary.json back (run_outcome.h); the file's layout is trainer.cpp's write_summary.
#include "apps/run_outcome.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace thaw::apps {

bool run_finished(const std::string& run_dir) {
  return std::filesystem::exists(run_dir + "/summary.json") &&
         std::filesystem::exists(run_dir + "/weights.h5");
}

RunOutcome read_run_outcome(const std::string& run_dir) {
  const std::string path = run_dir + "/summary.json";
  std::ifstream in(path);
  THAW_CHECK(in.good(), "cannot read '{}': the run has not finished (or the directory is not a run)", path);
  RunOutcome out;
  out.run_dir = run_dir;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    out.test_accuracy = j.at("test_accuracy").get<double>();
    const nlohmann::json& times = j.at("times");
    out.train_seconds = times.at("train_data_s").get<double>() + times.at("train_compute_s").get<double>();
    for (const nlohmann::json& epoch : j.at("history"))
      out.val_accuracy.push_back(epoch.at("val_acc").is_number() ? epoch.at("val_acc").get<double>() : NAN);
  } catch (const nlohmann::json::exception& e) {
    fail("'{}': {}", path, e.what());
  }
  return out;
}

}  // namespace thaw::apps

// H5File: tensors and attributes in an HDF5 file, with errors that name the file and the dataset.
// The one place thaw talks to the HDF5 library; weights (models/), parity files (apps/) and the test
// golden files all go through it.
//
// Names are HDF5 paths relative to the root ("conv1.weight", "grads/layer1.0.conv1.weight"); intermediate
// groups are created on write. Files made by create() are built in memory (HDF5's core driver, no backing
// store) and written by commit() to a temporary name beside the target, then renamed over it, so a reader
// never sees a half-written file. HDF5 itself never writes to disk: a full disk or a file-size limit is an
// error of commit()'s own write, naming the file, and cannot leave HDF5 holding a file it failed to close
// (HDF5 1.10 then crashes at exit, in H5_term_library). The price: a created file is held in memory until
// commit (twice, briefly, while its image is taken).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace thaw {

class H5File {
 public:
  static H5File open(const std::string& path);  // read-only; throws if missing or not HDF5
  // An empty file in memory, published by commit(). Checks at once that the temporary file beside path can
  // be created (an unwritable directory is an error here, not at commit).
  static H5File create(const std::string& path);
  H5File(H5File&& other) noexcept;
  H5File& operator=(H5File&& other) noexcept;
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;
  ~H5File();  // an uncommitted created file is discarded

  const std::string& path() const { return path_; }

  bool has(const std::string& name) const;  // a dataset or group of that path exists
  // Names of the datasets directly inside group (sorted), e.g. datasets("grads").
  std::vector<std::string> datasets(const std::string& group = "/") const;
  // Reads a float32/float64/int32/int64 dataset into a CPU tensor of the same type (0-d for a scalar).
  Tensor read(const std::string& name) const;
  // Writes a tensor (any device) as a dataset of its dtype.
  void write(const std::string& name, const Tensor& t);

  // Attributes on an object (default: the root group).
  bool has_attr(const std::string& attr, const std::string& object = "/") const;
  std::string attr_string(const std::string& attr, const std::string& object = "/") const;
  double attr_double(const std::string& attr, const std::string& object = "/") const;
  int64_t attr_int(const std::string& attr, const std::string& object = "/") const;
  void set_attr(const std::string& attr, const std::string& value, const std::string& object = "/");
  void set_attr(const std::string& attr, double value, const std::string& object = "/");
  void set_attr(const std::string& attr, int64_t value, const std::string& object = "/");

  // Created files: writes the file's image to path.tmp-<pid> (a write error, e.g. a full disk, throws naming
  // the temporary file and the reason, and removes it), closes it, and renames it over path.
  void commit();

 private:
  H5File(int64_t id, std::string path, std::string temp_path);
  void close() noexcept;
  // Before a variable-length string is read: every global heap collection in the file is whole (throws).
  void check_global_heaps() const;
  int64_t id_ = -1;
  mutable bool global_heaps_checked_ = false;
  std::string path_;
  std::string temp_path_;  // non-empty for a created file until commit()
};

}  // namespace thaw

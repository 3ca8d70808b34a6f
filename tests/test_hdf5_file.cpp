// H5File: round trips, attributes, atomic publication, and errors that name the file and the dataset.
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/hdf5_file.h"
#include "tests/support/catch.h"

using namespace thaw;
namespace fs = std::filesystem;

namespace {
fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "thaw-test-hdf5";
  fs::create_directories(dir);
  return dir / name;
}
}  // namespace

TEST_CASE("datasets of every dtype and attributes round-trip") {
  const std::string path = scratch("roundtrip.h5").string();
  {
    H5File f = H5File::create(path);
    f.write("conv1.weight", Tensor::from_data<float>({2, 1, 1, 2}, {1.5f, -2, 3, 4}));
    f.write("grads/layer1.0.conv1.weight", Tensor::from_data<double>({2}, {0.25, -8}));
    f.write("y", Tensor::from_data<int64_t>({3}, {0, 36, 7}));
    f.write("idx", Tensor::from_data<int32_t>({1}, {-3}));
    f.write("loss", Tensor::full({}, 0.5));
    f.set_attr("format", std::string("thaw-weights-1"));
    f.set_attr("num_classes", int64_t(37));
    f.set_attr("lr", 1e-3);
    f.commit();
  }
  H5File f = H5File::open(path);
  REQUIRE(f.read("conv1.weight").shape() == Shape{2, 1, 1, 2});
  REQUIRE(f.read("conv1.weight").to_vector<float>() == std::vector<float>{1.5f, -2, 3, 4});
  REQUIRE(f.read("grads/layer1.0.conv1.weight").to_vector<double>() == std::vector<double>{0.25, -8});
  REQUIRE(f.read("y").to_vector<int64_t>() == std::vector<int64_t>{0, 36, 7});
  REQUIRE(f.read("idx").dtype() == DType::Int32);
  REQUIRE(f.read("loss").dim() == 0);
  REQUIRE(f.read("loss").item() == 0.5);
  REQUIRE(f.datasets() == std::vector<std::string>{"conv1.weight", "idx", "loss", "y"});
  REQUIRE(f.datasets("grads") == std::vector<std::string>{"layer1.0.conv1.weight"});
  REQUIRE(f.attr_string("format") == "thaw-weights-1");
  REQUIRE(f.attr_int("num_classes") == 37);
  REQUIRE(f.attr_double("lr") == 1e-3);
  REQUIRE(f.has("grads"));
  REQUIRE_FALSE(f.has("grads/fc.weight"));
  REQUIRE_FALSE(f.has_attr("arch"));
}

TEST_CASE("a created file appears only on commit and an abandoned one leaves the old file intact") {
  const std::string path = scratch("atomic.h5").string();
  fs::remove(path);
  {
    H5File f = H5File::create(path);
    f.write("a", Tensor::ones({2}));
    REQUIRE_FALSE(fs::exists(path));
    f.commit();
  }
  REQUIRE(fs::exists(path));
  {
    H5File f = H5File::create(path);
    f.write("b", Tensor::ones({3}));
    // destroyed without commit: e.g. an exception while writing
  }
  H5File f = H5File::open(path);
  REQUIRE(f.has("a"));
  REQUIRE_FALSE(f.has("b"));
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
    REQUIRE(entry.path().filename().string().find("atomic.h5.tmp") == std::string::npos);
}

TEST_CASE("missing, non-HDF5 and truncated files, missing datasets and attributes: errors name them") {
  REQUIRE_THROWS_WITH(H5File::open(scratch("nope.h5").string()), ContainsSubstring("nope.h5: no such file"));
  const std::string text = scratch("text.h5").string();
  std::ofstream(text) << "this is not HDF5\n";
  REQUIRE_THROWS_WITH(H5File::open(text), ContainsSubstring("text.h5: not an HDF5 file"));

  const std::string good = scratch("good.h5").string();
  {
    H5File f = H5File::create(good);
    f.write("fc.weight", Tensor::ones({64, 64}));
    f.commit();
  }
  const std::string truncated = scratch("truncated.h5").string();
  fs::copy_file(good, truncated, fs::copy_options::overwrite_existing);
  fs::resize_file(truncated, fs::file_size(good) / 2);
  bool threw = false;
  try {
    H5File f = H5File::open(truncated);
    f.read("fc.weight");
  } catch (const Error& e) {
    threw = true;
    REQUIRE_THAT(e.what(), ContainsSubstring("truncated.h5"));
  }
  REQUIRE(threw);

  H5File f = H5File::open(good);
  REQUIRE_THROWS_WITH(f.read("fc.bias"), ContainsSubstring("good.h5: no dataset 'fc.bias'"));
  REQUIRE_THROWS_WITH(f.attr_string("arch"), ContainsSubstring("no attribute 'arch'"));
  REQUIRE_THROWS_WITH(f.write("x", Tensor::ones({1})), ContainsSubstring("read-only"));
}

#include "core/hdf5_file.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.h"

namespace thaw {

namespace {

// RAII for one HDF5 identifier with its matching close function.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

void silence_hdf5_errors() {
  // thaw reports errors itself, naming file and dataset; HDF5's own stack dumps would only add noise.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

hid_t native_type(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return H5T_NATIVE_FLOAT;
    case DType::Float64:
      return H5T_NATIVE_DOUBLE;
    case DType::Int32:
      return H5T_NATIVE_INT32;
    case DType::Int64:
      return H5T_NATIVE_INT64;
  }
  return -1;
}

bool link_exists(hid_t file, const std::string& name) {
  if (name == "/" || name.empty()) return true;
  // Check each prefix: H5Lexists fails on a path whose parent is missing.
  size_t pos = 0;
  while (true) {
    pos = name.find('/', pos + 1);
    const std::string prefix = name.substr(0, pos);
    if (!prefix.empty() && prefix != "/" && H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

}  // namespace

H5File::H5File(int64_t id, std::string path, std::string temp_path)
    : id_(id), path_(std::move(path)), temp_path_(std::move(temp_path)) {}

H5File::H5File(H5File&& other) noexcept
    : id_(other.id_), path_(std::move(other.path_)), temp_path_(std::move(other.temp_path_)) {
  other.id_ = -1;
  other.temp_path_.clear();
}

H5File& H5File::operator=(H5File&& other) noexcept {
  if (this != &other) {
    close();
    id_ = other.id_;
    path_ = std::move(other.path_);
    temp_path_ = std::move(other.temp_path_);
    other.id_ = -1;
    other.temp_path_.clear();
  }
  return *this;
}

H5File::~H5File() {
  close();
}

void H5File::close() noexcept {
  if (id_ >= 0) H5Fclose(hid_t(id_));
  id_ = -1;
  if (!temp_path_.empty()) std::remove(temp_path_.c_str());
  temp_path_.clear();
}

H5File H5File::open(const std::string& path) {
  silence_hdf5_errors();
  THAW_CHECK(std::filesystem::exists(path), "{}: no such file", path);
  THAW_CHECK(std::filesystem::is_regular_file(path), "{}: not a regular file", path);
  THAW_CHECK(H5Fis_hdf5(path.c_str()) > 0, "{}: not an HDF5 file (or unreadable/truncated)", path);
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  THAW_CHECK(id >= 0, "{}: cannot open as HDF5 (corrupted or truncated?)", path);
  return H5File(id, path, "");
}

H5File H5File::create(const std::string& path) {
  silence_hdf5_errors();
  const std::string temp = fmt::format("{}.tmp-{}", path, ::getpid());
  const hid_t id = H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  THAW_CHECK(id >= 0, "{}: cannot create (is the directory writable and the disk not full?)", temp);
  return H5File(id, path, temp);
}

void H5File::commit() {
  THAW_CHECK(!temp_path_.empty(), "{}: commit() on a file that was not created for writing", path_);
  THAW_CHECK(H5Fflush(hid_t(id_), H5F_SCOPE_GLOBAL) >= 0, "{}: flush failed (disk full?)", temp_path_);
  THAW_CHECK(H5Fclose(hid_t(id_)) >= 0, "{}: close failed (disk full?)", temp_path_);
  id_ = -1;
  std::error_code ec;
  std::filesystem::rename(temp_path_, path_, ec);
  THAW_CHECK(!ec, "{}: cannot move {} into place: {}", path_, temp_path_, ec.message());
  temp_path_.clear();
}

bool H5File::has(const std::string& name) const {
  return link_exists(hid_t(id_), name);
}

std::vector<std::string> H5File::datasets(const std::string& group) const {
  THAW_CHECK(has(group), "{}: no group '{}'", path_, group);
  Handle g(H5Gopen2(hid_t(id_), group.c_str(), H5P_DEFAULT), H5Gclose);
  THAW_CHECK(g.valid(), "{}: '{}' is not a group", path_, group);
  std::vector<std::string> names;
  // H5Literate / H5L_info_t / H5Oopen: the API spelling shared by HDF5 1.10 (Debian 12, Ubuntu 24.04)
  // and 1.12+.
  H5Literate(
      g.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t parent, const char* name, const H5L_info_t*, void* out) -> herr_t {
        const hid_t object = H5Oopen(parent, name, H5P_DEFAULT);
        if (object < 0) return 0;
        if (H5Iget_type(object) == H5I_DATASET) static_cast<std::vector<std::string>*>(out)->push_back(name);
        H5Oclose(object);
        return 0;
      },
      &names);
  std::sort(names.begin(), names.end());
  return names;
}

Tensor H5File::read(const std::string& name) const {
  THAW_CHECK(has(name), "{}: no dataset '{}'", path_, name);
  Handle ds(H5Dopen2(hid_t(id_), name.c_str(), H5P_DEFAULT), H5Dclose);
  THAW_CHECK(ds.valid(), "{}: '{}' is not a dataset", path_, name);
  Handle type(H5Dget_type(ds.get()), H5Tclose);
  const H5T_class_t type_class = H5Tget_class(type.get());
  const size_t type_size = H5Tget_size(type.get());
  DType dtype;
  if (type_class == H5T_FLOAT && (type_size == 4 || type_size == 8)) {
    dtype = type_size == 4 ? DType::Float32 : DType::Float64;
  } else if (type_class == H5T_INTEGER && (type_size == 4 || type_size == 8)) {
    THAW_CHECK(H5Tget_sign(type.get()) == H5T_SGN_2,
               "{}: dataset '{}' is unsigned; expected float32/64 or int32/64", path_, name);
    dtype = type_size == 4 ? DType::Int32 : DType::Int64;
  } else {
    fail("{}: dataset '{}' has an unsupported type (class {}, {} bytes); expected float32/64 or int32/64",
         path_, name, int(type_class), type_size);
  }
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  THAW_CHECK(rank >= 0, "{}: dataset '{}' has no simple dataspace", path_, name);
  std::vector<hsize_t> dims(size_t(rank), 0);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  Shape shape(dims.begin(), dims.end());
  Tensor t = Tensor::empty(shape, dtype);
  if (t.numel() > 0) {
    THAW_CHECK(H5Dread(ds.get(), native_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()) >= 0,
               "{}: reading dataset '{}' failed (file truncated or corrupted?)", path_, name);
  }
  return t;
}

void H5File::write(const std::string& name, const Tensor& t) {
  THAW_CHECK(!temp_path_.empty(), "{}: opened read-only, cannot write '{}'", path_, name);
  THAW_CHECK(!has(name), "{}: dataset '{}' written twice", path_, name);
  const Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  std::vector<hsize_t> dims(host.shape().begin(), host.shape().end());
  Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle ds(H5Dcreate2(hid_t(id_), name.c_str(), native_type(host.dtype()), space.get(), lcpl.get(),
                       H5P_DEFAULT, H5P_DEFAULT),
            H5Dclose);
  THAW_CHECK(ds.valid(), "{}: cannot create dataset '{}'", temp_path_, name);
  if (host.numel() > 0) {
    THAW_CHECK(
        H5Dwrite(ds.get(), native_type(host.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, host.raw_data()) >= 0,
        "{}: writing dataset '{}' failed (disk full?)", temp_path_, name);
  }
}

namespace {

Handle open_attr(hid_t file, const std::string& path, const std::string& object, const std::string& attr) {
  THAW_CHECK(H5Aexists_by_name(file, object.c_str(), attr.c_str(), H5P_DEFAULT) > 0,
             "{}: no attribute '{}' on '{}'", path, attr, object);
  return Handle(H5Aopen_by_name(file, object.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
}

template <typename T>
T read_numeric_attr(hid_t file, const std::string& path, const std::string& object, const std::string& attr,
                    hid_t mem_type) {
  Handle a = open_attr(file, path, object, attr);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  const H5T_class_t c = H5Tget_class(type.get());
  THAW_CHECK(c == H5T_INTEGER || c == H5T_FLOAT, "{}: attribute '{}' on '{}' is not a number", path, attr,
             object);
  Handle space(H5Aget_space(a.get()), H5Sclose);
  THAW_CHECK(H5Sget_simple_extent_npoints(space.get()) == 1, "{}: attribute '{}' on '{}' is not a scalar",
             path, attr, object);
  T value{};
  THAW_CHECK(H5Aread(a.get(), mem_type, &value) >= 0, "{}: cannot read attribute '{}' on '{}'", path, attr,
             object);
  return value;
}

void write_attr(hid_t file, const std::string& path, const std::string& object, const std::string& attr,
                hid_t type, const void* value) {
  if (H5Aexists_by_name(file, object.c_str(), attr.c_str(), H5P_DEFAULT) > 0) {
    H5Adelete_by_name(file, object.c_str(), attr.c_str(), H5P_DEFAULT);
  }
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate_by_name(file, object.c_str(), attr.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT),
           H5Aclose);
  THAW_CHECK(a.valid() && H5Awrite(a.get(), type, value) >= 0, "{}: cannot write attribute '{}' on '{}'",
             path, attr, object);
}

}  // namespace

bool H5File::has_attr(const std::string& attr, const std::string& object) const {
  return has(object) && H5Aexists_by_name(hid_t(id_), object.c_str(), attr.c_str(), H5P_DEFAULT) > 0;
}

std::string H5File::attr_string(const std::string& attr, const std::string& object) const {
  Handle a = open_attr(hid_t(id_), path_, object, attr);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  THAW_CHECK(H5Tget_class(type.get()) == H5T_STRING, "{}: attribute '{}' on '{}' is not a string", path_,
             attr, object);
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    char* value = nullptr;
    THAW_CHECK(H5Aread(a.get(), mem.get(), &value) >= 0, "{}: cannot read attribute '{}'", path_, attr);
    std::string out = value ? value : "";
    H5free_memory(value);
    return out;
  }
  const size_t size = H5Tget_size(type.get());
  std::string out(size, '\0');
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.get(), size);
  THAW_CHECK(H5Aread(a.get(), mem.get(), out.data()) >= 0, "{}: cannot read attribute '{}'", path_, attr);
  out.resize(std::min(out.size(), out.find('\0')));
  return out;
}

double H5File::attr_double(const std::string& attr, const std::string& object) const {
  return read_numeric_attr<double>(hid_t(id_), path_, object, attr, H5T_NATIVE_DOUBLE);
}

int64_t H5File::attr_int(const std::string& attr, const std::string& object) const {
  return read_numeric_attr<int64_t>(hid_t(id_), path_, object, attr, H5T_NATIVE_INT64);
}

void H5File::set_attr(const std::string& attr, const std::string& value, const std::string& object) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* p = value.c_str();
  write_attr(hid_t(id_), path_, object, attr, type.get(), &p);
}

void H5File::set_attr(const std::string& attr, double value, const std::string& object) {
  write_attr(hid_t(id_), path_, object, attr, H5T_NATIVE_DOUBLE, &value);
}

void H5File::set_attr(const std::string& attr, int64_t value, const std::string& object) {
  write_attr(hid_t(id_), path_, object, attr, H5T_NATIVE_INT64, &value);
}

}  // namespace thaw

#include "core/hdf5_file.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

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

// Throws when a dataset (open in `file`) declares more data than the file can hold.
void check_declared_size(hid_t file, hid_t dataset, const std::string& path, const std::string& name,
                         const std::vector<hsize_t>& dims, size_t element_size) {
  // Before anything is allocated for it: a dataspace whose size a damaged file made up (2^60 elements)
  // must be an error naming the dataset, not an allocation failure. Contiguous and compact data are stored
  // whole, so the file holds them in full; chunked data may be compressed, but not by more than 1024x here.
  uint64_t bytes = element_size;
  for (const hsize_t d : dims) {
    THAW_CHECK(d == 0 || bytes <= (uint64_t(1) << 62) / uint64_t(d),
               "{}: dataset '{}' declares a shape too large to be real (file corrupted?)", path, name);
    bytes *= uint64_t(d);
  }
  if (bytes == 0) return;
  Handle plist(H5Dget_create_plist(dataset), H5Pclose);
  const H5D_layout_t layout = plist.valid() ? H5Pget_layout(plist.get()) : H5D_LAYOUT_ERROR;
  hsize_t file_size = 0;
  H5Fget_filesize(file, &file_size);
  const uint64_t stored = H5Dget_storage_size(dataset);
  const uint64_t limit = layout == H5D_CHUNKED ? uint64_t(file_size) * 1024 : stored;
  THAW_CHECK(bytes <= limit,
             "{}: dataset '{}' declares {} bytes of data, but the file holds {} for it (file truncated or "
             "corrupted?)",
             path, name, bytes, stored);
}

// Bob Jenkins' lookup3 hash (hashlittle), which HDF5 checksums its metadata with (H5_checksum_metadata).
uint32_t rotl32(uint32_t x, int k) {
  return (x << k) | (x >> (32 - k));
}
uint32_t lookup3(const uint8_t* k, size_t length, uint32_t initval) {
  uint32_t a, b, c;
  a = b = c = 0xdeadbeefu + uint32_t(length) + initval;
  while (length > 12) {
    a += k[0] + (uint32_t(k[1]) << 8) + (uint32_t(k[2]) << 16) + (uint32_t(k[3]) << 24);
    b += k[4] + (uint32_t(k[5]) << 8) + (uint32_t(k[6]) << 16) + (uint32_t(k[7]) << 24);
    c += k[8] + (uint32_t(k[9]) << 8) + (uint32_t(k[10]) << 16) + (uint32_t(k[11]) << 24);
    a -= c;
    a ^= rotl32(c, 4);
    c += b;
    b -= a;
    b ^= rotl32(a, 6);
    a += c;
    c -= b;
    c ^= rotl32(b, 8);
    b += a;
    a -= c;
    a ^= rotl32(c, 16);
    c += b;
    b -= a;
    b ^= rotl32(a, 19);
    a += c;
    c -= b;
    c ^= rotl32(b, 4);
    b += a;
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  uint8_t tail[12] = {};
  for (size_t i = 0; i < length; ++i)
    tail[i] = k[i];
  a += tail[0] + (uint32_t(tail[1]) << 8) + (uint32_t(tail[2]) << 16) + (uint32_t(tail[3]) << 24);
  b += tail[4] + (uint32_t(tail[5]) << 8) + (uint32_t(tail[6]) << 16) + (uint32_t(tail[7]) << 24);
  c += tail[8] + (uint32_t(tail[9]) << 8) + (uint32_t(tail[10]) << 16) + (uint32_t(tail[11]) << 24);
  c ^= b;
  c -= rotl32(b, 14);
  a ^= c;
  a -= rotl32(c, 11);
  b ^= a;
  b -= rotl32(a, 25);
  c ^= b;
  c -= rotl32(b, 16);
  a ^= c;
  a -= rotl32(c, 4);
  b ^= a;
  b -= rotl32(a, 14);
  c ^= b;
  c -= rotl32(b, 24);
  return c;
}

// HDF5 1.10's H5Fget_file_image clears the "open for writing" flag in the image's superblock (version 2,
// the 1.8 format) but leaves the checksum it had with the flag set, so the image would not open. This
// writes the checksum of the superblock as the image holds it: the bytes a closed file would have.
void fix_superblock_checksum(std::vector<char>& image) {
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  if (image.size() < 12 || std::memcmp(image.data(), kSignature, 8) != 0) return;
  const int version = image[8];
  const size_t checked = 12 + 4 * size_t(uint8_t(image[9]));  // fixed part + base, extension, EOF, root
  if ((version != 2 && version != 3) || checked + 4 > image.size()) return;
  const uint32_t sum = lookup3(reinterpret_cast<const uint8_t*>(image.data()), checked, 0);
  for (int k = 0; k < 4; ++k)
    image[checked + size_t(k)] = char((sum >> (8 * k)) & 0xff);
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
  std::FILE* probe = std::fopen(temp.c_str(), "wb");
  THAW_CHECK(probe, "{}: cannot create: {} (is the directory writable?)", temp, std::strerror(errno));
  std::fclose(probe);
  // The core driver keeps the whole file in memory (grown 4 MiB at a time) and never writes it itself. The
  // 1.8 file format puts a checksum on every piece of metadata, which HDF5 verifies on reading: a damaged
  // file is then an error, where HDF5 1.10 may crash parsing damaged metadata of the older format. (Not the
  // 1.10 format: its superblock marks the file open for writing until it is closed, and commit() takes the
  // file's image before closing it.)
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  const bool in_memory = fapl.valid() && H5Pset_fapl_core(fapl.get(), size_t(4) << 20, 0) >= 0 &&
                         H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18) >= 0;
  const hid_t id = in_memory ? H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()) : -1;
  if (id < 0) {
    std::remove(temp.c_str());
    fail("{}: HDF5 cannot create the file in memory (out of memory?)", temp);
  }
  return H5File(id, path, temp);
}

void H5File::commit() {
  THAW_CHECK(!temp_path_.empty(), "{}: commit() on a file that was not created for writing", path_);
  // The image first: after a failure here the file is still open (the destructor closes and discards it).
  THAW_CHECK(H5Fflush(hid_t(id_), H5F_SCOPE_GLOBAL) >= 0, "{}: HDF5 flush failed", temp_path_);
  const ssize_t size = H5Fget_file_image(hid_t(id_), nullptr, 0);
  THAW_CHECK(size > 0, "{}: HDF5 cannot give the file's image", temp_path_);
  std::vector<char> image(static_cast<size_t>(size));
  THAW_CHECK(H5Fget_file_image(hid_t(id_), image.data(), image.size()) == size,
             "{}: HDF5 cannot give the file's image", temp_path_);
  fix_superblock_checksum(image);
  // In memory: closing cannot meet a disk error.
  THAW_CHECK(H5Fclose(hid_t(id_)) >= 0, "{}: HDF5 cannot close the in-memory file", temp_path_);
  id_ = -1;
  std::FILE* f = std::fopen(temp_path_.c_str(), "wb");
  int error = f ? 0 : errno;
  if (f) {
    if (std::fwrite(image.data(), 1, image.size(), f) != image.size() || std::fflush(f) != 0) error = errno;
    if (std::fclose(f) != 0 && error == 0) error = errno;
  }
  if (error != 0) {
    std::remove(temp_path_.c_str());
    const std::string temp = temp_path_;
    temp_path_.clear();
    fail("{}: writing {} bytes failed: {} (disk full?)", temp, image.size(), std::strerror(error));
  }
  std::error_code ec;
  std::filesystem::rename(temp_path_, path_, ec);
  if (ec) {
    std::remove(temp_path_.c_str());
    temp_path_.clear();
    fail("{}: cannot move the temporary file into place: {}", path_, ec.message());
  }
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
  check_declared_size(hid_t(id_), ds.get(), path_, name, dims, dtype_size(dtype));
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
        "{}: writing dataset '{}' failed (out of memory?)", temp_path_, name);
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
    // Stored in a global heap (files from h5py, and from thaw before it wrote fixed-length strings).
    check_global_heaps();
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
  hsize_t file_size = 0;
  H5Fget_filesize(hid_t(id_), &file_size);
  THAW_CHECK(size > 0 && size <= file_size,
             "{}: attribute '{}' on '{}' declares a string of {} bytes (file corrupted?)", path_, attr,
             object, size);
  std::string out(size, '\0');
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.get(), size);
  H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
  THAW_CHECK(H5Aread(a.get(), mem.get(), out.data()) >= 0, "{}: cannot read attribute '{}'", path_, attr);
  out.resize(std::min(out.size(), out.find('\0')));
  return out;
}

void H5File::check_global_heaps() const {
  if (global_heaps_checked_) return;
  // HDF5 1.10 trusts a global heap collection's object sizes: a damaged one makes it copy past the end of
  // the collection (a crash) or loop forever on a zero size. So walk every collection the file holds, as
  // HDF5's H5HG deserializer does, and refuse a file where one does not add up. A collection is found by its
  // header: "GCOL", version 1, three zero bytes, a size of at least 4096 that fits in the file (8-byte
  // lengths, as every file thaw reads has).
  std::FILE* f = std::fopen(path_.c_str(), "rb");
  THAW_CHECK(f, "{}: cannot read: {}", path_, std::strerror(errno));
  std::string bytes;
  char buffer[1 << 16];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), f)) > 0;)
    bytes.append(buffer, n);
  std::fclose(f);
  const auto u64 = [&](size_t at) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; --k)
      v = (v << 8) | uint8_t(bytes[at + size_t(k)]);
    return v;
  };
  constexpr uint64_t kHeader = 16, kObjectHeader = 16, kMinCollection = 4096;
  for (size_t at = bytes.find("GCOL"); at != std::string::npos; at = bytes.find("GCOL", at + 1)) {
    if (at + kHeader > bytes.size() || bytes[at + 4] != 1 || bytes[at + 5] || bytes[at + 6] || bytes[at + 7])
      continue;
    const uint64_t size = u64(at + 8);
    if (size < kMinCollection || size > bytes.size() - at) continue;  // not a collection header
    const uint64_t end = at + size;
    uint64_t p = at + kHeader;
    while (p < end) {
      if (p + kObjectHeader > end) break;  // too small for an object: free space, as HDF5 takes it
      const unsigned index = uint8_t(bytes[p]) | unsigned(uint8_t(bytes[p + 1])) << 8;
      const uint64_t object = u64(p + 8);
      const uint64_t need = index > 0 && object <= end ? kObjectHeader + (object + 7) / 8 * 8
                            : index > 0                ? end
                                                       : object;
      THAW_CHECK(
          need > 0 && need <= end - p,
          "{}: the global heap at byte {} is damaged (an object of {} bytes at byte {} does not fit in "
          "it); the file is corrupted",
          path_, at, object, p);
      p += need;
    }
  }
  global_heaps_checked_ = true;
}

double H5File::attr_double(const std::string& attr, const std::string& object) const {
  return read_numeric_attr<double>(hid_t(id_), path_, object, attr, H5T_NATIVE_DOUBLE);
}

int64_t H5File::attr_int(const std::string& attr, const std::string& object) const {
  return read_numeric_attr<int64_t>(hid_t(id_), path_, object, attr, H5T_NATIVE_INT64);
}

void H5File::set_attr(const std::string& attr, const std::string& value, const std::string& object) {
  // A fixed-length string, stored in the attribute itself: a variable-length one lives in a global heap
  // collection, which has no checksum (and which HDF5 1.10 reads past the end of when it is damaged).
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.size() + 1);
  H5Tset_strpad(type.get(), H5T_STR_NULLTERM);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  write_attr(hid_t(id_), path_, object, attr, type.get(), value.c_str());
}

void H5File::set_attr(const std::string& attr, double value, const std::string& object) {
  write_attr(hid_t(id_), path_, object, attr, H5T_NATIVE_DOUBLE, &value);
}

void H5File::set_attr(const std::string& attr, int64_t value, const std::string& object) {
  write_attr(hid_t(id_), path_, object, attr, H5T_NATIVE_INT64, &value);
}

}  // namespace thaw

#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>

#include "core/autograd.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/storage.h"

namespace thaw {

std::string shape_str(const Shape& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

const char* memory_format_name(MemoryFormat format) {
  return format == MemoryFormat::NCHW ? "NCHW" : "NHWC";
}

namespace {

void check_shape(const Shape& shape) {
  for (int64_t d : shape)
    THAW_CHECK(d >= 0, "invalid shape {}: negative dimension", shape_str(shape));
}

// Calls f(T{}) with T the C++ type of dtype.
template <typename F>
void visit_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32:
      f(float{});
      break;
    case DType::Float64:
      f(double{});
      break;
    case DType::Int32:
      f(int32_t{});
      break;
    case DType::Int64:
      f(int64_t{});
      break;
  }
}

// Fills a CPU tensor from a function of the element index.
template <typename F>
void fill_host(const Tensor& t, F&& value_of) {
  visit_dtype(t.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i)
      p[i] = static_cast<T>(value_of(i));
  });
}

// Creates on the CPU with `fill`, then moves to `device` (creation on CUDA goes through the host).
template <typename F>
Tensor create(const Shape& shape, DType dtype, Device device, F&& value_of) {
  Tensor host = Tensor::empty(shape, dtype, Device::cpu());
  fill_host(host, value_of);
  return device.is_cpu() ? host : host.to(device);
}

}  // namespace

// ---- creation ----------------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape);
  THAW_CHECK(device.is_cpu() || dtype != DType::Float64,
             "float64 tensors exist on the CPU only (they serve gradient checks); requested on {}",
             device.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (t.nbytes() == 0) return t;
  if (device.is_cpu()) {
    std::memset(t.raw_data(), 0, t.nbytes());
  } else {
    cuda_runtime::zero(t.raw_data(), t.nbytes());
  }
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  return create(shape, dtype, device, [value](int64_t) { return value; });
}

Tensor Tensor::uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype,
                       Device device) {
  THAW_CHECK(is_floating(dtype), "Tensor::uniform needs a floating dtype, got {}", dtype_name(dtype));
  THAW_CHECK(low <= high, "Tensor::uniform: low ({}) must not exceed high ({})", low, high);
  const uint64_t first = gen.reserve(uint64_t(shape_numel(shape)));
  return create(shape, dtype, device, [&](int64_t i) {
    const double u = uniform_from_bits(gen.block_at(first + uint64_t(i) / 4)[i % 4]);
    return low + (high - low) * u;
  });
}

Tensor Tensor::normal(const Shape& shape, double mean, double std, Generator& gen, DType dtype,
                      Device device) {
  THAW_CHECK(is_floating(dtype), "Tensor::normal needs a floating dtype, got {}", dtype_name(dtype));
  THAW_CHECK(std >= 0, "Tensor::normal: std must be >= 0, got {}", std);
  const uint64_t first = gen.reserve(uint64_t(shape_numel(shape)));
  return create(shape, dtype, device, [&](int64_t i) {
    const PhiloxBlock b = gen.block_at(first + uint64_t(i) / 4);
    const int lane = int(i % 4);
    double z0, z1;
    normal_pair_from_bits(b[lane & 2], b[(lane & 2) + 1], z0, z1);
    return mean + std * ((lane & 1) ? z1 : z0);
  });
}

template <typename T>
Tensor Tensor::from_data(const Shape& shape, const T* values, size_t count, Device device) {
  check_shape(shape);
  THAW_CHECK(int64_t(count) == shape_numel(shape),
             "Tensor::from_data: {} values given for shape {} ({} elements)", count, shape_str(shape),
             shape_numel(shape));
  Tensor host = empty(shape, dtype_of<T>(), Device::cpu());
  if (count > 0) std::memcpy(host.raw_data(), values, count * sizeof(T));
  return device.is_cpu() ? host : host.to(device);
}
template Tensor Tensor::from_data<float>(const Shape&, const float*, size_t, Device);
template Tensor Tensor::from_data<double>(const Shape&, const double*, size_t, Device);
template Tensor Tensor::from_data<int32_t>(const Shape&, const int32_t*, size_t, Device);
template Tensor Tensor::from_data<int64_t>(const Shape&, const int64_t*, size_t, Device);

// ---- metadata ----------------------------------------------------------------------------------------

const TensorImpl& Tensor::checked() const {
  THAW_CHECK(impl_ != nullptr, "use of an undefined tensor");
  return *impl_;
}

const Shape& Tensor::shape() const {
  return checked().shape;
}

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  const int64_t k = d < 0 ? d + n : d;
  THAW_CHECK(k >= 0 && k < n, "dimension {} out of range for a {}-d tensor {}", d, n, shape_str(shape()));
  return shape()[size_t(k)];
}

int64_t Tensor::numel() const {
  return shape_numel(shape());
}
DType Tensor::dtype() const {
  return checked().dtype;
}
Device Tensor::device() const {
  return checked().storage->device();
}
MemoryFormat Tensor::memory_format() const {
  return checked().format;
}

std::string Tensor::desc() const {
  if (!defined()) return "undefined tensor";
  std::string label = name().empty() ? "" : fmt::format("'{}' ", name());
  return fmt::format("{}{}{} on {}", label, dtype_name(dtype()), shape_str(shape()), device().str());
}

// ---- data --------------------------------------------------------------------------------------------

void* Tensor::raw_data() const {
  const TensorImpl& t = checked();
  return static_cast<char*>(t.storage->data()) + t.offset * int64_t(dtype_size(t.dtype));
}

template <typename T>
T* Tensor::data() const {
  THAW_CHECK(dtype() == dtype_of<T>(), "tensor {} accessed as {}", desc(), dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;

void Tensor::copy_(const Tensor& src) const {
  THAW_CHECK(src.shape() == shape() && src.dtype() == dtype(),
             "copy_: source {} does not match destination {}", src.desc(), desc());
  const size_t n = nbytes();
  if (n == 0 || raw_data() == src.raw_data()) return;
  const bool dst_cpu = device().is_cpu(), src_cpu = src.device().is_cpu();
  if (dst_cpu && src_cpu) {
    std::memcpy(raw_data(), src.raw_data(), n);
  } else if (dst_cpu) {
    cuda_runtime::copy_to_host(raw_data(), src.raw_data(), n);
  } else if (src_cpu) {
    cuda_runtime::copy_to_device(raw_data(), src.raw_data(), n);
  } else {
    cuda_runtime::copy_on_device(raw_data(), src.raw_data(), n);
  }
}

Tensor Tensor::clone() const {
  return to(device());
}

Tensor Tensor::to(Device target) const {
  Tensor out = empty(shape(), dtype(), target);
  out.impl_->format = memory_format();
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(DType target) const {
  THAW_CHECK(device().is_cpu(), "dtype conversion of {} runs on the CPU only; call .to(Device::cpu()) first",
             desc());
  Tensor out = empty(shape(), target, Device::cpu());
  visit_dtype(dtype(), [&](auto zero) {
    using S = decltype(zero);
    const S* src = data<S>();
    fill_host(out, [src](int64_t i) { return src[i]; });
  });
  return out;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  Shape resolved = new_shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      THAW_CHECK(infer < 0, "reshape of {} to {}: only one dimension may be -1", desc(),
                 shape_str(new_shape));
      infer = int64_t(i);
    } else {
      THAW_CHECK(resolved[i] >= 0, "reshape of {} to {}: negative dimension", desc(), shape_str(new_shape));
      known *= resolved[i];
    }
  }
  if (infer >= 0) {
    THAW_CHECK(known > 0 && numel() % known == 0, "reshape of {} to {}: cannot infer the -1 dimension",
               desc(), shape_str(new_shape));
    resolved[size_t(infer)] = numel() / known;
  }
  THAW_CHECK(shape_numel(resolved) == numel(), "reshape of {} to {}: element counts differ ({} vs {})",
             desc(), shape_str(new_shape), numel(), shape_numel(resolved));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked().storage;
  impl->offset = checked().offset;
  impl->shape = resolved;
  impl->dtype = dtype();
  impl->format = resolved.size() == 4 ? memory_format() : MemoryFormat::NCHW;
  return Tensor(std::move(impl));
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked().storage;
  impl->offset = checked().offset;
  impl->shape = shape();
  impl->dtype = dtype();
  impl->format = memory_format();
  impl->name = name();
  return Tensor(std::move(impl));
}

void Tensor::set_data(const Tensor& src) const {
  checked();
  THAW_CHECK(src.defined(), "set_data on {}: source is undefined", desc());
  impl_->storage = src.impl_->storage;
  impl_->offset = src.impl_->offset;
  impl_->shape = src.impl_->shape;
  impl_->dtype = src.impl_->dtype;
  impl_->format = src.impl_->format;
  if (impl_->grad.defined() && impl_->grad.device() != src.device())
    impl_->grad = impl_->grad.to(src.device());
}

namespace {
double element_as_double(const Tensor& t, int64_t flat) {
  double v = 0;
  visit_dtype(t.dtype(), [&](auto zero) { v = double(t.data<decltype(zero)>()[flat]); });
  return v;
}
}  // namespace

double Tensor::item() const {
  THAW_CHECK(numel() == 1, "item() needs a one-element tensor, got {}", desc());
  return element_as_double(device().is_cpu() ? *this : to(Device::cpu()), 0);
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  THAW_CHECK(int64_t(index.size()) == dim(), "at(): {} indices for {}", index.size(), desc());
  THAW_CHECK(device().is_cpu(), "at() of {}: copy to the CPU first with .to(Device::cpu())", desc());
  int64_t flat = 0, d = 0;
  for (int64_t i : index) {
    const int64_t extent = shape()[size_t(d)];
    THAW_CHECK(i >= 0 && i < extent, "at(): index {} out of range [0, {}) in dimension {} of {}", i, extent,
               d, desc());
    flat = flat * extent + i;
    ++d;
  }
  return element_as_double(*this, flat);
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  THAW_CHECK(dtype() == dtype_of<T>(), "to_vector<{}>() of {}", dtype_name(dtype_of<T>()), desc());
  const Tensor host = device().is_cpu() ? *this : to(Device::cpu());
  const T* p = host.data<T>();
  return std::vector<T>(p, p + numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

// ---- autograd ----------------------------------------------------------------------------------------

bool Tensor::requires_grad() const {
  return checked().requires_grad;
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  THAW_CHECK(is_leaf(), "set_requires_grad on {}: only leaves (not outputs of recorded ops) can change it",
             desc());
  THAW_CHECK(!requires_grad || is_floating(dtype()), "{} cannot require grad: only floating tensors can",
             desc());
  impl_->requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const {
  return checked().grad_fn == nullptr;
}
const Tensor& Tensor::grad() const {
  return checked().grad;
}

void Tensor::set_grad(const Tensor& grad) const {
  THAW_CHECK(!grad.defined() || (grad.shape() == shape() && grad.dtype() == dtype()),
             "set_grad: gradient {} does not match tensor {}", grad.desc(), desc());
  impl_->grad = grad;
}

void Tensor::zero_grad() const {
  impl_->grad = Tensor();
}
const std::shared_ptr<Node>& Tensor::grad_fn() const {
  return checked().grad_fn;
}

void Tensor::set_grad_fn(std::shared_ptr<Node> node) const {
  checked();
  impl_->grad_fn = std::move(node);
  impl_->requires_grad = impl_->grad_fn != nullptr;
}

std::shared_ptr<Node> Tensor::grad_accumulator() const {
  return checked().grad_accumulator.lock();
}
void Tensor::set_grad_accumulator(const std::shared_ptr<Node>& node) const {
  impl_->grad_accumulator = node;
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  run_backward(*this, grad, retain_graph);
}

const std::string& Tensor::name() const {
  return checked().name;
}
Tensor& Tensor::set_name(const std::string& name) {
  checked();
  impl_->name = name;
  return *this;
}

// ---- printing ----------------------------------------------------------------------------------------

namespace {
void format_values(std::string& out, const Tensor& host, int64_t dim, int64_t flat, int64_t max_per_dim) {
  const int64_t extent = host.shape()[size_t(dim)];
  const int64_t inner = shape_numel(Shape(host.shape().begin() + dim + 1, host.shape().end()));
  out += '[';
  for (int64_t i = 0; i < extent; ++i) {
    if (i > 0) out += dim + 1 == host.dim() ? ", " : ",\n" + std::string(size_t(dim + 1), ' ');
    if (extent > max_per_dim && i == max_per_dim / 2) {
      out += "...";
      i = extent - max_per_dim / 2 - 1;
      continue;
    }
    if (dim + 1 == host.dim()) {
      out += fmt::format("{:.6g}", element_as_double(host, flat + i));
    } else {
      format_values(out, host, dim + 1, flat + i * inner, max_per_dim);
    }
  }
  out += ']';
}
}  // namespace

std::string to_string(const Tensor& t, int64_t max_per_dim) {
  if (!t.defined()) return "tensor(undefined)";
  std::string out = fmt::format("tensor({}", t.desc());
  if (t.requires_grad()) out += ", requires_grad";
  out += ")\n";
  const Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  if (t.dim() == 0) {
    out += fmt::format("{:.6g}", element_as_double(host, 0));
  } else if (t.numel() > 0) {
    format_values(out, host, 0, 0, max_per_dim);
  } else {
    out += "[]";
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  return os << to_string(t);
}

}  // namespace thaw

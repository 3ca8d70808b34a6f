// Tensor (C++17-clean: included by the .cu files): a handle to shape + dtype + device + shared contiguous
// storage, plus the autograd fields.
//
// Copying a Tensor copies the handle (like torch.Tensor); clone() copies the data. Storage is always
// contiguous (row-major over the shape); reshape() returns a view of the same storage. 4-D tensors carry
// a memory-format tag: NCHW is the only layout the kernels accept today, the tag exists so that NHWC can
// be added inside kernels/ without touching nn/ or models/.
//
// Autograd (core/autograd.h): a tensor with requires_grad() is either a leaf (a parameter; its gradient
// accumulates into grad()) or the output of a recorded op (grad_fn() is the node that computes the
// gradients of that op's inputs).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"

namespace thaw {

class Generator;
class Node;
class Storage;

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& shape);    // product; 1 for a 0-dim shape

enum class MemoryFormat { NCHW, NHWC };
const char* memory_format_name(MemoryFormat format);

struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // undefined: holds nothing
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation --------------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32,
                     Device device = Device::cpu());
  // Uniform in [low, high) and normal(mean, std) from gen (rng.h: the value layout is thread-independent).
  static Tensor uniform(const Shape& shape, double low, double high, Generator& gen,
                        DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor normal(const Shape& shape, double mean, double std, Generator& gen,
                       DType dtype = DType::Float32, Device device = Device::cpu());
  // Copies count host values; count must equal the shape's element count.
  template <typename T>
  static Tensor from_data(const Shape& shape, const T* values, size_t count, Device device = Device::cpu());
  template <typename T>
  static Tensor from_data(const Shape& shape, const std::vector<T>& values, Device device = Device::cpu()) {
    return from_data<T>(shape, values.data(), values.size(), device);
  }
  template <typename T>
  static Tensor from_data(const Shape& shape, std::initializer_list<T> values,
                          Device device = Device::cpu()) {
    return from_data<T>(shape, values.begin(), values.size(), device);
  }

  // ---- metadata -------------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim() const { return int64_t(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  MemoryFormat memory_format() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  std::string desc() const;  // "float32[2, 3] on cpu", for error messages

  // ---- data -----------------------------------------------------------------------------------------
  // Typed pointer to the first element; T must match dtype() (checked).
  template <typename T>
  T* data() const;
  void* raw_data() const;

  Tensor clone() const;                      // deep copy on the same device; no autograd history
  Tensor to(Device device) const;            // copy to device (a clone when already there)
  Tensor to(DType dtype) const;              // converted copy on the CPU (float <-> double <-> ints)
  void copy_(const Tensor& src) const;       // same shape and dtype; any pair of devices
  Tensor reshape(const Shape& shape) const;  // view of the same storage; one dim may be -1. Not recorded.
  Tensor detach() const;                     // same storage, no autograd history
  // Makes this tensor (and every handle to it) view src's storage, shape and dtype; its name and autograd
  // flags stay. How a module moves its parameters to another device without changing their identity.
  void set_data(const Tensor& src) const;

  // Reading values back. item() and to_vector() copy from any device (on CUDA: one device-to-host copy,
  // which waits for the queued kernels, like torch's .item()); at() indexes element by element and is CPU
  // only: call .to(Device::cpu()) first.
  double item() const;  // requires numel() == 1
  double at(std::initializer_list<int64_t> index) const;
  template <typename T>
  std::vector<T> to_vector() const;  // copies from any device; T must match dtype()

  // ---- autograd -------------------------------------------------------------------------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool requires_grad);  // leaves only
  bool is_leaf() const;
  const Tensor& grad() const;  // undefined until a backward reaches this leaf
  void set_grad(const Tensor& grad) const;
  void zero_grad() const;  // drops the gradient (set to undefined, like set_to_none=True)
  const std::shared_ptr<Node>& grad_fn() const;
  void set_grad_fn(std::shared_ptr<Node> node) const;  // marks this tensor as the output of a recorded op
  // Gradient sink of a leaf that requires grad, shared by every op that uses the leaf (null until nn/
  // creates one; the tensor holds it weakly, the graph holds it strongly).
  std::shared_ptr<Node> grad_accumulator() const;
  void set_grad_accumulator(const std::shared_ptr<Node>& node) const;
  // Reverse-mode pass from this tensor: grad defaults to ones for a one-element tensor.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  const std::string& name() const;  // optional label (parameter name) used in messages
  Tensor& set_name(const std::string& name);

  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  TensorImpl* impl() const { return impl_.get(); }

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t, int64_t max_per_dim = 6);

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::Float32;
  MemoryFormat format = MemoryFormat::NCHW;
  std::string name;
  // autograd
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
  std::weak_ptr<Node> grad_accumulator;
};

}  // namespace thaw

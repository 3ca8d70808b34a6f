// Module: a layer or a network, as a runtime object (not a template type). It owns named parameters
// (trainable tensors), buffers (state that is not trained, e.g. BatchNorm's running statistics) and child
// modules, and names them the way torchvision does: "layer3.1.bn2.running_var".
//
// A module's forward takes one tensor and returns one tensor. Parameters are leaves that require grad
// when registered; a freeze mask (optim/freeze.h) turns that off by name.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace thaw::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// A count of the in-place writes of parameter and buffer values made outside the optimizer:
// caches derived from those values (nn/conv_bn.h's folded conv + BatchNorm weights) are recomputed when it
// changes. Whoever copies values into a module's existing tensors (weights, a checkpoint, an initialisation)
// calls note_parameter_writes() afterwards; load_state_dict, to(), nn/init.h and models/weights.h do. The
// optimizer need not (it updates tensors that require grad, which no cache folds), nor BatchNorm's forward.
void note_parameter_writes();
uint64_t parameter_writes();

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  const std::string& type_name() const { return type_name_; }

  // All parameters / buffers of this module and its descendants, depth first in registration order,
  // with dotted names relative to this module. Trainable or not.
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  NamedTensors state_dict() const;  // parameters then buffers
  // Every module below this one (this one first, named ""), depth first.
  std::vector<std::pair<std::string, Module*>> named_modules();
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

  Tensor parameter(const std::string& name) const;  // throws, naming it, when there is no such parameter
  Module& submodule(const std::string& name);       // dotted path; throws when there is none
  int64_t num_parameters(bool trainable_only = false) const;

  // train(): batch statistics in BatchNorm layers (those in mode Train); eval(): running statistics.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves every parameter and buffer to device in place: the tensors keep their identity (an optimizer
  // holding them sees the move).
  void to(Device device);
  // Converts every floating-point parameter and buffer to dtype in place, on the CPU (float64 runs the whole
  // network in double: the parity test's trajectories). Integer buffers are left as they are.
  void to(DType dtype);

  // Copies values into the existing tensors by name. Strict: every missing, unexpected or mis-shaped name
  // is reported, all at once, in one error.
  void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  Tensor register_parameter(const std::string& name, const Tensor& value);  // requires grad
  Tensor register_buffer(const std::string& name, const Tensor& value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  // Replaces a registered child (e.g. a new classifier head); the name must exist.
  void replace_module(const std::string& name, std::shared_ptr<Module> module);
  virtual void on_train_changed() {}

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool parameters, NamedTensors& out) const;

  std::string type_name_;
  NamedTensors parameters_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace thaw::nn

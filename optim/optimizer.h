// Optimizers over named parameter groups: SGD (momentum, Nesterov, weight decay), Adam and AdamW, with
// PyTorch's update formulas (kernels/ops.h: sgd_update_, adam_update_).
//
// Freezing is data (docs/design.md, "Freezing is data"): step() skips every parameter whose requires_grad()
// is false or whose grad() is undefined. A skipped parameter gets no update, no weight decay and no state;
// state that it already has is kept untouched, so a parameter that is frozen and later unfrozen continues
// with its old momentum and step count (as in PyTorch, whose optimizers skip parameters whose .grad is None).
//
// State is per parameter and keyed by the parameter's name (names are unique across all groups):
//   step            updates this parameter has received (Adam's bias corrections use it)
//   momentum_buffer SGD with momentum > 0
//   exp_avg, exp_avg_sq  Adam/AdamW
// save_state()/load_state() write and read it as HDF5 (layout in optim/optimizer.cpp's header comment).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace thaw::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;  // as nn::NamedTensors

// A set of parameters that share a learning rate and a weight decay (PyTorch's param_groups).
struct ParamGroup {
  NamedTensors params;  // leaves; trainable or frozen
  double lr = 1e-3;
  double weight_decay = 0;
  std::string name;  // for messages and the state file; "group<i>" when left empty
};

// The optimizer's state of one parameter.
struct ParamState {
  int64_t step = 0;                       // updates received
  std::map<std::string, Tensor> buffers;  // "momentum_buffer" or "exp_avg", "exp_avg_sq": the param's shape
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // "sgd", "adam" or "adamw" (stored in the state file and checked on load).
  virtual std::string kind() const = 0;

  // Updates every trainable parameter that has a gradient; skips the rest (see the file comment).
  void step();
  // Drops the gradient of every parameter of every group (Tensor::zero_grad: set to undefined).
  void zero_grad();

  // The groups, in order; an LR schedule sets groups()[i].lr before each epoch.
  std::vector<ParamGroup>& groups() { return groups_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  // Checks: parameters defined, floating, leaves; names non-empty and unique across all groups (including
  // the groups already added); group names unique; lr and weight_decay finite and >= 0.
  void add_param_group(ParamGroup group);

  // State of a parameter by name; null when it has none yet (never updated, e.g. always frozen).
  const ParamState* state(const std::string& param_name) const;
  const std::map<std::string, ParamState>& states() const { return state_; }

  // Writes the state of every parameter that has one, the kind and the hyper-parameters (HDF5, replaced
  // atomically). The groups' lr and weight_decay are saved too.
  void save_state(const std::string& path) const;
  // Replaces the whole state with the file's. Errors (naming the file and the parameter) on: another
  // optimizer kind, different group names, state for a parameter this optimizer does not have, a missing
  // buffer, a shape or dtype that differs from the parameter's, a buffer holding NaN or Inf. Restores each
  // group's lr and weight_decay (as PyTorch's load_state_dict does). Buffers are placed on each parameter's
  // device.
  void load_state(const std::string& path);

 protected:
  explicit Optimizer(std::vector<ParamGroup> groups);
  // Updates one parameter (requires_grad, grad defined). state: this parameter's, created empty
  // on its first update with step 0; the implementation increments step and creates its buffers.
  virtual void update(const Tensor& param, const Tensor& grad, const ParamGroup& group,
                      ParamState& state) = 0;
  // The buffers every state of this optimizer has (after its first update).
  virtual std::vector<std::string> buffer_names() const = 0;
  // Hyper-parameters other than lr and weight decay, saved as attributes for inspection.
  virtual std::vector<std::pair<std::string, double>> hyper_parameters() const = 0;

 private:
  std::vector<ParamGroup> groups_;
  std::map<std::string, ParamState> state_;
};

// torch.optim.SGD(momentum, dampening, nesterov) with per-group lr and weight_decay (coupled L2).
class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<ParamGroup> groups, double momentum = 0, bool nesterov = false,
               double dampening = 0);
  std::string kind() const override { return "sgd"; }
  double momentum() const { return momentum_; }
  bool nesterov() const { return nesterov_; }
  double dampening() const { return dampening_; }

 protected:
  void update(const Tensor& param, const Tensor& grad, const ParamGroup& group, ParamState& state) override;
  std::vector<std::string> buffer_names() const override;
  std::vector<std::pair<std::string, double>> hyper_parameters() const override;

 private:
  double momentum_, dampening_;
  bool nesterov_;
};

// torch.optim.Adam: weight decay is coupled L2 (added to the gradient before the moments).
class Adam : public Optimizer {
 public:
  explicit Adam(std::vector<ParamGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  std::string kind() const override { return decoupled_ ? "adamw" : "adam"; }
  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }

 protected:
  Adam(std::vector<ParamGroup> groups, double beta1, double beta2, double eps, bool decoupled_weight_decay);
  void update(const Tensor& param, const Tensor& grad, const ParamGroup& group, ParamState& state) override;
  std::vector<std::string> buffer_names() const override;
  std::vector<std::pair<std::string, double>> hyper_parameters() const override;

 private:
  double beta1_, beta2_, eps_;
  bool decoupled_;
};

// torch.optim.AdamW: decoupled weight decay, p *= 1 - lr wd before the Adam update. Note that PyTorch's
// AdamW defaults to weight_decay 1e-2; here the group's weight_decay is used as given.
class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<ParamGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
      : Adam(std::move(groups), beta1, beta2, eps, true) {}
};

}  // namespace thaw::optim

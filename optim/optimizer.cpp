// Optimizer, SGD, Adam, AdamW (optim/optimizer.h).
//
// State file (HDF5, written by save_state, read by load_state):
//   root attributes  format = "thaw-optimizer-1", optimizer = kind(), group_names = "name0,name1,...",
//                    and each hyper-parameter of the kind (momentum, dampening, nesterov / beta1, beta2, eps)
//   groups/lr, groups/weight_decay   float64 (G,), in group order
//   state/step/<param name>          int64 0-d: updates received
//   state/<buffer>/<param name>      the parameter's dtype and shape (momentum_buffer; exp_avg, exp_avg_sq)
// Only parameters that have state appear (a parameter that was never updated has none).
#include "optim/optimizer.h"

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/finite.h"
#include "core/hdf5_file.h"
#include "kernels/ops.h"

namespace thaw::optim {

namespace {

constexpr const char* kStateFormat = "thaw-optimizer-1";

std::string join(const std::vector<std::string>& items) {
  return fmt::format("{}", fmt::join(items, ","));
}

void check_rate(double value, const std::string& group, const char* what) {
  THAW_CHECK(std::isfinite(value) && value >= 0,
             "optimizer: group '{}' has {} {}; it must be finite and >= 0", group, what, value);
}

}  // namespace

// ---- Optimizer --------------------------------------------------------------------------------------------

Optimizer::Optimizer(std::vector<ParamGroup> groups) {
  for (ParamGroup& group : groups)
    add_param_group(std::move(group));
}

void Optimizer::add_param_group(ParamGroup group) {
  if (group.name.empty()) group.name = "group" + std::to_string(groups_.size());
  THAW_CHECK(group.name.find(',') == std::string::npos, "optimizer: group name '{}' must not contain ','",
             group.name);
  std::set<std::string> names;
  for (const ParamGroup& g : groups_) {
    THAW_CHECK(g.name != group.name, "optimizer: two parameter groups are named '{}'", group.name);
    for (const auto& [name, _] : g.params)
      names.insert(name);
  }
  check_rate(group.lr, group.name, "lr");
  check_rate(group.weight_decay, group.name, "weight_decay");
  for (const auto& [name, param] : group.params) {
    THAW_CHECK(!name.empty() && name.find('/') == std::string::npos,
               "optimizer: group '{}' has a parameter named '{}': names must be non-empty and without '/'",
               group.name, name);
    THAW_CHECK(param.defined(), "optimizer: parameter '{}' (group '{}') is an undefined tensor", name,
               group.name);
    THAW_CHECK(is_floating(param.dtype()) && param.is_leaf(),
               "optimizer: parameter '{}' ({}) must be a floating leaf tensor", name, param.desc());
    THAW_CHECK(names.insert(name).second,
               "optimizer: parameter '{}' appears twice (group '{}'); names must be unique across groups",
               name, group.name);
  }
  groups_.push_back(std::move(group));
}

void Optimizer::step() {
  for (const ParamGroup& group : groups_) {
    for (const auto& [name, param] : group.params) {
      if (!param.requires_grad()) continue;  // frozen: no update, no weight decay, no state
      const Tensor& grad = param.grad();
      if (!grad.defined()) continue;  // not reached by this backward
      auto [it, created] = state_.try_emplace(name);
      try {
        update(param, grad, group, it->second);
      } catch (...) {
        if (created) state_.erase(it);
        throw;
      }
    }
  }
}

void Optimizer::zero_grad() {
  for (const ParamGroup& group : groups_)
    for (const auto& [_, param] : group.params)
      param.zero_grad();
}

const ParamState* Optimizer::state(const std::string& param_name) const {
  const auto it = state_.find(param_name);
  return it == state_.end() ? nullptr : &it->second;
}

void Optimizer::save_state(const std::string& path) const {
  H5File file = H5File::create(path);
  file.set_attr("format", std::string(kStateFormat));
  file.set_attr("optimizer", kind());
  std::vector<std::string> group_names;
  std::vector<double> lrs, weight_decays;
  for (const ParamGroup& group : groups_) {
    group_names.push_back(group.name);
    lrs.push_back(group.lr);
    weight_decays.push_back(group.weight_decay);
  }
  file.set_attr("group_names", join(group_names));
  for (const auto& [name, value] : hyper_parameters())
    file.set_attr(name, value);
  const int64_t count = int64_t(groups_.size());
  file.write("groups/lr", Tensor::from_data<double>({count}, lrs));
  file.write("groups/weight_decay", Tensor::from_data<double>({count}, weight_decays));
  for (const auto& [name, s] : state_) {
    file.write("state/step/" + name, Tensor::from_data<int64_t>({}, std::vector<int64_t>{s.step}));
    for (const auto& [buffer, t] : s.buffers)
      file.write("state/" + buffer + "/" + name, t);
  }
  file.commit();
}

void Optimizer::load_state(const std::string& path) {
  const H5File file = H5File::open(path);
  THAW_CHECK(file.has_attr("format") && file.attr_string("format") == kStateFormat,
             "{}: not a thaw optimizer state file (no root attribute format = \"{}\")", path, kStateFormat);
  const std::string saved_kind = file.attr_string("optimizer");
  THAW_CHECK(saved_kind == kind(), "{}: holds the state of a '{}' optimizer, cannot load it into '{}'", path,
             saved_kind, kind());
  for (const auto& [name, value] : hyper_parameters()) {
    const double saved = file.attr_double(name);
    THAW_CHECK(saved == value, "{}: saved with {} = {}, but this optimizer has {} = {}", path, name, saved,
               name, value);
  }

  std::vector<std::string> group_names;
  for (const ParamGroup& group : groups_)
    group_names.push_back(group.name);
  const std::string saved_groups = file.attr_string("group_names");
  THAW_CHECK(saved_groups == join(group_names),
             "{}: saved with parameter groups [{}], this optimizer has [{}]", path, saved_groups,
             join(group_names));
  const std::vector<double> lrs = file.read("groups/lr").to_vector<double>();
  const std::vector<double> weight_decays = file.read("groups/weight_decay").to_vector<double>();
  THAW_CHECK(lrs.size() == groups_.size() && weight_decays.size() == groups_.size(),
             "{}: groups/lr and groups/weight_decay must have one entry per group ({})", path,
             groups_.size());

  std::map<std::string, Tensor> params;
  for (const ParamGroup& group : groups_)
    for (const auto& [name, param] : group.params)
      params.emplace(name, param);

  // Everything is read and checked before anything changes.
  std::map<std::string, ParamState> loaded;
  const std::vector<std::string> names =
      file.has("state/step") ? file.datasets("state/step") : std::vector<std::string>{};
  for (const std::string& name : names) {
    const auto param = params.find(name);
    THAW_CHECK(param != params.end(),
               "{}: has optimizer state for parameter '{}', which this optimizer does not have", path, name);
    const Tensor step = file.read("state/step/" + name);
    THAW_CHECK(step.dtype() == DType::Int64 && step.dim() == 0 && step.item() >= 0,
               "{}: state/step/{} must be a non-negative int64 scalar, got {}", path, name, step.desc());
    ParamState s;
    s.step = step.data<int64_t>()[0];
    for (const std::string& buffer : buffer_names()) {
      const std::string dataset = "state/" + buffer + "/" + name;
      THAW_CHECK(file.has(dataset), "{}: parameter '{}' has a step count but no {} (dataset '{}')", path,
                 name, buffer, dataset);
      const Tensor t = file.read(dataset);
      THAW_CHECK(t.shape() == param->second.shape() && t.dtype() == param->second.dtype(),
                 "{}: {} of parameter '{}' is {}, but the parameter is {}", path, buffer, name, t.desc(),
                 param->second.desc());
      const int64_t bad = first_non_finite(t);
      THAW_CHECK(bad < 0, "{}: dataset '{}' holds a non-finite value (NaN or Inf) at element {}", path,
                 dataset, bad);
      s.buffers.emplace(buffer, t.to(param->second.device()));
    }
    loaded.emplace(name, std::move(s));
  }
  for (const std::string& buffer : buffer_names()) {
    if (!file.has("state/" + buffer)) continue;
    for (const std::string& name : file.datasets("state/" + buffer))
      THAW_CHECK(loaded.count(name) == 1, "{}: has {} for parameter '{}' but no state/step for it", path,
                 buffer, name);
  }

  for (size_t i = 0; i < groups_.size(); ++i) {
    check_rate(lrs[i], groups_[i].name, "lr");
    check_rate(weight_decays[i], groups_[i].name, "weight_decay");
  }

  state_ = std::move(loaded);
  for (size_t i = 0; i < groups_.size(); ++i) {
    groups_[i].lr = lrs[i];
    groups_[i].weight_decay = weight_decays[i];
  }
}

// ---- SGD --------------------------------------------------------------------------------------------------

SGD::SGD(std::vector<ParamGroup> groups, double momentum, bool nesterov, double dampening)
    : Optimizer(std::move(groups)), momentum_(momentum), dampening_(dampening), nesterov_(nesterov) {
  THAW_CHECK(std::isfinite(momentum) && momentum >= 0, "SGD: momentum must be finite and >= 0, got {}",
             momentum);
  THAW_CHECK(std::isfinite(dampening), "SGD: dampening must be finite, got {}", dampening);
  THAW_CHECK(!nesterov || (momentum > 0 && dampening == 0),
             "SGD: Nesterov momentum needs momentum > 0 and dampening 0 (got momentum {}, dampening {})",
             momentum, dampening);
}

void SGD::update(const Tensor& param, const Tensor& grad, const ParamGroup& group, ParamState& state) {
  const ops::SgdHyper h{group.lr, momentum_, dampening_, group.weight_decay, nesterov_};
  Tensor buffer;
  bool first_step = false;
  if (momentum_ != 0) {
    const auto it = state.buffers.find("momentum_buffer");
    first_step = it == state.buffers.end();
    buffer = first_step ? Tensor::empty(param.shape(), param.dtype(), param.device()) : it->second;
  }
  ops::sgd_update_(param, grad, buffer, h, first_step);
  if (first_step) state.buffers.emplace("momentum_buffer", buffer);
  state.step += 1;
}

std::vector<std::string> SGD::buffer_names() const {
  if (momentum_ == 0) return {};
  return {"momentum_buffer"};
}

std::vector<std::pair<std::string, double>> SGD::hyper_parameters() const {
  return {{"momentum", momentum_}, {"dampening", dampening_}, {"nesterov", nesterov_ ? 1.0 : 0.0}};
}

// ---- Adam, AdamW ------------------------------------------------------------------------------------------

Adam::Adam(std::vector<ParamGroup> groups, double beta1, double beta2, double eps)
    : Adam(std::move(groups), beta1, beta2, eps, false) {}

Adam::Adam(std::vector<ParamGroup> groups, double beta1, double beta2, double eps,
           bool decoupled_weight_decay)
    : Optimizer(std::move(groups)),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      decoupled_(decoupled_weight_decay) {
  THAW_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "{}: betas must lie in [0, 1), got ({}, {})",
             kind(), beta1, beta2);
  THAW_CHECK(std::isfinite(eps) && eps >= 0, "{}: eps must be finite and >= 0, got {}", kind(), eps);
}

void Adam::update(const Tensor& param, const Tensor& grad, const ParamGroup& group, ParamState& state) {
  const ops::AdamHyper h{group.lr, beta1_, beta2_, eps_, group.weight_decay, decoupled_};
  const bool first_step = state.buffers.empty();
  const Tensor exp_avg =
      first_step ? Tensor::zeros(param.shape(), param.dtype(), param.device()) : state.buffers.at("exp_avg");
  const Tensor exp_avg_sq = first_step ? Tensor::zeros(param.shape(), param.dtype(), param.device())
                                       : state.buffers.at("exp_avg_sq");
  ops::adam_update_(param, grad, exp_avg, exp_avg_sq, h, state.step + 1);
  if (first_step) {
    state.buffers.emplace("exp_avg", exp_avg);
    state.buffers.emplace("exp_avg_sq", exp_avg_sq);
  }
  state.step += 1;
}

std::vector<std::string> Adam::buffer_names() const {
  return {"exp_avg", "exp_avg_sq"};
}

std::vector<std::pair<std::string, double>> Adam::hyper_parameters() const {
  return {{"beta1", beta1_}, {"beta2", beta2_}, {"eps", eps_}};
}

}  // namespace thaw::optim

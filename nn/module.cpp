#include "nn/module.h"

#include <atomic>
#include <set>

#include "core/error.h"

namespace thaw::nn {

namespace {
void check_name(const std::string& name, const std::string& type) {
  THAW_CHECK(!name.empty() && name.find('.') == std::string::npos,
             "{}: member name '{}' must be non-empty and contain no '.'", type, name);
}
std::string join(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  return name.empty() ? prefix : prefix + "." + name;
}
std::atomic<uint64_t> g_parameter_writes{0};
}  // namespace

void note_parameter_writes() {
  g_parameter_writes.fetch_add(1, std::memory_order_relaxed);
}

uint64_t parameter_writes() {
  return g_parameter_writes.load(std::memory_order_relaxed);
}

Tensor Module::register_parameter(const std::string& name, const Tensor& value) {
  check_name(name, type_name_);
  Tensor t = value;
  t.set_requires_grad(true);
  parameters_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, const Tensor& value) {
  check_name(name, type_name_);
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(name, type_name_);
  THAW_CHECK(module != nullptr, "{}: child '{}' is null", type_name_, name);
  for (const auto& [existing, _] : children_)
    THAW_CHECK(existing != name, "{}: child '{}' registered twice", type_name_, name);
  children_.emplace_back(name, std::move(module));
}

void Module::replace_module(const std::string& name, std::shared_ptr<Module> module) {
  for (auto& [existing, child] : children_) {
    if (existing == name) {
      module->train(training_);
      child = std::move(module);
      return;
    }
  }
  fail("{}: no child '{}' to replace", type_name_, name);
}

void Module::collect(const std::string& prefix, bool parameters, NamedTensors& out) const {
  for (const auto& [name, t] : parameters ? parameters_ : buffers_)
    out.emplace_back(join(prefix, name), t);
  for (const auto& [name, child] : children_)
    child->collect(join(prefix, name), parameters, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out = named_parameters();
  for (auto& entry : named_buffers())
    out.push_back(std::move(entry));
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (const auto& [name, child] : children_) {
    for (const auto& [sub, module] : child->named_modules())
      out.emplace_back(join(name, sub), module);
  }
  return out;
}

Tensor Module::parameter(const std::string& name) const {
  for (const auto& [n, t] : named_parameters())
    if (n == name) return t;
  fail("{}: no parameter '{}'", type_name_, name);
}

Module& Module::submodule(const std::string& name) {
  for (const auto& [n, m] : named_modules())
    if (n == name) return *m;
  fail("{}: no submodule '{}'", type_name_, name);
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t total = 0;
  for (const auto& [_, t] : named_parameters())
    if (!trainable_only || t.requires_grad()) total += t.numel();
  return total;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [_, child] : children_)
    child->train(on);
  on_train_changed();
}

void Module::to(Device device) {
  for (auto& [_, t] : state_dict())
    if (t.device() != device) t.set_data(t.to(device));
  note_parameter_writes();
}

void Module::to(DType dtype) {
  for (auto& [_, t] : state_dict())
    if (is_floating(t.dtype()) && t.dtype() != dtype) t.set_data(t.to(dtype));
  note_parameter_writes();
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state) {
  std::vector<std::string> problems;
  std::set<std::string> known;
  for (const auto& [name, t] : state_dict()) {
    known.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      problems.push_back(fmt::format("missing '{}'", name));
    } else if (it->second.shape() != t.shape()) {
      problems.push_back(fmt::format("'{}' has shape {}, expected {}", name, shape_str(it->second.shape()),
                                     shape_str(t.shape())));
    } else if (it->second.dtype() != t.dtype()) {
      problems.push_back(fmt::format("'{}' is {}, expected {}", name, dtype_name(it->second.dtype()),
                                     dtype_name(t.dtype())));
    }
  }
  for (const auto& [name, _] : state)
    if (!known.count(name)) problems.push_back(fmt::format("unexpected '{}'", name));
  THAW_CHECK(problems.empty(), "load_state_dict into {}: {}", type_name_, fmt::join(problems, "; "));
  for (const auto& [name, t] : state_dict())
    t.copy_(state.at(name));
  note_parameter_writes();
}

}  // namespace thaw::nn

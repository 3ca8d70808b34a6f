// Devices (C++17-clean: included by the .cu files). A tensor lives on exactly one; data moves only through an
// explicit Tensor::to(device).
#pragma once

#include <string>

namespace thaw {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;  // CUDA ordinal; 0 for the CPU

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }

  std::string str() const;                       // "cpu", "cuda:0"
  static Device parse(const std::string& name);  // "cpu", "cuda", "cuda:1"; throws on anything else
};

}  // namespace thaw

// Element types. float32 is what models compute in; float64 exists on the CPU only, for gradient checks in
// double; int32/int64 hold labels and indices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace thaw {

enum class DType { Float32, Float64, Int32, Int64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "float32", "float64", "int32", "int64"
bool is_floating(DType dtype);

// The DType of a C++ element type: dtype_of<float>() == DType::Float32.
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::Float32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::Float64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::Int32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::Int64;
}

}  // namespace thaw

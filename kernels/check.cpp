// The argument checks of the dispatch files (kernels/check.h).
#include "kernels/check.h"

namespace thaw::ops::detail {

void check_float(const Tensor& t, const char* op, const char* arg, int64_t rank) {
  THAW_CHECK(t.defined(), "{}: {} is an undefined tensor", op, arg);
  THAW_CHECK(t.dtype() == DType::Float32 || (t.dtype() == DType::Float64 && t.device().is_cpu()),
             "{}: {} must be float32 (or float64 on the CPU), got {}", op, arg, t.desc());
  if (rank >= 0) THAW_CHECK(t.dim() == rank, "{}: {} must be {}-D, got {}", op, arg, rank, t.desc());
  THAW_CHECK(t.dim() != 4 || t.memory_format() == MemoryFormat::NCHW, "{}: {} is {}; the kernels take NCHW",
             op, arg, memory_format_name(t.memory_format()));
}

void check_nonempty(const Tensor& t, const char* op, const char* arg) {
  THAW_CHECK(t.numel() > 0, "{}: {} is empty ({})", op, arg, t.desc());
}

void check_shape(const Tensor& t, const Shape& expected, const char* op, const char* arg) {
  THAW_CHECK(t.defined(), "{}: {} is an undefined tensor", op, arg);
  THAW_CHECK(t.shape() == expected, "{}: {} must have shape {}, got {}", op, arg, shape_str(expected),
             t.desc());
}

void check_scalar_grad(const Tensor& dloss, const Tensor& like, const char* op) {
  check_float(dloss, op, "dloss");
  THAW_CHECK(dloss.numel() == 1, "{}: dloss must have one element, got {}", op, dloss.desc());
  check_same(like, "logits", {{&dloss, "dloss"}}, op);
}

void check_same(const Tensor& t, const char* arg,
                std::initializer_list<std::pair<const Tensor*, const char*>> others, const char* op) {
  for (const auto& [other, name] : others) {
    if (!other->defined()) continue;
    THAW_CHECK(other->device() == t.device(), "{}: {} is on {} but {} is on {}", op, name,
               other->device().str(), arg, t.device().str());
    THAW_CHECK(other->dtype() == t.dtype(), "{}: {} is {} but {} is {}", op, name, dtype_name(other->dtype()),
               arg, dtype_name(t.dtype()));
  }
}

}  // namespace thaw::ops::detail

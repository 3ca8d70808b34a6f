// Checked entry points of conv2d (kernels/ops.h); the twins are cpu/conv2d.cpp and, one file per pass,
// cuda/conv2d_forward.cu, cuda/conv2d_backward_data.cu and cuda/conv2d_backward_weight.cu.
#include "kernels/check.h"

namespace thaw::ops {

using detail::check_float;
using detail::check_nonempty;
using detail::check_same;

Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  THAW_CHECK(x.size() == 4 && w.size() == 4, "conv2d: x {} and w {} must both be 4-D", shape_str(x),
             shape_str(w));
  THAW_CHECK(x[1] == w[1], "conv2d: x has {} channels but w {} expects {}", x[1], shape_str(w), w[1]);
  THAW_CHECK(p.stride_h >= 1 && p.stride_w >= 1 && p.pad_h >= 0 && p.pad_w >= 0,
             "conv2d: stride must be >= 1 and padding >= 0 (stride {}x{}, padding {}x{})", p.stride_h,
             p.stride_w, p.pad_h, p.pad_w);
  const int64_t hp = x[2] + 2 * p.pad_h - w[2], wp = x[3] + 2 * p.pad_w - w[3];
  THAW_CHECK(hp >= 0 && wp >= 0, "conv2d: kernel {}x{} is larger than the padded input {}x{}", w[2], w[3],
             x[2] + 2 * p.pad_h, x[3] + 2 * p.pad_w);
  return {x[0], w[0], hp / p.stride_h + 1, wp / p.stride_w + 1};
}

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  check_float(x, "conv2d_forward", "x", 4);
  check_float(w, "conv2d_forward", "w", 4);
  check_nonempty(x, "conv2d_forward", "x");
  check_nonempty(w, "conv2d_forward", "w");
  check_same(x, "x", {{&w, "w"}, {&b, "b"}}, "conv2d_forward");
  if (b.defined()) detail::check_shape(b, {w.size(0)}, "conv2d_forward", "b");
  Tensor y = Tensor::empty(conv2d_output_shape(x.shape(), w.shape(), p), x.dtype(), x.device());
  THAW_RUN(x.device(), conv2d_forward, x, w, b, p, y);
  return y;
}

Precision conv2d_precision(Precision requested, Device device) {
  if (device.is_cpu()) return cpu::conv2d_precision(requested);
#if THAW_WITH_CUDA
  return cuda::conv2d_precision(requested);  // of the current device, where thaw's kernels run
#else
  return Precision::FP32;  // unreachable: a CPU-only build has no CUDA tensors
#endif
}

std::string conv2d_precision_note(Precision requested, Device device) {
  if (requested == Precision::FP32) return "";
  const Precision computed = conv2d_precision(requested, device);
  if (computed == requested) return precision_name(requested);
  return fmt::format("{} (computed in {}: {})", precision_name(requested), precision_name(computed),
                     device.is_cpu() ? "the CPU backend computes float32" : "no tensor cores for it here");
}

Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p) {
  check_float(dy, "conv2d_backward_data", "dy", 4);
  check_float(w, "conv2d_backward_data", "w", 4);
  check_same(dy, "dy", {{&w, "w"}}, "conv2d_backward_data");
  detail::check_shape(dy, conv2d_output_shape(x_shape, w.shape(), p), "conv2d_backward_data", "dy");
  check_nonempty(dy, "conv2d_backward_data", "dy");
  Tensor dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
  THAW_RUN(dy.device(), conv2d_backward_data, dy, w, p, dx);
  return dx;
}

Tensor conv2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& w_shape,
                              const Conv2dParams& p) {
  check_float(dy, "conv2d_backward_weight", "dy", 4);
  check_float(x, "conv2d_backward_weight", "x", 4);
  check_same(dy, "dy", {{&x, "x"}}, "conv2d_backward_weight");
  detail::check_shape(dy, conv2d_output_shape(x.shape(), w_shape, p), "conv2d_backward_weight", "dy");
  check_nonempty(dy, "conv2d_backward_weight", "dy");
  Tensor dw = Tensor::empty(w_shape, dy.dtype(), dy.device());
  THAW_RUN(dy.device(), conv2d_backward_weight, dy, x, p, dw);
  return dw;
}

}  // namespace thaw::ops

// Softmax cross-entropy on the CPU, PyTorch's weighted mean (see kernels/ops.h). Per row, in double:
// logsumexp with the max subtracted, probs = exp(logits - lse), loss_i = lse - logits[y_i].
#include <cmath>

#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"

namespace thaw::cpu {

namespace {

// Labels are checked here, where they are read: reading them elsewhere would cost a pass on the GPU.
void check_label(int64_t label, int64_t row, int64_t classes) {
  THAW_CHECK(label >= 0 && label < classes, "cross_entropy: label {} of sample {} is out of range [0, {})",
             label, row, classes);
}

template <typename T>
double weight_sum(const int64_t* labels, const Tensor& class_weights, int64_t n, int64_t classes) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    check_label(labels[i], i, classes);
    total += class_weights.defined() ? double(class_weights.data<T>()[labels[i]]) : 1.0;
  }
  THAW_CHECK(total > 0, "cross_entropy: the class weights of this batch's labels sum to {} (must be > 0)",
             total);
  return total;
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& class_weights,
                           const Tensor& loss, const Tensor& probs) {
  visit_floating(logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t n = logits.size(0), classes = logits.size(1);
    const T* px = logits.data<T>();
    const int64_t* py = labels.data<int64_t>();
    const T* pw = class_weights.defined() ? class_weights.data<T>() : nullptr;
    T* pp = probs.data<T>();
    const double total_weight = weight_sum<T>(py, class_weights, n, classes);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T* row = px + i * classes;
      double max = double(row[0]);
      for (int64_t c = 1; c < classes; ++c)
        max = std::fmax(max, double(row[c]));
      double sum_exp = 0;
      for (int64_t c = 0; c < classes; ++c)
        sum_exp += std::exp(double(row[c]) - max);
      const double lse = max + std::log(sum_exp);
      for (int64_t c = 0; c < classes; ++c)
        pp[i * classes + c] = T(std::exp(double(row[c]) - lse));
      total += (pw ? double(pw[py[i]]) : 1.0) * (lse - double(row[py[i]]));
    }
    loss.data<T>()[0] = T(total / total_weight);
  });
}

void cross_entropy_backward(const Tensor& dloss, const Tensor& probs, const Tensor& labels,
                            const Tensor& class_weights, const Tensor& dlogits) {
  visit_floating(probs.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t n = probs.size(0), classes = probs.size(1);
    const T* pp = probs.data<T>();
    const int64_t* py = labels.data<int64_t>();
    const T* pw = class_weights.defined() ? class_weights.data<T>() : nullptr;
    T* pd = dlogits.data<T>();
    const double scale = double(dloss.data<T>()[0]) / weight_sum<T>(py, class_weights, n, classes);
    for (int64_t i = 0; i < n; ++i) {
      const double f = scale * (pw ? double(pw[py[i]]) : 1.0);
      for (int64_t c = 0; c < classes; ++c) {
        pd[i * classes + c] = T(f * (double(pp[i * classes + c]) - (c == py[i] ? 1.0 : 0.0)));
      }
    }
  });
}

}  // namespace thaw::cpu

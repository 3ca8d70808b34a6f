// Learning-rate schedules as closed forms of the epoch, like PyTorch's _get_closed_form_lr: lr(base_lr, e)
// is the rate used during epoch e (0-based), so a schedule has no hidden state and resuming at epoch e needs
// only e. apply_lr_schedule() sets each group of an optimizer from its own base rate.
//
//   FixedLR                  base_lr
//   StepLR(s, gamma)         base_lr * gamma^floor(e / s)                  torch.optim.lr_scheduler.StepLR
//   CosineAnnealingLR(T, m)  m + (base_lr - m) (1 + cos(pi e / T)) / 2     CosineAnnealingLR (its closed
//   form,
//                            which keeps oscillating past T; use T = the number of epochs)
//   LinearWarmupLR(W, f, s)  e < W: base_lr (f + (1 - f) e / W), then s(base_lr, e - W)
//                            = SequentialLR([LinearLR(f, 1, total_iters=W), s], milestones=[W])
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace thaw::optim {

class Optimizer;

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  // The rate for epoch (>= 0) of a group whose base rate is base_lr.
  virtual double lr(double base_lr, int64_t epoch) const = 0;
  virtual std::string describe() const = 0;  // "StepLR(step_size=7, gamma=0.1)"
};

class FixedLR : public LrSchedule {
 public:
  double lr(double base_lr, int64_t epoch) const override;
  std::string describe() const override { return "FixedLR()"; }
};

class StepLR : public LrSchedule {
 public:
  StepLR(int64_t step_size, double gamma);  // step_size >= 1
  double lr(double base_lr, int64_t epoch) const override;
  std::string describe() const override;

 private:
  int64_t step_size_;
  double gamma_;
};

class CosineAnnealingLR : public LrSchedule {
 public:
  explicit CosineAnnealingLR(int64_t t_max, double eta_min = 0);  // t_max >= 1
  double lr(double base_lr, int64_t epoch) const override;
  std::string describe() const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

class LinearWarmupLR : public LrSchedule {
 public:
  // warmup_epochs >= 0 (0: no warm-up); start_factor in (0, 1]; after: the schedule that follows (epochs
  // counted from the end of the warm-up); null means FixedLR.
  LinearWarmupLR(int64_t warmup_epochs, double start_factor,
                 std::shared_ptr<const LrSchedule> after = nullptr);
  double lr(double base_lr, int64_t epoch) const override;
  std::string describe() const override;

 private:
  int64_t warmup_epochs_;
  double start_factor_;
  std::shared_ptr<const LrSchedule> after_;
};

// The current lr of every group, in group order: call once, right after building the optimizer.
std::vector<double> base_lrs(const Optimizer& optimizer);
// groups()[i].lr = schedule.lr(base_lrs[i], epoch) for every group; base_lrs has one entry per group.
void apply_lr_schedule(Optimizer& optimizer, const LrSchedule& schedule, const std::vector<double>& base_lrs,
                       int64_t epoch);

}  // namespace thaw::optim

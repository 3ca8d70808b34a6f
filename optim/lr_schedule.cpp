// LR schedules (optim/lr_schedule.h).
#include "optim/lr_schedule.h"

#include <fmt/format.h>

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "optim/optimizer.h"

namespace thaw::optim {

namespace {
void check_epoch(int64_t epoch, const char* schedule) {
  THAW_CHECK(epoch >= 0, "{}: epoch must be >= 0, got {}", schedule, epoch);
}
}  // namespace

double FixedLR::lr(double base_lr, int64_t epoch) const {
  check_epoch(epoch, "FixedLR");
  return base_lr;
}

StepLR::StepLR(int64_t step_size, double gamma) : step_size_(step_size), gamma_(gamma) {
  THAW_CHECK(step_size >= 1, "StepLR: step_size must be >= 1, got {}", step_size);
  THAW_CHECK(std::isfinite(gamma) && gamma >= 0, "StepLR: gamma must be finite and >= 0, got {}", gamma);
}

double StepLR::lr(double base_lr, int64_t epoch) const {
  check_epoch(epoch, "StepLR");
  return base_lr * std::pow(gamma_, double(epoch / step_size_));
}

std::string StepLR::describe() const {
  return fmt::format("StepLR(step_size={}, gamma={})", step_size_, gamma_);
}

CosineAnnealingLR::CosineAnnealingLR(int64_t t_max, double eta_min) : t_max_(t_max), eta_min_(eta_min) {
  THAW_CHECK(t_max >= 1, "CosineAnnealingLR: T_max must be >= 1, got {}", t_max);
  THAW_CHECK(std::isfinite(eta_min) && eta_min >= 0,
             "CosineAnnealingLR: eta_min must be finite and >= 0, got {}", eta_min);
}

double CosineAnnealingLR::lr(double base_lr, int64_t epoch) const {
  check_epoch(epoch, "CosineAnnealingLR");
  return eta_min_ +
         (base_lr - eta_min_) * (1 + std::cos(std::numbers::pi * double(epoch) / double(t_max_))) / 2;
}

std::string CosineAnnealingLR::describe() const {
  return fmt::format("CosineAnnealingLR(T_max={}, eta_min={})", t_max_, eta_min_);
}

LinearWarmupLR::LinearWarmupLR(int64_t warmup_epochs, double start_factor,
                               std::shared_ptr<const LrSchedule> after)
    : warmup_epochs_(warmup_epochs),
      start_factor_(start_factor),
      after_(after ? std::move(after) : std::make_shared<FixedLR>()) {
  THAW_CHECK(warmup_epochs >= 0, "LinearWarmupLR: warmup_epochs must be >= 0, got {}", warmup_epochs);
  THAW_CHECK(start_factor > 0 && start_factor <= 1, "LinearWarmupLR: start_factor must lie in (0, 1], got {}",
             start_factor);
}

double LinearWarmupLR::lr(double base_lr, int64_t epoch) const {
  check_epoch(epoch, "LinearWarmupLR");
  if (epoch >= warmup_epochs_) return after_->lr(base_lr, epoch - warmup_epochs_);
  return base_lr * (start_factor_ + (1 - start_factor_) * double(epoch) / double(warmup_epochs_));
}

std::string LinearWarmupLR::describe() const {
  return fmt::format("LinearWarmupLR(warmup_epochs={}, start_factor={}, then {})", warmup_epochs_,
                     start_factor_, after_->describe());
}

std::vector<double> base_lrs(const Optimizer& optimizer) {
  std::vector<double> out;
  for (const ParamGroup& group : optimizer.groups())
    out.push_back(group.lr);
  return out;
}

void apply_lr_schedule(Optimizer& optimizer, const LrSchedule& schedule, const std::vector<double>& base_lrs,
                       int64_t epoch) {
  std::vector<ParamGroup>& groups = optimizer.groups();
  THAW_CHECK(base_lrs.size() == groups.size(),
             "apply_lr_schedule ({}): {} base rates for {} parameter groups", schedule.describe(),
             base_lrs.size(), groups.size());
  for (size_t i = 0; i < groups.size(); ++i)
    groups[i].lr = schedule.lr(base_lrs[i], epoch);
}

}  // namespace thaw::optim

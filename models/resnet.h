// ResNet18 and ResNet50 exactly as torchvision builds them (same module tree, parameter names, shapes and
// initialisation), so that torchvision's weights load by name. He et al., "Deep Residual Learning", 2015;
// torchvision's v1.5 variant: in a Bottleneck the stride sits on the 3x3 conv.
//
//   conv1 (7x7/2) - bn1 - relu - maxpool (3x3/2) - layer1..layer4 - avgpool - fc
//   resnet18: BasicBlock  x [2, 2, 2, 2], features 512
//   resnet50: Bottleneck  x [3, 4, 6, 3], features 2048 (expansion 4)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "nn/conv_bn.h"
#include "nn/layers.h"

namespace thaw::models {

enum class Arch { ResNet18, ResNet50 };
const char* arch_name(Arch arch);          // "resnet18", "resnet50"
Arch parse_arch(const std::string& name);  // throws listing the known names

class ResNet : public nn::Module {
 public:
  // Initialised like torchvision: convs kaiming-normal (fan_out, relu), BN weight 1 / bias 0, fc like
  // nn.Linear.
  ResNet(Arch arch, int64_t num_classes, Generator& gen);

  Tensor forward(const Tensor& x) override;  // (N, 3, H, W) -> (N, num_classes)
  Tensor features(const Tensor& x);          // (N, 3, H, W) -> (N, feature_dim): everything but fc

  // The forward pass as kStages stages, for running part of it (train/feature_cache.h keeps the output of
  // a frozen prefix): 0 stem (conv1, bn1, relu, maxpool), 1..4 layer1..layer4, 5 pool (avgpool, flatten,
  // no parameters), 6 fc. forward_stages(x, 0, kStages) is forward(x); stage s's input is stage s-1's
  // output: (N, 3, H, W) images into stage 0, (N, feature_dim) into fc.
  static constexpr int kStages = 7;
  Tensor forward_stages(const Tensor& x, int first, int end);
  // The prefixes of stage s's parameter and module names: {"conv1.", "bn1."}, {"layer1."}, ..., {} for the
  // pool, {"fc."}; and its name for messages ("stem", "layer1", ..., "avgpool", "fc").
  static std::vector<std::string> stage_name_prefixes(int stage);
  static const char* stage_name(int stage);
  // A new fc for num_classes outputs, initialised like nn.Linear from gen (the report's "retrained head").
  void replace_head(int64_t num_classes, Generator& gen);

  // Folding each frozen conv + BatchNorm pair into one conv with a bias (nn/conv_bn.h: when nothing of the
  // pair trains and the BatchNorm uses running statistics): on by default; off runs every BatchNorm as it is.
  void set_fold_frozen_batch_norm(bool on);
  bool fold_frozen_batch_norm() const { return fold_; }
  // The conv + BatchNorm pairs in forward order (stem, then each block's convs and its downsample), and how
  // many folds they have computed so far (a fold is recomputed only when what it reads changes).
  const std::vector<nn::ConvBatchNorm*>& conv_bn_pairs() const { return pairs_; }
  int64_t batch_norm_folds_computed() const;

  Arch arch() const { return arch_; }
  int64_t num_classes() const { return num_classes_; }
  int64_t feature_dim() const { return feature_dim_; }

 private:
  Arch arch_;
  int64_t num_classes_, feature_dim_;
  std::shared_ptr<nn::Module> stem_relu_, stem_pool_, avgpool_, flatten_;
  std::shared_ptr<nn::ConvBatchNorm> stem_;  // conv1 + bn1
  std::vector<nn::ConvBatchNorm*> pairs_;    // held by stem_ and the blocks
  bool fold_ = true;
  std::shared_ptr<nn::Module> layers_[4];
  std::shared_ptr<nn::Linear> fc_;
};

std::shared_ptr<ResNet> resnet18(int64_t num_classes, Generator& gen);
std::shared_ptr<ResNet> resnet50(int64_t num_classes, Generator& gen);
std::shared_ptr<ResNet> make_resnet(Arch arch, int64_t num_classes, Generator& gen);

}  // namespace thaw::models

#include "models/resnet.h"

#include "core/error.h"
#include "nn/conv_bn.h"
#include "nn/functional.h"
#include "nn/init.h"

namespace thaw::models {

namespace F = nn::functional;
using nn::BatchNorm2d;
using nn::Conv2d;
using nn::Module;

const char* arch_name(Arch arch) {
  return arch == Arch::ResNet18 ? "resnet18" : "resnet50";
}

Arch parse_arch(const std::string& name) {
  if (name == "resnet18") return Arch::ResNet18;
  if (name == "resnet50") return Arch::ResNet50;
  fail("unknown architecture '{}': expected 'resnet18' or 'resnet50'", name);
}

namespace {

using ConvBnPairs = std::vector<nn::ConvBatchNorm*>;

std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, Generator& gen) {
  auto c = std::make_shared<Conv2d>(in, out, kernel, stride, kernel / 2, /*bias=*/false, gen);
  nn::init::kaiming_normal_fan_out(c->weight, gen);
  return c;
}

// downsample = Sequential(conv1x1(in, out, stride), BatchNorm2d(out)): names "downsample.0", "downsample.1".
// The block runs the two through a ConvBatchNorm (added to pairs), not through the Sequential.
struct Downsample {
  std::shared_ptr<Module> module;
  std::shared_ptr<nn::ConvBatchNorm> pair;
};
Downsample downsample(int64_t in, int64_t out, int64_t stride, Generator& gen) {
  auto c = conv(in, out, 1, stride, gen);
  auto bn = std::make_shared<BatchNorm2d>(out);
  return {std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<Module>>{c, bn}),
          std::make_shared<nn::ConvBatchNorm>(c, bn)};
}

// What BasicBlock and Bottleneck share: their conv + BatchNorm pairs, each run by a ConvBatchNorm
// (nn/conv_bn.h) that also goes on the ResNet's list (for set_fold_frozen_batch_norm), and the join.
class Block : public Module {
 protected:
  using Module::Module;
  // Registers c and a BatchNorm2d(channels) under their torchvision names and returns the pair.
  std::shared_ptr<nn::ConvBatchNorm> pair(const char* conv_name, std::shared_ptr<Conv2d> c,
                                          const char* bn_name, int64_t channels, ConvBnPairs& pairs) {
    register_module(conv_name, c);
    auto bn = register_module(bn_name, std::make_shared<BatchNorm2d>(channels));
    auto p = std::make_shared<nn::ConvBatchNorm>(std::move(c), std::move(bn));
    pairs.push_back(p.get());
    return p;
  }
  void add_downsample(int64_t in, int64_t out, int64_t stride, Generator& gen, ConvBnPairs& pairs) {
    Downsample d = downsample(in, out, stride, gen);
    register_module("downsample", d.module);
    downsample_ = d.pair;
    pairs.push_back(downsample_.get());
  }
  // relu(h + shortcut(x)), fused
  Tensor join(const Tensor& h, const Tensor& x) {
    return F::add_relu(h, downsample_ ? downsample_->forward(x, /*relu=*/false) : x);
  }

 private:
  std::shared_ptr<nn::ConvBatchNorm> downsample_;
};

// out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
class BasicBlock : public Block {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t in, int64_t planes, int64_t stride, Generator& gen, ConvBnPairs& pairs)
      : Block("BasicBlock") {
    cbr1_ = pair("conv1", conv(in, planes, 3, stride, gen), "bn1", planes, pairs);
    cb2_ = pair("conv2", conv(planes, planes, 3, 1, gen), "bn2", planes, pairs);
    if (stride != 1 || in != planes) add_downsample(in, planes, stride, gen, pairs);
  }
  // One op per statement: a temporary inside a nested call lives to the end of the whole expression, so
  // relu(bn(conv(x))) would hold three activations at once where two suffice. Each pair releases its input
  // before its BatchNorm (or folded ReLU) runs when given std::move(h).
  Tensor forward(const Tensor& x) override {
    Tensor h = cbr1_->forward(x, /*relu=*/true);  // relu(bn1(conv1(x))), the BatchNorm and ReLU fused
    h = cb2_->forward(std::move(h), /*relu=*/false);
    return join(h, x);
  }

 private:
  std::shared_ptr<nn::ConvBatchNorm> cbr1_, cb2_;
};

// out = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)); stride on the 3x3 conv2.
class Bottleneck : public Block {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride, Generator& gen, ConvBnPairs& pairs)
      : Block("Bottleneck") {
    const int64_t out = planes * kExpansion;
    cbr1_ = pair("conv1", conv(in, planes, 1, 1, gen), "bn1", planes, pairs);
    cbr2_ = pair("conv2", conv(planes, planes, 3, stride, gen), "bn2", planes, pairs);
    cb3_ = pair("conv3", conv(planes, out, 1, 1, gen), "bn3", out, pairs);
    if (stride != 1 || in != out) add_downsample(in, out, stride, gen, pairs);
  }
  Tensor forward(const Tensor& x) override {  // one op per statement, as in BasicBlock
    Tensor h = cbr1_->forward(x, /*relu=*/true);
    h = cbr2_->forward(std::move(h), /*relu=*/true);
    h = cb3_->forward(std::move(h), /*relu=*/false);
    return join(h, x);
  }

 private:
  std::shared_ptr<nn::ConvBatchNorm> cbr1_, cbr2_, cb3_;
};

// One stage: `blocks` blocks, the first with `stride` (and the shortcut projection when shapes change).
template <typename Block>
std::shared_ptr<Module> make_layer(int64_t& in, int64_t planes, int64_t blocks, int64_t stride,
                                   Generator& gen, ConvBnPairs& pairs) {
  std::vector<std::shared_ptr<Module>> list;
  for (int64_t i = 0; i < blocks; ++i) {
    list.push_back(std::make_shared<Block>(in, planes, i == 0 ? stride : 1, gen, pairs));
    in = planes * Block::kExpansion;
  }
  return std::make_shared<nn::Sequential>(std::move(list));
}

}  // namespace

ResNet::ResNet(Arch arch, int64_t num_classes, Generator& gen) : Module("ResNet"), arch_(arch) {
  THAW_CHECK(num_classes >= 1, "ResNet: num_classes must be >= 1, got {}", num_classes);
  auto stem_conv = register_module("conv1", conv(3, 64, 7, 2, gen));
  auto stem_bn = register_module("bn1", std::make_shared<BatchNorm2d>(64));
  stem_ = std::make_shared<nn::ConvBatchNorm>(stem_conv, stem_bn);
  pairs_.push_back(stem_.get());
  stem_relu_ = register_module("relu", std::make_shared<nn::ReLU>());
  stem_pool_ = register_module("maxpool", std::make_shared<nn::MaxPool2d>(3, 2, 1));
  const int64_t planes[4] = {64, 128, 256, 512};
  const int64_t blocks[4] = {2, 2, 2, 2}, blocks50[4] = {3, 4, 6, 3};
  int64_t in = 64;
  for (int i = 0; i < 4; ++i) {
    const int64_t stride = i == 0 ? 1 : 2;
    const std::string name = "layer" + std::to_string(i + 1);
    layers_[i] =
        register_module(name, arch == Arch::ResNet18
                                  ? make_layer<BasicBlock>(in, planes[i], blocks[i], stride, gen, pairs_)
                                  : make_layer<Bottleneck>(in, planes[i], blocks50[i], stride, gen, pairs_));
  }
  feature_dim_ = in;
  avgpool_ = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>());
  flatten_ = std::make_shared<nn::Flatten>();  // torchvision flattens in forward(); no module, no name
  num_classes_ = num_classes;
  fc_ = register_module("fc", std::make_shared<nn::Linear>(feature_dim_, num_classes, true, gen));
}

Tensor ResNet::forward_stages(const Tensor& x, int first, int end) {
  THAW_CHECK(0 <= first && first <= end && end <= kStages, "{}: stages [{}, {}) outside [0, {}]",
             arch_name(arch_), first, end, kStages);
  if (first == 0)
    THAW_CHECK(x.dim() == 4 && x.size(1) == 3, "{}: input must be (N, 3, H, W) images, got {}",
               arch_name(arch_), x.desc());
  Tensor h = x;
  for (int stage = first; stage < end; ++stage) {
    if (stage == 0) {
      // relu(bn1(conv1(h))), the BatchNorm and ReLU fused (or folded into conv1): the "relu" module stays
      // registered, as in torchvision, but the fused op does its work. One op per statement: see BasicBlock.
      h = stem_->forward(std::move(h), /*relu=*/true);
      h = stem_pool_->forward(h);
    } else if (stage <= 4) {
      h = layers_[stage - 1]->forward(h);
    } else if (stage == 5) {
      h = flatten_->forward(avgpool_->forward(h));
    } else {
      h = fc_->forward(h);
    }
  }
  return h;
}

void ResNet::set_fold_frozen_batch_norm(bool on) {
  fold_ = on;
  for (nn::ConvBatchNorm* pair : pairs_)
    pair->set_enabled(on);
}

int64_t ResNet::batch_norm_folds_computed() const {
  int64_t total = 0;
  for (const nn::ConvBatchNorm* pair : pairs_)
    total += pair->folds_computed();
  return total;
}

Tensor ResNet::features(const Tensor& x) {
  return forward_stages(x, 0, kStages - 1);
}

Tensor ResNet::forward(const Tensor& x) {
  return forward_stages(x, 0, kStages);
}

std::vector<std::string> ResNet::stage_name_prefixes(int stage) {
  switch (stage) {
    case 0:
      return {"conv1.", "bn1."};
    case 1:
    case 2:
    case 3:
    case 4:
      return {"layer" + std::to_string(stage) + "."};
    case 5:
      return {};
    default:
      return {"fc."};
  }
}

const char* ResNet::stage_name(int stage) {
  static const char* const kNames[kStages] = {"stem",   "layer1",  "layer2", "layer3",
                                              "layer4", "avgpool", "fc"};
  THAW_CHECK(0 <= stage && stage < kStages, "ResNet: no stage {}", stage);
  return kNames[stage];
}

void ResNet::replace_head(int64_t num_classes, Generator& gen) {
  THAW_CHECK(num_classes >= 1, "replace_head: num_classes must be >= 1, got {}", num_classes);
  const Device device = fc_->weight.device();
  fc_ = std::make_shared<nn::Linear>(feature_dim_, num_classes, true, gen);
  fc_->to(device);
  replace_module("fc", fc_);
  num_classes_ = num_classes;
}

std::shared_ptr<ResNet> resnet18(int64_t num_classes, Generator& gen) {
  return std::make_shared<ResNet>(Arch::ResNet18, num_classes, gen);
}
std::shared_ptr<ResNet> resnet50(int64_t num_classes, Generator& gen) {
  return std::make_shared<ResNet>(Arch::ResNet50, num_classes, gen);
}
std::shared_ptr<ResNet> make_resnet(Arch arch, int64_t num_classes, Generator& gen) {
  return std::make_shared<ResNet>(arch, num_classes, gen);
}

}  // namespace thaw::models

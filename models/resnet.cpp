#include "models/resnet.h"

#include "core/error.h"
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

std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, Generator& gen) {
  auto c = std::make_shared<Conv2d>(in, out, kernel, stride, kernel / 2, /*bias=*/false, gen);
  nn::init::kaiming_normal_fan_out(c->weight, gen);
  return c;
}

// downsample = Sequential(conv1x1(in, out, stride), BatchNorm2d(out)): names "downsample.0", "downsample.1".
std::shared_ptr<Module> downsample(int64_t in, int64_t out, int64_t stride, Generator& gen) {
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<Module>>{
      conv(in, out, 1, stride, gen), std::make_shared<BatchNorm2d>(out)});
}

// out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
class BasicBlock : public Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t in, int64_t planes, int64_t stride, Generator& gen) : Module("BasicBlock") {
    conv1_ = register_module("conv1", conv(in, planes, 3, stride, gen));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
    conv2_ = register_module("conv2", conv(planes, planes, 3, 1, gen));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
    if (stride != 1 || in != planes)
      downsample_ = register_module("downsample", downsample(in, planes, stride, gen));
  }
  // One op per statement: a temporary inside a nested call lives to the end of the whole expression, so
  // relu(bn(conv(x))) would hold three activations at once where two suffice.
  Tensor forward(const Tensor& x) override {
    Tensor h = conv1_->forward(x);
    h = bn1_->forward_relu(h);  // relu(bn1(h)), fused
    h = conv2_->forward(h);
    h = bn2_->forward(h);
    return F::add_relu(h, downsample_ ? downsample_->forward(x) : x);  // relu(h + shortcut), fused
  }

 private:
  std::shared_ptr<Module> conv1_, conv2_, downsample_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
};

// out = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)); stride on the 3x3 conv2.
class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride, Generator& gen) : Module("Bottleneck") {
    const int64_t out = planes * kExpansion;
    conv1_ = register_module("conv1", conv(in, planes, 1, 1, gen));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
    conv2_ = register_module("conv2", conv(planes, planes, 3, stride, gen));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
    conv3_ = register_module("conv3", conv(planes, out, 1, 1, gen));
    bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(out));
    if (stride != 1 || in != out)
      downsample_ = register_module("downsample", downsample(in, out, stride, gen));
  }
  Tensor forward(const Tensor& x) override {  // one op per statement, as in BasicBlock
    Tensor h = conv1_->forward(x);
    h = bn1_->forward_relu(h);  // relu(bn1(h)), fused
    h = conv2_->forward(h);
    h = bn2_->forward_relu(h);
    h = conv3_->forward(h);
    h = bn3_->forward(h);
    return F::add_relu(h, downsample_ ? downsample_->forward(x) : x);  // relu(h + shortcut), fused
  }

 private:
  std::shared_ptr<Module> conv1_, conv2_, conv3_, downsample_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
};

// One stage: `blocks` blocks, the first with `stride` (and the shortcut projection when shapes change).
template <typename Block>
std::shared_ptr<Module> make_layer(int64_t& in, int64_t planes, int64_t blocks, int64_t stride,
                                   Generator& gen) {
  std::vector<std::shared_ptr<Module>> list;
  for (int64_t i = 0; i < blocks; ++i) {
    list.push_back(std::make_shared<Block>(in, planes, i == 0 ? stride : 1, gen));
    in = planes * Block::kExpansion;
  }
  return std::make_shared<nn::Sequential>(std::move(list));
}

}  // namespace

ResNet::ResNet(Arch arch, int64_t num_classes, Generator& gen) : Module("ResNet"), arch_(arch) {
  THAW_CHECK(num_classes >= 1, "ResNet: num_classes must be >= 1, got {}", num_classes);
  stem_conv_ = register_module("conv1", conv(3, 64, 7, 2, gen));
  stem_bn_ = register_module("bn1", std::make_shared<BatchNorm2d>(64));
  stem_relu_ = register_module("relu", std::make_shared<nn::ReLU>());
  stem_pool_ = register_module("maxpool", std::make_shared<nn::MaxPool2d>(3, 2, 1));
  const int64_t planes[4] = {64, 128, 256, 512};
  const int64_t blocks[4] = {2, 2, 2, 2}, blocks50[4] = {3, 4, 6, 3};
  int64_t in = 64;
  for (int i = 0; i < 4; ++i) {
    const int64_t stride = i == 0 ? 1 : 2;
    const std::string name = "layer" + std::to_string(i + 1);
    layers_[i] = register_module(name, arch == Arch::ResNet18
                                           ? make_layer<BasicBlock>(in, planes[i], blocks[i], stride, gen)
                                           : make_layer<Bottleneck>(in, planes[i], blocks50[i], stride, gen));
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
      h = stem_conv_->forward(h);  // one op per statement: see BasicBlock::forward
      // relu(bn1(h)), fused: the "relu" module stays registered, as in torchvision, but the fused op does its
      // work
      h = stem_bn_->forward_relu(h);
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

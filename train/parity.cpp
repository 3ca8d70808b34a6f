// thaw parity --in IN.h5 --out OUT.h5 [--device cpu|cuda]: see train/parity.h.
#include "train/parity.h"

#include <fmt/format.h>

#include <memory>

#include "core/error.h"
#include "core/hdf5_file.h"
#include "models/resnet.h"
#include "models/weights.h"
#include "nn/losses.h"
#include "optim/freeze.h"
#include "optim/optimizer.h"

namespace thaw::train {

namespace {

double attr_or(const H5File& f, const std::string& name, double fallback) {
  return f.has_attr(name) ? f.attr_double(name) : fallback;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const H5File& in, const nn::NamedTensors& params) {
  const std::string kind = in.attr_string("optimizer");
  std::vector<optim::ParamGroup> groups{
      {params, in.attr_double("lr"), attr_or(in, "weight_decay", 0), "all"}};
  const double beta1 = attr_or(in, "beta1", 0.9), beta2 = attr_or(in, "beta2", 0.999),
               eps = attr_or(in, "eps", 1e-8);
  if (kind == "sgd") {
    return std::make_unique<optim::SGD>(std::move(groups), attr_or(in, "momentum", 0),
                                        in.has_attr("nesterov") && in.attr_int("nesterov") != 0);
  }
  if (kind == "adam") return std::make_unique<optim::Adam>(std::move(groups), beta1, beta2, eps);
  if (kind == "adamw") return std::make_unique<optim::AdamW>(std::move(groups), beta1, beta2, eps);
  fail("{}: optimizer '{}' is not one of sgd, adam, adamw", in.path(), kind);
}

}  // namespace

void run_parity(const std::string& in_path, const std::string& out_path, Device device,
                const ParityOverrides& overrides) {
  const H5File in = H5File::open(in_path);
  const DType dtype = overrides.dtype;
  THAW_CHECK(dtype == DType::Float32 || dtype == DType::Float64,
             "thaw parity: dtype {} is not float32 or float64", dtype_name(dtype));
  THAW_CHECK(dtype == DType::Float32 || device.is_cpu(), "thaw parity: float64 runs on the CPU only, not {}",
             device.str());
  const models::Arch arch = models::parse_arch(in.attr_string("arch"));
  Generator unused_init(0);  // every parameter is overwritten by /weights
  auto model = models::make_resnet(arch, in.attr_int("num_classes"), unused_init);
  models::assign_weights(*model, models::read_weight_tensors(in, "weights"), in_path + " /weights");
  model->to(dtype);
  model->to(device);

  const std::string mode = in.attr_string("mode");
  THAW_CHECK(mode == "train" || mode == "eval", "{}: mode '{}' is not 'train' or 'eval'", in_path, mode);
  model->train(mode == "train");
  nn::set_batch_norm_mode(*model, {"*"}, nn::parse_batch_norm_mode(in.attr_string("bn_mode")));
  const nn::NamedTensors params = model->named_parameters();
  optim::FreezeMask::parse(in.attr_string("trainable")).apply(params);
  auto optimizer = make_optimizer(in, params);

  const Tensor x = in.read("x").to(dtype).to(device), y = in.read("y").to(device);
  const std::string loss_name = in.attr_string("loss");
  THAW_CHECK(loss_name == "cross_entropy" || loss_name == "bce_with_logits",
             "{}: loss '{}' is not 'cross_entropy' or 'bce_with_logits'", in_path, loss_name);
  const nn::CrossEntropyLoss cross_entropy(
      in.has("class_weights") ? in.read("class_weights").to(dtype).to(device) : Tensor());
  const auto loss_of = [&](const Tensor& logits) {
    return loss_name == "cross_entropy" ? cross_entropy(logits, y) : nn::BCEWithLogitsLoss()(logits, y);
  };

  const int64_t steps = overrides.steps >= 0 ? overrides.steps : in.attr_int("steps");
  THAW_CHECK(steps >= 0, "{}: steps must be >= 0, got {}", in_path, steps);
  H5File out = H5File::create(out_path);
  std::vector<double> losses;
  for (int64_t k = 0; k < std::max<int64_t>(steps, 1); ++k) {
    optimizer->zero_grad();
    const Tensor logits = model->forward(x);
    const Tensor loss = loss_of(logits);
    loss.backward();
    if (k == 0) {
      out.write("logits", logits);
      out.write("loss", loss);
      for (const auto& [name, p] : params)
        if (p.requires_grad()) out.write("grads/" + name, p.grad());
    }
    if (steps == 0) break;
    losses.push_back(loss.item());
    optimizer->step();
  }
  out.write("losses", Tensor::from_data<double>({int64_t(losses.size())}, losses).to(dtype));
  for (const auto& [name, p] : params)
    out.write("params/" + name, p);
  for (const auto& [name, b] : model->named_buffers())
    out.write("buffers/" + name, b);
  out.commit();
}

}  // namespace thaw::train

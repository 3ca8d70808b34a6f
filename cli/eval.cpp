// thaw eval WEIGHTS --data DIR [--split test|trainval]: accuracy, per-class table and confusion matrix of a
// weights file written by `thaw train` (its attributes arch, num_classes, task, image_size, class_names say
// how to build the model and read the labels).
#include <fmt/format.h>

#include "cli/commands.h"
#include "core/error.h"
#include "core/hdf5_file.h"
#include "data/loader.h"
#include "data/pets.h"
#include "models/weights.h"
#include "nn/losses.h"
#include "train/evaluate.h"

namespace thaw::cli {

namespace {

struct EvalArgs {
  std::string weights, data, split = "test", device = "cpu";
  int64_t batch_size = 64, image_size = 0, threads = 4;
};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    out.push_back(text.substr(start, nl - start));
  out.push_back(text.substr(start));
  return out;
}

void run_eval(const EvalArgs& a) {
  const H5File file = H5File::open(a.weights);
  for (const char* attr : {"task", "image_size", "class_names"})
    THAW_CHECK(file.has_attr(attr), "'{}' has no '{}' attribute: not written by thaw train", a.weights, attr);
  const data::Task task = data::parse_task(file.attr_string("task"));
  const std::vector<std::string> class_names = split_lines(file.attr_string("class_names"));
  const int64_t image_size = a.image_size > 0 ? a.image_size : file.attr_int("image_size");
  const Device device = Device::parse(a.device);

  const models::WeightsFile info = models::read_weights(a.weights);
  Generator gen(0);
  auto model = models::make_resnet(models::parse_arch(info.arch), info.num_classes, gen);
  models::assign_weights(*model, info.tensors, a.weights);
  model->to(device);
  THAW_CHECK(int64_t(class_names.size()) == data::num_classes(task),
             "'{}': {} class names for task {} ({} classes)", a.weights, class_names.size(),
             data::task_name(task), data::num_classes(task));

  const data::PetsDataset ds = data::read_pets(a.data);
  THAW_CHECK(a.split == "test" || a.split == "trainval",
             "--split: '{}' is not allowed; expected test or trainval", a.split);
  std::vector<data::LoaderSample> samples;
  for (const auto& s : a.split == "test" ? ds.test : ds.trainval)
    samples.push_back({ds.image_path(s), data::label_of(s, task)});
  data::LoaderOptions opt;
  opt.batch_size = a.batch_size;
  opt.threads = int(a.threads);
  opt.shuffle = false;
  opt.transform.crop_size = image_size;
  opt.transform.resize_size = image_size * 256 / 224;
  opt.device = device;
  data::Loader loader(samples, opt);
  train::LossFn loss;
  if (info.num_classes == 1) {
    loss = [](const Tensor& x, const Tensor& y) { return nn::BCEWithLogitsLoss()(x, y); };
  } else {
    loss = [](const Tensor& x, const Tensor& y) { return nn::CrossEntropyLoss()(x, y); };
  }
  fmt::print("thaw eval {}: {} {} on the {} split of {} ({} images, {}x{}, {})\n", a.weights, info.arch,
             data::task_name(task), a.split, a.data, samples.size(), image_size, image_size, device.str());
  const train::EvalResult r = train::evaluate(*model, loader, loss, int64_t(class_names.size()));
  fmt::print("{}", train::format_eval_report(r, class_names));
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "accuracy, per-class table and confusion matrix of trained weights");
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("WEIGHTS", a->weights, "weights file written by thaw train (runs/<name>/weights.h5)")
      ->required();
  cmd->add_option("--data", a->data, "Oxford-IIIT Pet root")->required();
  cmd->add_option("--split", a->split, "test or trainval")->check(CLI::IsMember({"test", "trainval"}));
  cmd->add_option("--device", a->device, "cpu, cuda or cuda:N");
  cmd->add_option("--batch-size", a->batch_size, "images per batch")->check(CLI::Range(1, 65536));
  cmd->add_option("--image-size", a->image_size, "crop size (default: the weights file's image_size)");
  cmd->add_option("--threads", a->threads, "loader threads")->check(CLI::Range(1, 256));
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace thaw::cli

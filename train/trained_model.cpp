// Loading a trained weights file for predict and eval, and thaw eval's evaluation (train/trained_model.h).
#include "train/trained_model.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/hdf5_file.h"
#include "data/loader.h"
#include "data/pets.h"
#include "models/weights.h"
#include "nn/losses.h"
#include "optim/freeze.h"
#include "nn/precision.h"
#include "train/config.h"

namespace thaw::train {

TrainedModel load_trained_model(const std::string& path) {
  models::WeightsFile file = models::read_weights(path);
  TrainedModel m;
  m.path = path;
  m.arch = file.arch;
  m.outputs = file.num_classes;
  const H5File h5 = H5File::open(path);
  if (h5.has_attr("task")) {
    m.task = file.task;
    THAW_CHECK(m.task == "breeds" || m.task == "species",
               "{}: attribute task = '{}' is not one thaw trains (breeds, species)", path, m.task);
    const int64_t task_classes = data::num_classes(data::parse_task(m.task));
    THAW_CHECK(m.classes() == task_classes,
               "{}: attribute task = '{}' has {} classes, but the head has {} output(s)", path, m.task,
               task_classes, m.outputs);
  }
  if (h5.has_attr("head")) {  // thaw train says which: softmax over C logits, or sigmoid of one
    m.head = h5.attr_string("head");
    THAW_CHECK(m.head == (m.outputs == 1 ? "sigmoid" : "softmax"),
               "{}: attribute head = '{}' does not fit a head with {} output(s) (expected '{}')", path,
               m.head, m.outputs, m.outputs == 1 ? "sigmoid" : "softmax");
  }
  if (h5.has_attr("image_size")) {
    m.image_size = h5.attr_int("image_size");
    THAW_CHECK(m.image_size >= kMinImageSize && m.image_size <= kMaxImageSize,
               "{}: attribute image_size = {} is not in {}..{}", path, m.image_size, kMinImageSize,
               kMaxImageSize);
  }
  if (h5.has_attr("class_names")) {
    m.class_names = file.class_names;
    THAW_CHECK(int64_t(m.class_names.size()) == m.classes(),
               "{}: attribute 'class_names' has {} names, the model has {} classes{}", path,
               m.class_names.size(), m.classes(), m.outputs == 1 ? " (a 1-logit binary head)" : "");
  }
  m.model = models::build_model_from_weights(file);
  m.model->eval();
  // Nothing trains in eval or predict: every frozen conv + BatchNorm pair folds (nn/conv_bn.h).
  optim::FreezeMask().apply(m.model->named_parameters());
  return m;
}

EvalWeightsResult evaluate_weights(const std::string& weights, const std::string& data_root,
                                   const EvalWeightsOptions& o) {
  THAW_CHECK(o.split == "test" || o.split == "trainval",
             "--split: '{}' is not allowed; expected test or trainval", o.split);
  THAW_CHECK(o.image_size == 0 || (o.image_size >= kMinImageSize && o.image_size <= kMaxImageSize),
             "--image-size: {} is not in {}..{}", o.image_size, kMinImageSize, kMaxImageSize);
  TrainedModel m = load_trained_model(weights);
  THAW_CHECK(!m.task.empty() && m.image_size > 0 && !m.class_names.empty(),
             "{}: attribute '{}' is missing: thaw eval needs task, image_size and class_names, as thaw train "
             "writes them",
             weights,
             m.task.empty()      ? "task"
             : m.image_size == 0 ? "image_size"
                                 : "class_names");
  const data::Task task = data::parse_task(m.task);
  m.model->to(o.device);
  nn::set_precision(*m.model, o.precision);

  EvalWeightsResult r;
  r.arch = m.arch;
  r.task = m.task;
  r.split = o.split;
  r.class_names = m.class_names;
  r.image_size = o.image_size > 0 ? o.image_size : m.image_size;
  const data::PetsDataset ds = data::read_pets(data_root);
  std::vector<data::LoaderSample> samples;
  for (const auto& s : o.split == "test" ? ds.test : ds.trainval)
    samples.push_back({ds.image_path(s), data::label_of(s, task)});
  r.samples = int64_t(samples.size());
  data::LoaderOptions opt;
  opt.batch_size = o.batch_size;
  opt.threads = apply_threads(o.threads);
  opt.shuffle = false;
  opt.transform.crop_size = r.image_size;
  opt.transform.resize_size = r.image_size * 256 / 224;
  opt.skip_bad = o.skip_bad;
  opt.device = o.device;
  data::Loader loader(samples, opt);
  LossFn loss;
  if (m.outputs == 1) {
    loss = [](const Tensor& x, const Tensor& y) { return nn::BCEWithLogitsLoss()(x, y); };
  } else {
    loss = [](const Tensor& x, const Tensor& y) { return nn::CrossEntropyLoss()(x, y); };
  }
  try {
    r.eval = evaluate(*m.model, loader, loss, m.classes());
  } catch (const Error& e) {
    fail("{} on the {} split: {}", weights, o.split, e.what());
  }
  r.bad_files = loader.stats().bad_files;
  return r;
}

}  // namespace thaw::train

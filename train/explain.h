// What one training step does, layer by layer, for a config's model and freeze mask: `thaw explain`
// (cli/explain.cpp; docs/memory.md, "Freezing is cheaper, layer by layer"). For every op of the forward pass:
// whether autograd records a node, which backward passes run, the bytes its node keeps alive for the
// backward pass, its FLOPs and its trainable parameters; summed per layer and over the step.
//
// The explanation is derived, not measured: explain_step() walks the ResNet's modules in the order of
// models/resnet.cpp's forward (the stem, each block's convs, fused BatchNorm + ReLU, downsample branch, add
// and ReLU, then the pool, fc and the loss) and applies to each op the rule of its nn/functional/<op>.cpp.
// A conv + BatchNorm pair that nn/conv_bn.h folds (nothing of it trains, the BatchNorm uses running
// statistics, the model's set_fold_frozen_batch_norm is on) is one conv2d with a bias, then a relu where the
// BatchNorm had one fused, as models/resnet.cpp runs it. The rules:
//   records   when grad mode is on and some input requires grad (nn/autograd_nodes.cpp should_record); the
//             output then requires grad. Recorded nodes and gradient sinks are what Node::live_count()
//             counts.
//   D         backward-data, the input's gradient: only when the input requires grad.
//   W         backward-weight, the parameters' gradients: only for parameters that train.
//   keeps     conv2d, linear: x when the weight trains (the weight when x needs a gradient: a parameter, or a
//             folded conv's w', alive anyway); batch_norm: x, mean, invstd; batch_norm_relu: x, y, mean,
//             invstd; relu: y; max_pool2d: the int32 argmax; add, global_avg_pool2d, flatten: nothing;
//             cross_entropy: the softmax probabilities; bce_with_logits: the logits and the float targets.
// Kept bytes count each storage once (the input of a block is kept by its conv1 and its downsample conv,
// and is the output its previous block's relu keeps), and leave out what is alive without the graph: the
// parameters, the batch (images, labels) and the step's outputs (logits, loss), which the caller holds.
// tests/test_explain.cpp checks nodes and bytes exactly against a real forward pass (core/storage.h's CPU
// counters), and the conv FLOPs against bench/kernels/problems.h.
//
// The memory timeline replays the step's tensor bytes event by event, as the CPU backend allocates them and
// core/storage.h counts them: the forward ops in order (an op's output lives until the code of
// models/resnet.cpp and nn/layers.cpp has no variable and no node holding it); then the backward nodes in
// core/autograd.cpp run_backward()'s order, each allocating its gradients (a gradient sink: its parameter's
// .grad) and freeing what it kept; then the optimizer's step and zero_grad; then the step's outputs go.
// tests/test_explain.cpp checks it to the byte against the CPU counters of real steps: each phase's peak and
// end, each block's peak, and the bytes alive and the peak at every gradient sink of the backward. (On CUDA,
// batch_norm_relu still runs as two kernels, each holding one more activation while it runs, and the caching
// allocator rounds sizes up.)
//
// FLOPs: 2 x multiply-adds of the convolutions (2 N K P Q C R S per pass, as bench/kernels/problems.h counts
// them) and of fc (2 N I O per pass); BatchNorm, ReLU, pooling, add and the loss are not counted (they are
// limited by memory traffic, and together they are under 1% of a ResNet's arithmetic).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/resnet.h"
#include "train/config.h"

namespace thaw::train {

// One op of the forward pass and what the step does for it.
struct OpExplanation {
  std::string
      layer;  // the row it is summed into: "conv1", "bn1", "maxpool", "layer3.0", "avgpool", "fc", "loss"
  std::string module;  // the module that runs it: "layer3.0.downsample.0"; a block's add and relu: "layer3.0"
  std::string op;      // thaw's function: conv2d, batch_norm, batch_norm_relu, relu, max_pool2d, add,
                       // global_avg_pool2d, flatten, linear, cross_entropy, bce_with_logits
  std::string folded;  // conv2d: the BatchNorm folded into it ("layer3.0.bn1", its bias then b'), else ""
  std::string shape;   // per image: "64x56x56 -> 128x28x28"
  bool records = false;          // autograd records a node for it
  bool backward_data = false;    // D: its backward computes its input's gradient
  bool backward_weight = false;  // W: its backward computes gradients of its parameters
  int64_t gradient_sinks = 0;  // AccumulateGrad nodes it creates: one per trainable parameter tensor it reads
  std::string kept;            // what its node keeps: "x, mean, invstd"; "" when nothing or not recorded
  int64_t kept_bytes = 0;      // bytes of those that no earlier op keeps and the graph alone holds
  double forward_flops = 0, backward_data_flops = 0, backward_weight_flops = 0;  // conv2d and linear only
  int64_t trainable_params = 0;  // values of its parameters that train

  int64_t nodes() const { return (records ? 1 : 0) + gradient_sinks; }
};

// The sums over the ops of one row ("layer3.0": a whole block).
struct LayerExplanation {
  std::string layer;
  std::string passes;  // "F", "F W", "F D" or "F D W": the passes any of its ops runs
  int64_t nodes = 0, kept_bytes = 0, trainable_params = 0;
  double forward_flops = 0, backward_data_flops = 0, backward_weight_flops = 0;
};

// One event of the step's memory timeline: a forward op, a backward node, the optimizer's step or zero_grad,
// or the step's end. Bytes of the tensors the step creates: what lives between steps (weights, BatchNorm
// statistics, the optimizer's state, the batch) is not counted. The step is one after the first: the first
// also allocates the optimizer's state (SGD's momentum, Adam's moments), held between steps from then on.
struct MemoryEvent {
  std::string phase;   // forward | backward | optimizer | end
  std::string module;  // forward and backward: OpExplanation::module; a gradient sink: its parameter,
                       // "layer3.0.conv1.weight"; optimizer: "optimizer"; end: "step"
  std::string op;      // the forward op, also for its backward node; "accumulate_grad" for a gradient sink;
                       // "step", "zero_grad"; "outputs freed" (the logits and the loss)
  int64_t peak_bytes = 0;   // the most bytes alive while it runs (from its start to the next event's)
  int64_t after_bytes = 0;  // bytes alive when the next event starts
};

struct StepExplanation {
  std::string arch;  // resnet18 | resnet50
  int64_t num_outputs = 0;
  std::string loss;  // cross_entropy | bce
  int64_t batch = 0, image_size = 0;
  std::string bn_mode;  // "train" (batch statistics) or "frozen" (running statistics), as all BN layers are
  int64_t conv_bn_pairs = 0, folded_pairs = 0;  // the model's conv + BatchNorm pairs, and those folded
  std::string trainable;  // explain_step: the model's children that train, "layer3, layer4, fc" ("layer1
                          // (partly)" where some of its parameters do); explain_config: the mask's patterns
  int64_t parameter_tensors = 0,
          trainable_tensors = 0;                 // named parameters of the model, and those that train
  int64_t parameters = 0, trainable_params = 0;  // their values
  std::vector<OpExplanation> ops;                // in the order the forward pass runs them
  std::vector<MemoryEvent> timeline;             // the step's memory, event by event
  // explain_config: what thaw train's feature cache (train/feature_cache.h) does with this config at this
  // epoch, as the run would say it; "" from explain_step. The table explains the whole step either way.
  std::string feature_cache;

  std::vector<LayerExplanation> layers() const;  // the rows, in forward order
  int64_t recorded_nodes() const;                // function nodes (one per recorded op)
  int64_t gradient_sinks() const;
  int64_t nodes() const { return recorded_nodes() + gradient_sinks(); }
  int64_t kept_bytes() const;
  double forward_flops() const;
  double backward_data_flops() const;
  double backward_weight_flops() const;
  double backward_flops() const { return backward_data_flops() + backward_weight_flops(); }
  // The timeline's peak: the most bytes the step adds to what lives between steps.
  int64_t peak_bytes() const;
};

// A ResNet of config.arch with config.num_outputs() outputs, randomly initialised from config.seed (explain
// needs the architecture only: no weights file, no dataset), in train mode, with the step setup applied.
std::shared_ptr<models::ResNet> make_explained_model(const TrainConfig& config, int64_t epoch = 1);

// Sets what a training step of `epoch` (1-based) of config does to model, as thaw train does
// (train/trainer.cpp): requires_grad from the freeze mask (trainable = last_layers | patterns | bn_only |
// all, or gradual's mask at that epoch) and every BatchNorm's mode (bn_mode, bn_frozen_from_epoch).
void apply_step_setup(models::ResNet& model, const TrainConfig& config, int64_t epoch = 1);

// The mask's patterns for `epoch` (1-based), as apply_step_setup applies them: "layer3, layer4, fc".
std::string trainable_patterns(const TrainConfig& config, int64_t epoch = 1);

// Explains one training step of model on (batch, 3, image_size, image_size) images with the given loss
// ("cross_entropy" | "bce"), from the model's requires_grad flags, BatchNorm modes and train/eval state as
// they are now, with its memory timeline. Runs nothing: shapes, flags and the rules only (the file comment).
StepExplanation explain_step(models::ResNet& model, int64_t batch, int64_t image_size,
                             const std::string& loss);

// What thaw train's feature cache (train/feature_cache.h) does for config with `model` as the epoch sets it
// up: "off (...)", "not used: <reason>", or which prefix it computes once and what a step then runs.
std::string describe_feature_cache(const TrainConfig& config, models::ResNet& model);

// make_explained_model + explain_step at config's batch_size and image_size, with feature_cache set.
StepExplanation explain_config(const TrainConfig& config, int64_t epoch = 1);

// Real training steps, for comparison with the explanation: the median time and the peak memory.
struct StepMeasurement {
  std::string device;       // "cpu", "cuda:0"
  int steps = 0;            // timed steps (after one untimed warm-up step)
  double median_ms = 0;     // forward, loss, backward, optimizer step; on CUDA up to a device synchronisation
  int64_t start_bytes = 0;  // tensor bytes in use before a timed step: weights, optimizer state, the batch
  int64_t peak_bytes = 0;   // the most tensor bytes in use during the timed steps (CPU: core/storage.h's
                            // counters; CUDA: cuda_runtime::memory_stats, rounded to 512 bytes)
};

// Runs 1 + steps training steps of model (set up by apply_step_setup) on config.device with random images
// and labels (config.batch_size, config.image_size) and config's optimizer (sgd | adam | adamw, lr, momentum,
// weight decay). Moves model to the device. Changes the model's weights: use a model made for measuring.
StepMeasurement measure_step(models::ResNet& model, const TrainConfig& config, int steps);

// The report's "last l layers", l = 1..5, for ResNet18 and ResNet50, with config's task, loss, BatchNorm
// mode, batch and image size (its arch and trainable keys are replaced).
struct LayerCountRow {
  std::string arch;
  int l = 0;
  StepExplanation explanation;
  std::optional<StepMeasurement> measured;
};
std::vector<LayerCountRow> explain_over_layers(const TrainConfig& config, bool measure, int steps);

// The printed forms (markdown tables): the step's summary and one row per layer (per_op: one row per op),
// and the l table.
std::string format_step_explanation(const StepExplanation& e, bool per_op);
std::string format_over_layers(const std::vector<LayerCountRow>& rows);

// The memory timeline as CSV: two '#' lines (the step, the units), a header line, then one row per event:
// event,phase,module,op,peak_bytes,after_bytes.
std::string format_timeline_csv(const StepExplanation& e);

}  // namespace thaw::train

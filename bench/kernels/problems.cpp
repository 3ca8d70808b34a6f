// The problem tables of thaw bench kernels: a walk over torchvision's ResNet18/50 (v1.5: the stride of a
// bottleneck sits on its 3x3 conv) that lists each op call, then a merge into distinct shapes.
#include "bench/kernels/problems.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace thaw::bench {

const char* op_name(OpKind op) {
  switch (op) {
    case OpKind::ConvForward:
      return "conv2d_forward";
    case OpKind::ConvBackwardData:
      return "conv2d_backward_data";
    case OpKind::ConvBackwardWeight:
      return "conv2d_backward_weight";
    case OpKind::BatchNormForward:
      return "batch_norm_forward";
    case OpKind::BatchNormBackward:
      return "batch_norm_backward";
    case OpKind::BatchNormReluForward:
      return "batch_norm_relu_forward";
    case OpKind::BatchNormReluBackward:
      return "batch_norm_relu_backward";
    case OpKind::ReluBackward:
      return "relu_backward";
    case OpKind::MaxPoolForward:
      return "max_pool2d_forward";
    case OpKind::MaxPoolBackward:
      return "max_pool2d_backward";
    case OpKind::AvgPoolForward:
      return "global_avg_pool2d_forward";
    case OpKind::AvgPoolBackward:
      return "global_avg_pool2d_backward";
    case OpKind::AddReluForward:
      return "add_relu_forward";
    case OpKind::Add:
      return "add";
    case OpKind::CrossEntropyForward:
      return "cross_entropy_forward";
    case OpKind::CrossEntropyBackward:
      return "cross_entropy_backward";
  }
  return "?";
}

bool is_conv(OpKind op) {
  return op == OpKind::ConvForward || op == OpKind::ConvBackwardData || op == OpKind::ConvBackwardWeight;
}

namespace {

bool is_maxpool(OpKind op) {
  return op == OpKind::MaxPoolForward || op == OpKind::MaxPoolBackward;
}
bool is_avgpool(OpKind op) {
  return op == OpKind::AvgPoolForward || op == OpKind::AvgPoolBackward;
}
bool is_xent(OpKind op) {
  return op == OpKind::CrossEntropyForward || op == OpKind::CrossEntropyBackward;
}

}  // namespace

Shape Problem::x_shape() const {
  if (is_xent(op)) return {n, c};
  return {n, c, h, w};
}

Shape Problem::w_shape() const {
  return {k, c, r, r};
}

Shape Problem::y_shape() const {
  if (is_conv(op) || is_maxpool(op)) {
    const int64_t p = (h + 2 * pad - r) / stride + 1, q = (w + 2 * pad - r) / stride + 1;
    return {n, is_conv(op) ? k : c, p, q};
  }
  if (is_avgpool(op)) return {n, c, 1, 1};
  return x_shape();
}

std::string Problem::shape_str() const {
  if (is_xent(op)) return fmt::format("{}x{}", n, c);
  std::string s = fmt::format("{}x{}x{}x{}", n, c, h, w);
  if (is_conv(op)) s += fmt::format(" k{} {}x{}/{}", k, r, r, stride);
  if (is_maxpool(op)) s += fmt::format(" {}x{}/{}", r, r, stride);
  return s;
}

std::string Problem::name() const {
  return fmt::format("{} {}", op_name(op), shape_str());
}

double Problem::flops() const {
  const double x = double(shape_numel(x_shape())), y = double(shape_numel(y_shape()));
  switch (op) {
    case OpKind::ConvForward:
    case OpKind::ConvBackwardData:
    case OpKind::ConvBackwardWeight:
      return 2.0 * y * double(c * r * r);
    case OpKind::BatchNormForward:
      return 5.0 * x;  // sum and sum of squares (3), then x a + b (2)
    case OpKind::BatchNormBackward:
      return 9.0 * x;  // xhat, dy xhat, two sums (5), dx = a dy + b x + c (4)
    case OpKind::BatchNormReluForward:
      return 6.0 * x;  // batch norm's 5, the max
    case OpKind::BatchNormReluBackward:
      return 10.0 * x;  // the mask, batch norm's 9
    case OpKind::AddReluForward:
      return 2.0 * x;  // the add, the max
    case OpKind::ReluBackward:
    case OpKind::Add:
    case OpKind::AvgPoolForward:
    case OpKind::AvgPoolBackward:
      return x;
    case OpKind::MaxPoolForward:
      return y * double(r * r - 1);  // comparisons
    case OpKind::MaxPoolBackward:
      return y;  // one add per output
    case OpKind::CrossEntropyForward:
      return 4.0 * x;  // max, exp, sum, divide
    case OpKind::CrossEntropyBackward:
      return 2.0 * x;
  }
  return 0;
}

double Problem::bytes() const {
  const double x = double(shape_numel(x_shape())), y = double(shape_numel(y_shape()));
  const double f = 4, channels = double(c);
  switch (op) {
    case OpKind::ConvForward:         // x, w -> y
    case OpKind::ConvBackwardData:    // dy, w -> dx
    case OpKind::ConvBackwardWeight:  // dy, x -> dw
      return f * (x + double(shape_numel(w_shape())) + y);
    case OpKind::BatchNormForward:  // x, gamma, beta, running mean/var -> y, mean, invstd, running mean/var
      return f * (2 * x + 9 * channels);
    case OpKind::BatchNormBackward:  // dy, x, gamma, mean, invstd -> dx, dgamma, dbeta
      return f * (3 * x + 6 * channels);
    case OpKind::BatchNormReluForward:  // as batch norm: the ReLU costs no traffic of its own
      return f * (2 * x + 9 * channels);
    case OpKind::BatchNormReluBackward:  // dy, y (the mask), x, gamma, mean, invstd -> dx, dgamma, dbeta
      return f * (4 * x + 6 * channels);
    case OpKind::ReluBackward:
      return f * 3 * x;  // dy, y -> dx
    case OpKind::AddReluForward:
    case OpKind::Add:
      return f * 3 * x;  // a, b -> y
    case OpKind::MaxPoolForward:
      return f * (x + y);  // x -> y
    case OpKind::MaxPoolBackward:
      return f * (x + 2 * y);     // dy, where each maximum is -> dx
    case OpKind::AvgPoolForward:  // x -> y
    case OpKind::AvgPoolBackward:
      return f * (x + y);  // dy -> dx
    case OpKind::CrossEntropyForward:
      return f * 2 * x + 8.0 * n;  // logits, labels -> probs (and a loss)
    case OpKind::CrossEntropyBackward:
      return f * 2 * x + 8.0 * n;  // probs, labels -> dlogits
  }
  return 0;
}

bool Problem::same_problem(const Problem& o) const {
  return op == o.op && n == o.n && c == o.c && h == o.h && w == o.w && k == o.k && r == o.r &&
         stride == o.stride && pad == o.pad;
}

namespace {

// Collects the op calls of one training step in execution order: forward calls as the network runs them,
// backward calls pushed onto a stack and appended reversed at the end.
class StepRecorder {
 public:
  StepRecorder(std::string model, int64_t batch) : model_(std::move(model)), batch_(batch) {}

  // conv r x r (padding r / 2) from c channels at h x h to k channels, with its backward passes.
  void conv(const std::string& layer, int64_t c, int64_t h, int64_t k, int64_t r, int64_t stride,
            bool needs_dx = true) {
    Problem p = make(OpKind::ConvForward, layer, c, h);
    p.k = k, p.r = r, p.stride = stride, p.pad = r / 2;
    forward_.push_back(p);
    p.op = OpKind::ConvBackwardWeight;
    backward_.push_back(p);
    if (needs_dx) {
      p.op = OpKind::ConvBackwardData;
      backward_.push_back(p);
    }
  }
  void batch_norm(const std::string& layer, int64_t c, int64_t h) {
    pair(OpKind::BatchNormForward, OpKind::BatchNormBackward, make(OpKind::BatchNormForward, layer, c, h));
  }
  // A BatchNorm and the ReLU after it, fused as the model runs them (nn::BatchNorm2d::forward_relu).
  void batch_norm_relu(const std::string& layer, int64_t c, int64_t h) {
    pair(OpKind::BatchNormReluForward, OpKind::BatchNormReluBackward,
         make(OpKind::BatchNormReluForward, layer, c, h));
  }
  void maxpool(const std::string& layer, int64_t c, int64_t h, int64_t r, int64_t stride, int64_t pad) {
    Problem p = make(OpKind::MaxPoolForward, layer, c, h);
    p.r = r, p.stride = stride, p.pad = pad;
    pair(OpKind::MaxPoolForward, OpKind::MaxPoolBackward, p);
  }
  void avgpool(const std::string& layer, int64_t c, int64_t h) {
    pair(OpKind::AvgPoolForward, OpKind::AvgPoolBackward, make(OpKind::AvgPoolForward, layer, c, h));
  }
  // The residual join relu(a + b), fused; its backward is one relu_backward, whose dx is the gradient of
  // both branches.
  void add_relu(const std::string& layer, int64_t c, int64_t h) {
    pair(OpKind::AddReluForward, OpKind::ReluBackward, make(OpKind::AddReluForward, layer, c, h));
  }
  // The backward's sum of two gradients of one tensor (a block's input, read by conv1 and the shortcut).
  // Recorded where the tensor is first read, so that in the reversed backward it comes after both.
  void gradient_sum(const std::string& layer, int64_t c, int64_t h) {
    backward_.push_back(make(OpKind::Add, layer, c, h));
  }
  void cross_entropy(const std::string& layer, int64_t classes) {
    Problem p = make(OpKind::CrossEntropyForward, layer, classes, 1);
    pair(OpKind::CrossEntropyForward, OpKind::CrossEntropyBackward, p);
  }

  std::vector<Problem> step() const {
    std::vector<Problem> all = forward_;
    all.insert(all.end(), backward_.rbegin(), backward_.rend());
    return all;
  }

 private:
  Problem make(OpKind op, const std::string& layer, int64_t c, int64_t h) const {
    Problem p;
    p.op = op, p.n = batch_, p.c = c, p.h = h, p.w = h;
    p.layers = {model_ + " " + layer};
    p.uses = {{model_, 1}};
    return p;
  }
  void pair(OpKind fwd, OpKind bwd, Problem p) {
    p.op = fwd;
    forward_.push_back(p);
    p.op = bwd;
    backward_.push_back(p);
  }

  std::string model_;
  int64_t batch_;
  std::vector<Problem> forward_, backward_;
};

int64_t out_size(int64_t h, int64_t r, int64_t stride, int64_t pad) {
  return (h + 2 * pad - r) / stride + 1;
}

}  // namespace

std::vector<Problem> network_ops(const std::string& model, int64_t batch, int64_t image_size,
                                 int64_t classes) {
  THAW_CHECK(model == "resnet18" || model == "resnet50",
             "bench kernels: model '{}' is not resnet18 or resnet50", model);
  THAW_CHECK(batch > 0 && image_size >= 32 && classes > 0,
             "bench kernels: batch {}, image size {}, classes {}: need batch > 0, size >= 32, classes > 0",
             batch, image_size, classes);
  const bool bottleneck = model == "resnet50";
  const int64_t expansion = bottleneck ? 4 : 1;
  const int64_t blocks[4] = {bottleneck ? 3 : 2, bottleneck ? 4 : 2, bottleneck ? 6 : 2, bottleneck ? 3 : 2};
  StepRecorder rec(model, batch);

  int64_t h = out_size(image_size, 7, 2, 3);
  rec.conv("conv1", 3, image_size, 64, 7, 2, /*needs_dx=*/false);  // the image needs no gradient
  rec.batch_norm_relu("bn1+relu", 64, h);
  rec.maxpool("maxpool", 64, h, 3, 2, 1);
  h = out_size(h, 3, 2, 1);

  int64_t in = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = 64 << stage, out = planes * expansion;
    for (int64_t b = 0; b < blocks[stage]; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1, h_out = out_size(h, 3, stride, 1);
      const std::string block = fmt::format("layer{}.{}", stage + 1, b);
      rec.gradient_sum(block + " input gradient", in, h);
      if (bottleneck) {
        rec.conv(block + ".conv1", in, h, planes, 1, 1);
        rec.batch_norm_relu(block + ".bn1+relu", planes, h);
        rec.conv(block + ".conv2", planes, h, planes, 3, stride);
        rec.batch_norm_relu(block + ".bn2+relu", planes, h_out);
        rec.conv(block + ".conv3", planes, h_out, out, 1, 1);
        rec.batch_norm(block + ".bn3", out, h_out);
      } else {
        rec.conv(block + ".conv1", in, h, planes, 3, stride);
        rec.batch_norm_relu(block + ".bn1+relu", planes, h_out);
        rec.conv(block + ".conv2", planes, h_out, planes, 3, 1);
        rec.batch_norm(block + ".bn2", planes, h_out);
      }
      if (stride != 1 || in != out) {
        rec.conv(block + ".downsample.0", in, h, out, 1, stride);
        rec.batch_norm(block + ".downsample.1", out, h_out);
      }
      rec.add_relu(block + " add+relu", out, h_out);
      in = out;
      h = h_out;
    }
  }
  rec.avgpool("avgpool", in, h);
  rec.cross_entropy("loss", classes);
  return rec.step();
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  return s;
}

bool matches(const Problem& p, const std::vector<std::string>& filters) {
  if (filters.empty()) return true;
  for (const std::string& f : filters) {
    const std::string needle = lower(f);
    if (lower(p.name()).find(needle) != std::string::npos) return true;
    for (const std::string& layer : p.layers)
      if (lower(layer).find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::vector<Problem> make_problems(const TableOptions& options) {
  THAW_CHECK(!options.models.empty() && !options.batches.empty(), "bench kernels: no model or no batch size");
  std::vector<Problem> merged;
  for (const int64_t batch : options.batches) {
    std::vector<Problem> distinct;
    std::vector<size_t> order;  // per distinct problem: when its first layer's forward ran (for sorting)
    size_t calls_before = 0;
    for (const std::string& model : options.models) {
      const std::vector<Problem> calls = network_ops(model, batch, options.image_size, options.classes);
      std::map<std::string, size_t> forward_at;  // layer -> index of its first call (the forward)
      for (size_t i = 0; i < calls.size(); ++i)
        forward_at.emplace(calls[i].layers[0], calls_before + i);
      for (const Problem& call : calls) {
        auto it = std::find_if(distinct.begin(), distinct.end(),
                               [&](const Problem& p) { return p.same_problem(call); });
        if (it == distinct.end()) {
          distinct.push_back(call);
          order.push_back(forward_at.at(call.layers[0]));
          continue;
        }
        it->uses[model] += 1;
        if (std::find(it->layers.begin(), it->layers.end(), call.layers[0]) == it->layers.end())
          it->layers.push_back(call.layers[0]);
      }
      calls_before += calls.size();
    }
    // By op, then in the order the network runs the layers forward (so backward rows line up with forward).
    std::vector<size_t> index(distinct.size());
    for (size_t i = 0; i < index.size(); ++i)
      index[i] = i;
    std::stable_sort(index.begin(), index.end(), [&](size_t a, size_t b) {
      if (distinct[a].op != distinct[b].op) return int(distinct[a].op) < int(distinct[b].op);
      return order[a] < order[b];
    });
    for (const size_t i : index)
      if (matches(distinct[i], options.filters)) merged.push_back(distinct[i]);
  }
  return merged;
}

}  // namespace thaw::bench

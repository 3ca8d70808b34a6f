// thaw smoke: a one-minute check that the CPU backend trains. A small ConvNet (conv-bn-relu-pool x2,
// global average pool, linear) learns to tell horizontal from vertical stripes in noisy 16x16 images,
// with plain gradient descent written out here; the first conv is frozen, to show that a frozen layer
// records no graph. Prints the loss and accuracy, and fails if the network did not learn.
// (The README's main job until `thaw demo` exists.)
#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "cli/commands.h"
#include "core/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "nn/functional.h"

namespace thaw::cli {

namespace {

namespace F = nn::functional;

struct Batch {
  Tensor x;       // (N, 1, 16, 16)
  Tensor labels;  // int64 (N,): 0 horizontal stripes, 1 vertical
};

Batch make_batch(int64_t n, Generator& gen) {
  std::vector<float> pixels(static_cast<size_t>(n * 16 * 16));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[size_t(i)] = gen.next_int(0, 2);
    const double period = gen.next_uniform(3.0, 6.0), phase = gen.next_uniform(0.0, 6.283);
    for (int64_t r = 0; r < 16; ++r)
      for (int64_t c = 0; c < 16; ++c) {
        const double t = labels[size_t(i)] == 0 ? double(r) : double(c);
        pixels[size_t((i * 16 + r) * 16 + c)] =
            float(std::sin(6.283 * t / period + phase) + 0.8 * gen.next_normal());
      }
  }
  return {Tensor::from_data<float>({n, 1, 16, 16}, pixels), Tensor::from_data<int64_t>({n}, labels)};
}

struct Net {
  Tensor w1, g1, b1, m1, v1, w2, g2, b2, m2, v2, fc_w, fc_b;

  explicit Net(Generator& gen) {
    w1 = Tensor::normal({8, 1, 3, 3}, 0, std::sqrt(2.0 / 9), gen);  // frozen: a fixed random feature layer
    g1 = Tensor::ones({8}), b1 = Tensor::zeros({8}), m1 = Tensor::zeros({8}), v1 = Tensor::ones({8});
    w2 = Tensor::normal({16, 8, 3, 3}, 0, std::sqrt(2.0 / 72), gen).set_requires_grad(true);
    g2 = Tensor::ones({16}).set_requires_grad(true), b2 = Tensor::zeros({16}).set_requires_grad(true);
    m2 = Tensor::zeros({16}), v2 = Tensor::ones({16});
    fc_w = Tensor::normal({2, 16}, 0, 0.25, gen).set_requires_grad(true);
    fc_b = Tensor::zeros({2}).set_requires_grad(true);
  }
  std::vector<Tensor*> trainable() { return {&w2, &g2, &b2, &fc_w, &fc_b}; }

  Tensor forward(const Tensor& x, bool train) {
    const ops::Pool2dParams pool{2, 2, 2, 2, 0, 0};
    Tensor h = F::conv2d(x, w1, Tensor(), {1, 1, 1, 1});
    h = F::max_pool2d(F::relu(F::batch_norm(h, g1, b1, m1, v1, train)), pool);
    h = F::conv2d(h, w2, Tensor(), {1, 1, 1, 1});
    h = F::max_pool2d(F::relu(F::batch_norm(h, g2, b2, m2, v2, train)), pool);
    return F::linear(F::flatten(F::global_avg_pool2d(h)), fc_w, fc_b);
  }
};

double accuracy(const Tensor& logits, const Tensor& labels) {
  const auto l = logits.to_vector<float>();
  const auto y = labels.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < y.size(); ++i)
    correct += int64_t(l[2 * i + 1] > l[2 * i]) == y[i];
  return double(correct) / double(y.size());
}

int run_smoke(int steps, uint64_t seed) {
  const auto start = std::chrono::steady_clock::now();
  Generator gen(seed);
  Net net(gen);
  const Batch test = make_batch(256, gen);
  double first_loss = 0, last_loss = 0;
  fmt::print("thaw smoke: stripes orientation, 8+16-channel ConvNet, first conv frozen, SGD lr 0.1\n");
  for (int step = 1; step <= steps; ++step) {
    const Batch batch = make_batch(32, gen);
    const int64_t nodes_before = Node::live_count();
    Tensor loss = F::cross_entropy(net.forward(batch.x, true), batch.labels);
    const int64_t recorded = Node::live_count() - nodes_before;
    loss.backward();
    for (Tensor* p : net.trainable()) {
      ops::add_(*p, p->grad(), -0.1);
      p->zero_grad();
    }
    last_loss = loss.item();
    if (step == 1) first_loss = last_loss;
    if (step == 1 || step % 20 == 0) {
      fmt::print("  step {:3d}  loss {:.4f}  (graph nodes recorded: {})\n", step, last_loss, recorded);
    }
  }
  NoGradGuard no_grad;
  const double acc = accuracy(net.forward(test.x, false), test.labels);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("test accuracy {:.1f}% on 256 held-out images; loss {:.3f} -> {:.3f}; {:.1f} s\n", 100 * acc,
             first_loss, last_loss, seconds);
  if (acc < 0.9 || last_loss >= first_loss) {
    fmt::print(stderr, "thaw smoke: FAILED: the network did not learn (accuracy {:.1f}%)\n", 100 * acc);
    return 1;
  }
  fmt::print("thaw smoke: OK\n");
  return 0;
}

}  // namespace

void add_smoke_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("smoke", "train a tiny ConvNet on generated images: checks the CPU backend");
  auto steps = std::make_shared<int>(100);
  auto seed = std::make_shared<uint64_t>(42);
  cmd->add_option("--steps", *steps, "training steps")->check(CLI::Range(1, 100000));
  cmd->add_option("--seed", *seed, "random seed");
  cmd->callback([steps, seed] {
    const int status = run_smoke(*steps, *seed);
    if (status != 0) throw CLI::RuntimeError(status);
  });
}

}  // namespace thaw::cli

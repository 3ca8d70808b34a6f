// thaw bench kernels on the CPU: the problem tables (row counts, shapes, FLOP and byte counts checked by
// hand), the inputs of every op (built and run on the CPU backend), the comparison, the totals' weighting and
// the three report forms. The GPU side (cuDNN, timing) needs a GPU: scripts/gpu-check.sh runs it.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/kernels/cases.h"
#include "bench/kernels/problems.h"
#include "bench/kernels/report.h"
#include "tests/support/catch.h"
#include "tests/support/scratch.h"

using namespace thaw;
using namespace thaw::bench;

namespace {

int64_t count_op(const std::vector<Problem>& problems, OpKind op) {
  return std::count_if(problems.begin(), problems.end(), [op](const Problem& p) { return p.op == op; });
}

const Problem& find_row(const std::vector<Problem>& problems, const std::string& name) {
  const auto it =
      std::find_if(problems.begin(), problems.end(), [&](const Problem& p) { return p.name() == name; });
  if (it == problems.end()) FAIL("no row named " << name);
  return *it;
}

TableOptions options(std::vector<std::string> models, std::vector<int64_t> batches) {
  TableOptions o;
  o.models = std::move(models);
  o.batches = std::move(batches);
  return o;
}

}  // namespace

TEST_CASE("bench kernels: one training step's op calls, counted per network") {
  // ResNet18: conv1 + 8 blocks x 2 convs + 3 downsamples = 20 convs, each followed by a BN. The ops the
  // model runs: BN fused with the ReLU after it for the stem and each block's bn1 (1 + 8 = 9); plain BN for
  // each block's bn2 and the 3 downsamples (11); 8 residual joins relu(a + b), each with one relu_backward;
  // and in the backward one add per block: its input feeds conv1 and the shortcut, whose gradients autograd
  // sums.
  const std::vector<Problem> r18 = network_ops("resnet18", 64, 224, 37);
  CHECK(count_op(r18, OpKind::ConvForward) == 20);
  CHECK(count_op(r18, OpKind::ConvBackwardWeight) == 20);
  CHECK(count_op(r18, OpKind::ConvBackwardData) == 19);  // not conv1: the image needs no gradient
  CHECK(count_op(r18, OpKind::BatchNormReluForward) == 9);
  CHECK(count_op(r18, OpKind::BatchNormReluBackward) == 9);
  CHECK(count_op(r18, OpKind::BatchNormForward) == 11);
  CHECK(count_op(r18, OpKind::BatchNormBackward) == 11);
  CHECK(count_op(r18, OpKind::AddReluForward) == 8);
  CHECK(count_op(r18, OpKind::ReluBackward) == 8);
  CHECK(count_op(r18, OpKind::Add) == 8);
  CHECK(count_op(r18, OpKind::MaxPoolForward) == 1);
  CHECK(count_op(r18, OpKind::CrossEntropyBackward) == 1);
  // The forward comes first, the backward after it in reverse: the last call is conv1's weight gradient.
  CHECK(r18.front().name() == "conv2d_forward 64x3x224x224 k64 7x7/2");
  CHECK(r18.back().name() == "conv2d_backward_weight 64x3x224x224 k64 7x7/2");
  CHECK(r18.back().layers == std::vector<std::string>{"resnet18 conv1"});

  // ResNet50: conv1 + 16 bottlenecks x 3 convs + 4 downsamples = 53 convs; BN+ReLU for the stem and each
  // bottleneck's bn1 and bn2 (1 + 32 = 33), plain BN for bn3 and the downsamples (20); 16 residual joins.
  const std::vector<Problem> r50 = network_ops("resnet50", 32, 224, 37);
  CHECK(count_op(r50, OpKind::ConvForward) == 53);
  CHECK(count_op(r50, OpKind::ConvBackwardData) == 52);
  CHECK(count_op(r50, OpKind::BatchNormReluForward) == 33);
  CHECK(count_op(r50, OpKind::BatchNormForward) == 20);
  CHECK(count_op(r50, OpKind::ReluBackward) == 16);
  CHECK(count_op(r50, OpKind::AddReluForward) == 16);
  CHECK(count_op(r50, OpKind::Add) == 16);

  CHECK_THROWS_WITH(network_ops("vgg16", 64, 224, 37),
                    ContainsSubstring("model 'vgg16' is not resnet18 or resnet50"));
}

TEST_CASE("bench kernels: distinct problems, their uses and layers") {
  // ResNet18 at one batch: 11 distinct convs (conv1, four 3x3/1, three 3x3/2, three 1x1/2 downsamples),
  // 10 with a backward-data; 5 BN+ReLU shapes (64@112, 64@56, 128@28, 256@14, 512@7), 4 plain BN shapes
  // (64@56, 128@28, 256@14, 512@7), 4 residual-join shapes (add_relu and its relu_backward), 4 block-input
  // shapes of the backward's gradient sum (64@56, 128@28, 256@14, 512@7).
  // 11 + 10 + 11 + 5*2 + 4*2 + 4*2 + 4 + 2 (max-pool) + 2 (avg-pool) + 2 (softmax-xent) = 68 rows.
  const std::vector<Problem> r18 = make_problems(options({"resnet18"}, {64}));
  CHECK(r18.size() == 68);
  CHECK(count_op(r18, OpKind::ConvForward) == 11);
  CHECK(count_op(r18, OpKind::BatchNormReluForward) == 5);
  CHECK(count_op(r18, OpKind::BatchNormForward) == 4);

  // ResNet50: 23 distinct convs; 8 BN+ReLU shapes (64@112, 64@56, 128@56, 128@28, 256@28, 256@14, 512@14,
  // 512@7), 4 plain BN shapes (bn3 and the downsamples: 256@56 ... 2048@7), 4 residual-join shapes, 5
  // block-input shapes (64@56, 256@56, 512@28, 1024@14, 2048@7): 23 + 22 + 23 + 16 + 8 + 8 + 5 + 2 + 2 + 2 =
  // 111.
  const std::vector<Problem> r50 = make_problems(options({"resnet50"}, {64}));
  CHECK(r50.size() == 111);
  CHECK(count_op(r50, OpKind::Add) == 5);
  CHECK(count_op(r50, OpKind::ConvForward) == 23);
  CHECK(count_op(r50, OpKind::BatchNormReluBackward) == 8);
  CHECK(count_op(r50, OpKind::BatchNormBackward) == 4);

  // Both: 29 distinct convs (the ResNet conv table of tests/test_cuda_parity.cpp); both batches double every
  // row.
  const std::vector<Problem> both = make_problems(options({"resnet18", "resnet50"}, {32, 64}));
  CHECK(count_op(both, OpKind::ConvForward) == 2 * 29);
  CHECK(std::count_if(both.begin(), both.end(), [](const Problem& p) { return p.n == 32; }) ==
        int64_t(both.size() / 2));

  // The 3x3 conv of layer1: ResNet18 runs it 4 times (two blocks x two convs), ResNet50 3 times (conv2 of
  // its three bottlenecks). FLOPs: 2 N K P Q C R S = 2 * 64 * 64 * 56 * 56 * 64 * 9 = 14,797,504,512.
  const Problem& l1 = find_row(both, "conv2d_forward 64x64x56x56 k64 3x3/1");
  CHECK(l1.uses.at("resnet18") == 4);
  CHECK(l1.uses.at("resnet50") == 3);
  CHECK(l1.layers.front() == "resnet18 layer1.0.conv1");
  CHECK(l1.layers.size() == 7);
  CHECK(l1.flops() == 14797504512.0);
  CHECK(l1.y_shape() == Shape{64, 64, 56, 56});

  // The stem at batch 32: y (32, 64, 112, 112); FLOPs 2 * 25,690,112 * 3 * 49 = 7,552,892,928.
  // Bytes: x 4,816,896 + w 9,408 + y 25,690,112 floats = 30,516,416 * 4 = 122,065,664.
  const Problem& stem = find_row(both, "conv2d_forward 32x3x224x224 k64 7x7/2");
  CHECK(stem.y_shape() == Shape{32, 64, 112, 112});
  CHECK(stem.flops() == 7552892928.0);
  CHECK(stem.bytes() == 122065664.0);
  CHECK(stem.uses.at("resnet18") == 1);
  CHECK(stem.uses.at("resnet50") == 1);

  // ResNet50's stride-2 downsample of layer2: 1x1, 256 -> 512 channels, 56 -> 28.
  // FLOPs: 2 * (64 * 512 * 28 * 28) * 256 = 13,153,337,344.
  const Problem& ds = find_row(both, "conv2d_backward_data 64x256x56x56 k512 1x1/2");
  CHECK(ds.flops() == 13153337344.0);
  CHECK(ds.layers == std::vector<std::string>{"resnet50 layer2.0.downsample.0"});
  CHECK(ds.uses.count("resnet18") == 0);

  // BN backward at 512 channels, 7x7. Plain: ResNet18's layer4 bn2 of both blocks + the downsample's BN
  // = 3 (ResNet50's BNs there all have a ReLU after them). Fused with the ReLU: ResNet18's layer4 bn1 of
  // both blocks = 2; ResNet50's layer4 bn2 of its 3 blocks + bn1 of blocks 1 and 2 = 5.
  // Bytes: dy, x, dx (3 * 64*512*7*7 floats) + 6 * 512 per-channel floats, times 4; fused, y (the mask) too.
  const Problem& bn = find_row(both, "batch_norm_backward 64x512x7x7");
  CHECK(bn.uses.at("resnet18") == 3);
  CHECK(bn.uses.count("resnet50") == 0);
  CHECK(bn.bytes() == 4.0 * (3 * 64 * 512 * 49 + 6 * 512));
  const Problem& bn_relu = find_row(both, "batch_norm_relu_backward 64x512x7x7");
  CHECK(bn_relu.uses.at("resnet18") == 2);
  CHECK(bn_relu.uses.at("resnet50") == 5);
  CHECK(bn_relu.bytes() == 4.0 * (4 * 64 * 512 * 49 + 6 * 512));
  // The residual join of ResNet18's layer1: 2 blocks; a, b -> y.
  const Problem& join = find_row(both, "add_relu_forward 64x64x56x56");
  CHECK(join.uses.at("resnet18") == 2);
  CHECK(join.bytes() == 4.0 * 3 * 64 * 64 * 56 * 56);
  // The backward's gradient sum at 64@56: ResNet18's layer1.0, layer1.1 and layer2.0 inputs; ResNet50's
  // layer1.0 input (its later blocks take 256 channels).
  const Problem& sum = find_row(both, "add 64x64x56x56");
  CHECK(sum.uses.at("resnet18") == 3);
  CHECK(sum.uses.at("resnet50") == 1);

  // The max-pool of the stem: 3x3/2 padding 1, 112 -> 56. The loss: 64 x 37 logits.
  const Problem& pool = find_row(both, "max_pool2d_forward 64x64x112x112 3x3/2");
  CHECK(pool.y_shape() == Shape{64, 64, 56, 56});
  CHECK(pool.pad == 1);
  const Problem& xent = find_row(both, "cross_entropy_forward 64x37");
  CHECK(xent.x_shape() == Shape{64, 37});
}

TEST_CASE("bench kernels: --filter keeps rows by op, shape or layer, case-insensitively") {
  TableOptions o = options({"resnet18"}, {64});
  o.filters = {"CONV2D_backward_data"};
  const std::vector<Problem> bwd = make_problems(o);
  CHECK(bwd.size() == 10);
  o.filters = {"layer4.0.downsample"};
  const std::vector<Problem> ds = make_problems(o);
  REQUIRE(ds.size() == 5);  // the 1x1/2 conv's three passes, its BN forward and backward
  o.filters = {"cross_entropy", "maxpool"};
  CHECK(make_problems(o).size() == 4);
  o.filters = {"nothing like this"};
  CHECK(make_problems(o).empty());
}

TEST_CASE("bench kernels: every op's case runs on the CPU and equals itself") {
  // A tiny ResNet (32x32 images, batch 2) gives every op kind at small shapes.
  TableOptions o = options({"resnet18", "resnet50"}, {2});
  o.image_size = 32;
  const std::vector<Problem> problems = make_problems(o);
  for (int op = 0; op <= int(OpKind::CrossEntropyBackward); ++op)
    CHECK(count_op(problems, OpKind(op)) > 0);
  for (size_t i = 0; i < problems.size(); ++i) {
    INFO(problems[i].name());
    const Case a = make_case(problems[i], Device::cpu(), 7 + i),
               b = make_case(problems[i], Device::cpu(), 7 + i);
    const std::vector<Tensor> ya = a.run(), yb = b.run();
    REQUIRE(ya.size() == a.outputs.size());
    const Comparison cmp = compare_outputs(a.outputs, ya, yb);
    CHECK(cmp.finite);
    CHECK(cmp.error == 0);
    CHECK(a.tolerance > 0);
  }
}

TEST_CASE("bench kernels: compare_outputs reports the worst output relative to its largest value") {
  const Tensor ref = Tensor::from_data<float>({4}, {1, -2, 4, 0});
  const Tensor small = Tensor::from_data<float>({4}, {1, -2, 4.0004f, 0});
  const Tensor big = Tensor::from_data<float>({2}, {10, 20});
  const Tensor big_off = Tensor::from_data<float>({2}, {10, 21});
  const Comparison cmp = compare_outputs({"y", "mean"}, {small, big_off}, {ref, big});
  CHECK(cmp.error == Approx(1.0 / 20));  // mean: |21 - 20| / 20 beats y: 4e-4 / 4
  CHECK_THAT(cmp.worst, ContainsSubstring("mean: max |got - ref| 1.00e+00"));
  const Tensor nan = Tensor::from_data<float>({4}, {1, std::nanf(""), 4, 0});
  CHECK_FALSE(compare_outputs({"y"}, {nan}, {ref}).finite);
}

namespace {

RowResult result(const Problem& p, Verdict v, double thaw_ms, double ref_ms) {
  RowResult r;
  r.problem = p;
  r.verdict = v;
  r.thaw_ms = thaw_ms;
  r.ref_ms = ref_ms;
  r.tolerance = 1e-4;
  r.error = 2e-6;
  r.algorithm = "FWD_IMPLICIT_GEMM, fma math, 0.0 MiB workspace";
  return r;
}

// Three rows: the layer1 3x3 conv (r18 x4, r50 x3), the stem (r18 x1, r50 x1), a BN+ReLU shape (r18 x2,
// r50 x5) that failed its check.
std::vector<RowResult> sample_rows() {
  const std::vector<Problem> both = make_problems(options({"resnet18", "resnet50"}, {64}));
  return {result(find_row(both, "conv2d_forward 64x64x56x56 k64 3x3/1"), Verdict::Passed, 2.0, 1.0),
          result(find_row(both, "conv2d_forward 64x3x224x224 k64 7x7/2"), Verdict::Passed, 1.5, 0.5),
          result(find_row(both, "batch_norm_relu_backward 64x512x7x7"), Verdict::Incorrect, 0.1, 0.05)};
}

RunInfo sample_info() {
  RunInfo info;
  info.device = "NVIDIA H200 (test)";
  info.reference = "cuDNN 9.14.0";
  info.repeat = 5;
  info.peaks = {4000, 50};
  return info;
}

}  // namespace

TEST_CASE("bench kernels: totals weight each row by its uses in each network") {
  const std::vector<RowResult> rows = sample_rows();
  const std::vector<NetworkTotal> totals = network_totals(rows);
  REQUIRE(totals.size() == 2);
  const NetworkTotal& r18 = totals[0].model == "resnet18" ? totals[0] : totals[1];
  const NetworkTotal& r50 = totals[0].model == "resnet50" ? totals[0] : totals[1];
  // resnet18: 4 x 2.0 + 1 x 1.5 = 9.5 ms thaw, 4 x 1.0 + 1 x 0.5 = 4.5 ms cuDNN; the BN row is left out.
  CHECK(r18.thaw_ms == Approx(9.5));
  CHECK(r18.ref_ms == Approx(4.5));
  CHECK(r18.rows_counted == 2);
  CHECK(r18.rows_left_out == 1);
  CHECK(r18.batch == 64);
  REQUIRE(r18.by_op.size() == 1);
  CHECK(r18.by_op[0].op == "conv2d_forward");
  // resnet50: 3 x 2.0 + 1 x 1.5 = 7.5, 3 x 1.0 + 0.5 = 3.5; its 512@7 BN rows are left out too.
  CHECK(r50.thaw_ms == Approx(7.5));
  CHECK(r50.ref_ms == Approx(3.5));
  CHECK(r50.rows_left_out == 1);

  // Ratio, achieved and fraction of peak: the 3x3 conv's 14.8 GFLOP in 2 ms = 7.4 TFLOP/s = 14.8% of 50.
  CHECK(ratio(rows[0]) == Approx(2.0));
  CHECK(achieved(rows[0]) == Approx(14.797504512 / 2.0));
  CHECK(peak_fraction(rows[0], sample_info().peaks) == Approx(14.797504512 / 2.0 / 50));
  // The BN row is measured in GB/s against the copy peak.
  CHECK(achieved(rows[2]) == Approx(rows[2].problem.bytes() / 1e-4 * 1e-9));
  const std::vector<RowResult> worst = worst_rows(rows, 2);
  REQUIRE(worst.size() == 2);
  CHECK(worst[0].problem.name() == "conv2d_forward 64x3x224x224 k64 7x7/2");  // 3.0x
}

TEST_CASE("bench kernels: the table, markdown and JSON say the same") {
  const std::vector<RowResult> rows = sample_rows();
  const RunInfo info = sample_info();
  const std::string table = format_table(info, rows);
  CHECK_THAT(table, ContainsSubstring("reference: cuDNN 9.14.0"));
  CHECK_THAT(table, ContainsSubstring("conv2d_forward           64x64x56x56 k64 3x3/1"));
  CHECK_THAT(table, ContainsSubstring("2.00x"));
  CHECK_THAT(table, ContainsSubstring("7.4 TFLOP/s"));
  CHECK_THAT(table, ContainsSubstring("15%"));
  CHECK_THAT(table, ContainsSubstring("resnet18 layer1.0.conv1 (+6 more)"));
  CHECK_THAT(table, ContainsSubstring("incorrect"));
  CHECK_THAT(format_totals(network_totals(rows)),
             ContainsSubstring("resnet18      64      9.500      4.500   2.11x"));

  const std::string md = format_markdown(info, rows);
  CHECK_THAT(md, ContainsSubstring("| model | batch | thaw ms | reference ms | thaw / reference |"));
  CHECK_THAT(md, ContainsSubstring("| resnet18 | 64 | 9.500 | 4.500 | 2.11x | 2 | 1 |"));
  CHECK_THAT(md, ContainsSubstring(
                     "| conv2d_forward | 64x64x56x56 k64 3x3/1 | r18 x4, r50 x3 | 2.000 | 1.000 | 2.00x |"));

  const nlohmann::json j = nlohmann::json::parse(format_json(info, rows));
  CHECK(j["format"] == "thaw-bench-kernels-1");
  CHECK(j["peaks"]["sgemm_tflops"] == 50.0);
  REQUIRE(j["rows"].size() == 3);
  CHECK(j["rows"][0]["op"] == "conv2d_forward");
  CHECK(j["rows"][0]["flops"] == 14797504512.0);
  CHECK(j["rows"][0]["uses"]["resnet50"] == 3);
  CHECK(j["rows"][0]["ratio"] == 2.0);
  CHECK(j["rows"][2]["verdict"] == "incorrect");
  CHECK(j["rows"][2]["achieved_unit"] == "GB/s");
  REQUIRE(j["totals"].size() == 2);
  CHECK(j["totals"][0]["thaw_ms"].get<double>() == Approx(9.5));

  // An untimed row (the CPU reference) has null times and no ratio.
  RowResult untimed = rows[0];
  untimed.ref_ms = -1;
  const nlohmann::json u = nlohmann::json::parse(format_json(info, {untimed}));
  CHECK(u["rows"][0]["ref_ms"].is_null());
  CHECK(u["rows"][0]["ratio"].is_null());
  CHECK(u["totals"][0]["rows_counted"] == 0);
}

TEST_CASE("bench kernels: write_reports writes the three files, whole") {
  test::TempDir tmp;
  const std::string dir = (tmp.path / "out" / "kernels").string();
  const std::vector<std::string> written = write_reports(dir, sample_info(), sample_rows());
  REQUIRE(written.size() == 3);
  for (const std::string& path : written) {
    INFO(path);
    CHECK(std::filesystem::file_size(path) > 100);
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  }
  std::ifstream json(dir + "/report.json");
  std::stringstream text;
  text << json.rdbuf();
  CHECK(nlohmann::json::parse(text.str())["rows"].size() == 3);
}

// thaw predict (train/predict.h): a random-init ResNet18 saved with the train command's attributes, run on
// pets-mini images and on files that are not images: probabilities, ordering, per-image errors.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "core/error.h"
#include "core/hdf5_file.h"
#include "core/rng.h"
#include "data/image.h"
#include "data/transforms.h"
#include "models/resnet.h"
#include "models/weights.h"
#include "tests/support/catch.h"
#include "tests/support/scratch.h"
#include "train/predict.h"

using namespace thaw;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void check_prediction(const train::ImagePrediction& p, size_t k) {
  INFO(p.path << ": " << p.error);
  REQUIRE(p.error.empty());
  REQUIRE(p.top.size() == k);
  for (size_t i = 0; i + 1 < p.top.size(); ++i)
    CHECK(p.top[i].probability >= p.top[i + 1].probability);
  for (const train::ClassScore& s : p.top)
    CHECK((s.probability >= 0 && s.probability <= 1));
}

}  // namespace

TEST_CASE("class_probabilities: softmax, and sigmoid for a 1-logit head") {
  const std::vector<double> p = train::class_probabilities({1.0f, 2.0f, 3.0f});
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(p[0] == Approx(std::exp(1.0) / z));
  CHECK(p[2] == Approx(std::exp(3.0) / z));
  CHECK(std::accumulate(p.begin(), p.end(), 0.0) == Approx(1.0));
  const std::vector<double> big = train::class_probabilities({1000.0f, 0.0f});  // no overflow
  CHECK(big[0] == Approx(1.0));
  const std::vector<double> b = train::class_probabilities({0.5f});
  REQUIRE(b.size() == 2);
  CHECK(b[1] == Approx(1 / (1 + std::exp(-0.5))));
  CHECK(b[0] + b[1] == Approx(1.0));
  CHECK(train::eval_resize_size(224) == 256);
  CHECK(train::eval_resize_size(112) == 128);
}

TEST_CASE("predict: a saved ResNet18 on pets-mini images, bad files named, the rest go on") {
  REQUIRE_PETS_MINI();
  test::TempDir dir;
  Generator gen(7);
  auto model = models::resnet18(3, gen);
  const std::string weights = (dir.path / "weights.h5").string();
  // No task attribute: neither task (37 breeds, 2 species) has 3 classes, and one that disagrees with the
  // head is refused.
  models::save_weights(*model, weights, "test_predict", {{"class_names", "cat\ndog\nfox"}},
                       {{"image_size", 64}});

  const fs::path images = test::pets_mini_dir() / "images";
  const std::string jpeg = (images / "Abyssinian_1.jpg").string();
  const std::string gif = (images / "Abyssinian_34.jpg").string();  // a real GIF named .jpg: it loads
  const std::string empty = (dir.path / "empty.jpg").string(), text = (dir.path / "text.jpg").string(),
                    bad_gif = (dir.path / "bad_gif.jpg").string(),
                    missing = (dir.path / "missing.jpg").string();
  write(empty, "");
  write(text, "this is not an image\n");
  write(bad_gif, "GIF89a\x01\x00\x01\x00 garbage");
  std::ifstream in(jpeg, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string truncated = (dir.path / "truncated.jpg").string();
  write(truncated, bytes.substr(0, bytes.size() / 2));

  train::PredictOptions options;
  options.top = 2;
  options.batch = 2;  // the good images land in different batches
  const train::PredictResult r =
      train::predict_images(weights, {jpeg, empty, gif, text, truncated, bad_gif, missing, jpeg}, options);
  CHECK(r.arch == "resnet18");
  CHECK(r.task.empty());
  CHECK(r.image_size == 64);
  CHECK(r.resize_size == 73);
  CHECK(r.class_names == std::vector<std::string>{"cat", "dog", "fox"});
  REQUIRE(r.images.size() == 8);
  CHECK(r.failed() == 5);
  check_prediction(r.images[0], 2);
  check_prediction(r.images[2], 2);
  check_prediction(r.images[7], 2);
  for (int i : {1, 3, 4, 5, 6}) {
    INFO(r.images[size_t(i)].error);
    CHECK(r.images[size_t(i)].top.empty());
    CHECK_THAT(r.images[size_t(i)].error, ContainsSubstring(r.images[size_t(i)].path));
  }
  // The same image in another batch gives the same answer.
  CHECK(r.images[7].top[0].label == r.images[0].top[0].label);
  CHECK(r.images[7].top[0].probability == Approx(r.images[0].top[0].probability).epsilon(1e-5));

  // All classes: the probabilities sum to 1; the names come from the file.
  options.top = 10;
  const train::PredictResult all = train::predict_images(weights, {jpeg}, options);
  check_prediction(all.images[0], 3);
  double sum = 0;
  for (const train::ClassScore& s : all.images[0].top) {
    sum += s.probability;
    CHECK(s.name == all.class_names[size_t(s.label)]);
  }
  CHECK(sum == Approx(1.0).epsilon(1e-9));
  CHECK(all.images[0].top[0].label == r.images[0].top[0].label);

  // Against a reference forward pass: the same image through the eval transform (resize 73, centre crop
  // 64: checked against torchvision in test_data_transforms) and the network in float64, softmax in double.
  // Float32 logits of a ResNet18 are within ~1e-6 of their largest value of float64's (test_parity_resnet);
  // a probability moves by at most 2 max|dz|, so each is allowed 2 x 1e-5 x max|z| (a 16x margin).
  {
    data::TransformConfig eval;
    eval.augment = false;
    eval.crop_size = 64;
    eval.resize_size = 73;
    std::vector<float> chw(3 * 64 * 64);
    data::transform_to_chw(data::decode_image_file(jpeg), eval, data::SampleParams{}, chw.data());
    auto reference = models::resnet18(3, gen);
    models::load_weights(*reference, weights);
    reference->to(DType::Float64);
    reference->eval();
    const std::vector<double> z =
        reference->forward(Tensor::from_data<float>({1, 3, 64, 64}, chw).to(DType::Float64))
            .to_vector<double>();
    double max_z = 0, sum = 0;
    for (double v : z)
      max_z = std::max(max_z, std::abs(v));
    std::vector<double> p(z.size());
    for (size_t c = 0; c < z.size(); ++c)
      sum += p[c] = std::exp(z[c] - *std::max_element(z.begin(), z.end()));
    for (const train::ClassScore& s : all.images[0].top) {
      INFO("class " << s.label << ": predict " << s.probability << ", reference "
                    << p[size_t(s.label)] / sum);
      CHECK(std::abs(s.probability - p[size_t(s.label)] / sum) <= 2 * 1e-5 * max_z);
    }
  }

  // print_predictions: the good images on stdout, one error line per bad image on stderr.
  const fs::path out_path = dir.path / "out.txt", err_path = dir.path / "err.txt";
  std::FILE* out = std::fopen(out_path.c_str(), "w");
  std::FILE* err = std::fopen(err_path.c_str(), "w");
  train::print_predictions(r, out, err);
  std::fclose(out);
  std::fclose(err);
  std::ifstream err_in(err_path);
  const std::string err_text((std::istreambuf_iterator<char>(err_in)), std::istreambuf_iterator<char>());
  for (const std::string& bad : {empty, text, truncated, bad_gif, missing})
    CHECK_THAT(err_text, ContainsSubstring(bad));
  CHECK_THAT(err_text, ContainsSubstring("5 of 8 images failed"));
}

TEST_CASE("predict: a 1-logit binary head, and a file without the train command's attributes") {
  REQUIRE_PETS_MINI();
  test::TempDir dir;
  Generator gen(3);
  const std::string jpeg = (test::pets_mini_dir() / "images" / "Abyssinian_1.jpg").string();

  auto binary = models::resnet18(1, gen);
  const std::string binary_path = (dir.path / "binary.h5").string();
  models::save_weights(*binary, binary_path, "test_predict",
                       {{"task", "species"}, {"class_names", "cat\ndog"}}, {{"image_size", 32}});
  train::PredictOptions options;
  const train::PredictResult b = train::predict_images(binary_path, {jpeg}, options);
  CHECK(b.logits == 1);
  check_prediction(b.images[0], 2);
  CHECK(b.images[0].top[0].probability + b.images[0].top[1].probability == Approx(1.0));

  // Plain save_weights output: classes "class <i>", input 224 unless --image-size says otherwise.
  auto plain = models::resnet18(4, gen);
  const std::string plain_path = (dir.path / "plain.h5").string();
  models::save_weights(*plain, plain_path, "test_predict");
  options.image_size = 40;
  options.top = 3;
  const train::PredictResult p = train::predict_images(plain_path, {jpeg}, options);
  CHECK(p.image_size == 40);
  CHECK(p.task.empty());
  CHECK(p.class_names == std::vector<std::string>{"class 0", "class 1", "class 2", "class 3"});
  check_prediction(p.images[0], 3);

  // class_names that do not fit the head: an error naming the file.
  const std::string wrong = (dir.path / "wrong.h5").string();
  models::save_weights(*plain, wrong, "test_predict", {{"class_names", "a\nb"}});
  CHECK_THROWS_WITH(train::predict_images(wrong, {jpeg}),
                    ContainsSubstring(wrong) && ContainsSubstring("'class_names' has 2 names"));
  models::save_weights(*binary, wrong, "test_predict", {{"head", "softmax"}});
  CHECK_THROWS_WITH(train::predict_images(wrong, {jpeg}), ContainsSubstring("head = 'softmax' does not fit"));
  CHECK_THROWS_WITH(train::predict_images((dir.path / "none.h5").string(), {jpeg}),
                    ContainsSubstring("none.h5"));
}

// The train command's configuration (train_config.h): one table of keys (kKeys) with defaults, allowed values
// and help; one list binding each key to its TrainConfig field (visit_fields). Parsing is toml++'s; this file
// only checks types and ranges and fills the struct.
#include "train/config.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/device.h"
#include "core/error.h"
#include "kernels/ops.h"

namespace thaw::train {

namespace {

struct KeySpec {
  const char* key;
  const char* default_toml;  // the default as a TOML value
  const char* allowed;       // "a|b|c" for a choice of strings; "" for anything of the field's type
  double min, max;           // numbers (and array elements): inclusive range
  const char* help;
};

// clang-format off
const KeySpec kKeys[] = {
  {"name", R"("")", "", 0, 0, "run name; outputs go to runs_dir/name (default: the config file's name)"},
  {"runs_dir", R"("runs")", "", 0, 0, "where run directories are made"},
  {"arch", R"("resnet18")", "resnet18|resnet50", 0, 0, "network"},
  {"task", R"("breeds")", "breeds|species", 0, 0, "37 breeds or 2 species (cat/dog)"},
  {"data", R"("")", "", 0, 0, "Oxford-IIIT Pet root (images/, annotations/); required"},
  {"weights", R"("")", "", 0, 0, "pretrained weights (thaw HDF5, e.g. from weights_tools), or \"none\" for random init; required. Their fc is kept when it fits the task (its shape, and its class_names when the file has them), else replaced by a new one"},
  {"new_head", "false", "", 0, 0, "start from a new, seeded fc even when the weights file's fc fits the task"},
  {"device", R"("cpu")", "", 0, 0, "cpu, cuda or cuda:N"},
  {"precision", R"("fp32")", "fp32|tf32|bf16", 0, 0, "the convolutions' arithmetic on CUDA: fp32 (exact float32), tf32 or bf16 (tensor cores, float32 accumulation); the CPU computes float32 in every precision (docs/precision.md)"},
  {"image_size", "224", "", kMinImageSize, kMaxImageSize, "crop size fed to the network (thaw eval and predict take the same range)"},
  {"resize_size", "0", "", 0, 4096, "eval: shorter side resized to this before the center crop (0: image_size * 256 / 224)"},
  {"batch_size", "32", "", 1, 65536, "images per step"},
  {"epochs", "10", "", 1, 100000, "epochs to train"},
  {"seed", "42", "", 0, 9.007199254740992e15, "seed of the split, the initialisation, the shuffles and the augmentation"},
  {"threads", "0", "", 0, 256, "CPU threads of the run, the compute pool and the data loader's workers alike (0: the CPUs this process may use, or THAW_NUM_THREADS)"},
  {"cache", "false", "", 0, 0, "keep decoded images in RAM (resamples once more: results differ slightly)"},
  {"cache_mib", "4096", "", 1, 1048576, "cache: the most RAM each loader's decoded images (train, val, test) may take (MiB); the images past it are decoded every epoch (to the same batches), and the run says so"},
  {"device_transforms", "false", "", 0, 0, "run the transforms (resize, crop, flip, rotation, jitter, normalize) as kernels on the device, from the same random draws; the workers only decode. Images are downscaled as with cache = true, whose batches it equals bit for bit (docs/data.md). Made for CUDA; on the CPU one thread expands each batch"},
  {"cache_on_device", "false", "", 0, 0, "cache and device_transforms: keep the decoded images in the device's memory instead of RAM (bounded by cache_mib); each is uploaded once, later only its parameters travel"},
  {"skip_bad", "false", "", 0, 0, "leave undecodable image files (zero-byte, truncated, not an image) out of their batch and list them at the end of the run, instead of stopping at the first"},
  {"limit", "0", "", 0, 1e9, "at most this many images per split (train, val, test), a seeded subset; 0: all"},
  {"loss", R"("auto")", "auto|cross_entropy|bce", 0, 0, "auto: bce (one logit) for species, cross_entropy for breeds"},
  {"optimizer", R"("sgd")", "sgd|adam|adamw", 0, 0, "optimizer"},
  {"lr", "1e-3", "", 0, 10, "learning rate (of every group unless layer_lrs)"},
  {"momentum", "0.9", "", 0, 1, "SGD momentum"},
  {"nesterov", "true", "", 0, 0, "SGD Nesterov momentum"},
  {"weight_decay", "0.0", "", 0, 10, "L2 (sgd, adam) or decoupled (adamw) weight decay"},
  {"betas", "[0.9, 0.999]", "", 0, 0.999999, "Adam/AdamW betas (two values)"},
  {"eps", "1e-8", "", 0, 1, "Adam/AdamW epsilon"},
  {"schedule", R"("auto")", "auto|none|step|cosine", 0, 0, "LR schedule per epoch; auto: step for cross_entropy, none for bce"},
  {"step_size", "7", "", 1, 100000, "StepLR step (epochs)"},
  {"gamma", "0.1", "", 0, 1, "StepLR factor"},
  {"trainable", R"("last_layers")", "last_layers|patterns|bn_only|gradual|all", 0, 0, "what trains (docs/fine-tuning.md)"},
  {"layers", "1", "", 0, 5, "last_layers: the report's l (1: fc, 2: +layer4, ... 5: +layer1)"},
  {"patterns", "[]", "", 0, 0, "patterns: trainable parameter name patterns, e.g. [\"layer4\", \"fc\"]"},
  {"bn_with_head", "true", "", 0, 0, "bn_only: train fc too"},
  {"unfreeze_every", "2", "", 1, 100000, "gradual: fc first, then layer4, layer3, layer2, layer1 every this many epochs"},
  {"layer_lrs", "[]", "", 0, 10, "gradual: lrs of layer4, layer3, layer2, layer1 (4 values; empty: all at lr)"},
  {"bn_mode", R"("train")", "train|frozen", 0, 0, "BatchNorm while training: batch statistics, or running statistics from the first step"},
  {"bn_frozen_from_epoch", "0", "", 0, 100000, "bn_mode train: running statistics from this epoch on (1-based; 2: the report's code); 0: never"},
  {"augment", "false", "", 0, 0, "RandomResizedCrop, flip, rotation 20, color jitter 0.2"},
  {"feature_cache", "true", "", 0, 0, "when the leading layers are frozen, use BatchNorm's running statistics and augment is off, compute their outputs once per image and train the rest from them (docs/fine-tuning.md); the run says whether it did and why"},
  {"feature_cache_mib", "2048", "", 1, 1048576, "feature_cache: the most host memory its features may take (MiB); over it the run goes on without the cache and says so"},
  {"split", R"("normal")", "normal|imbalanced", 0, 0, "normal: trainval 80/20 random split; imbalanced: the report's 3.2"},
  {"majority", R"("dogs")", "dogs|cats", 0, 0, "imbalanced: the species that keeps all its images"},
  {"imbalance_rule", R"("seeded")", "seeded|report_code", 0, 0, "imbalanced: seeded per-breed split, or the report's code (file order, its cat list)"},
  {"val_fraction", "0.2", "", 0, 0.9, "share of trainval for validation"},
  {"keep_fraction", "0.25", "", 0, 1, "imbalanced: share of each minority breed's training images kept"},
  {"class_weights", R"("none")", "none|report|inverse", 0, 0, "weighted loss: none, the report's w_c = (1/C)/n_c normalised, or N/(C n_c)"},
  {"oversample", "false", "", 0, 0, "draw training images with replacement, P ~ 1/n_class"},
};
// clang-format on

const KeySpec* find_spec(const std::string& key) {
  for (const auto& spec : kKeys)
    if (key == spec.key) return &spec;
  return nullptr;
}

std::string known_keys() {
  std::vector<std::string> keys;
  for (const auto& spec : kKeys)
    keys.push_back(spec.key);
  return fmt::format("{}", fmt::join(keys, ", "));
}

// Calls f(key, field) for every field, in kKeys order.
template <typename Config, typename F>
void visit_fields(Config& c, F&& f) {
  f("name", c.name), f("runs_dir", c.runs_dir), f("arch", c.arch), f("task", c.task), f("data", c.data);
  f("weights", c.weights), f("new_head", c.new_head), f("device", c.device), f("precision", c.precision);
  f("image_size", c.image_size);
  f("resize_size", c.resize_size), f("batch_size", c.batch_size), f("epochs", c.epochs), f("seed", c.seed);
  f("threads", c.threads), f("cache", c.cache), f("cache_mib", c.cache_mib),
      f("device_transforms", c.device_transforms), f("cache_on_device", c.cache_on_device),
      f("skip_bad", c.skip_bad), f("limit", c.limit), f("loss", c.loss);
  f("optimizer", c.optimizer), f("lr", c.lr), f("momentum", c.momentum), f("nesterov", c.nesterov);
  f("weight_decay", c.weight_decay), f("betas", c.betas), f("eps", c.eps), f("schedule", c.schedule);
  f("step_size", c.step_size), f("gamma", c.gamma), f("trainable", c.trainable), f("layers", c.layers);
  f("patterns", c.patterns), f("bn_with_head", c.bn_with_head), f("unfreeze_every", c.unfreeze_every);
  f("layer_lrs", c.layer_lrs), f("bn_mode", c.bn_mode);
  f("bn_frozen_from_epoch", c.bn_frozen_from_epoch), f("augment", c.augment);
  f("feature_cache", c.feature_cache), f("feature_cache_mib", c.feature_cache_mib), f("split", c.split);
  f("majority", c.majority), f("imbalance_rule", c.imbalance_rule), f("val_fraction", c.val_fraction);
  f("keep_fraction", c.keep_fraction), f("class_weights", c.class_weights), f("oversample", c.oversample);
}

// Where a value came from, for messages: "exp.toml:12" or "--lr".
std::string origin_of(const std::string& file, const toml::node& node, const std::string& key) {
  if (file.empty()) return "--" + key;
  return fmt::format("{}:{}", file, node.source().begin.line);
}

std::string range_text(const KeySpec& spec, bool integer) {
  if (integer) return fmt::format("an integer in {}..{}", int64_t(spec.min), int64_t(spec.max));
  return fmt::format("a number in [{}, {}]", spec.min, spec.max);
}

std::string toml_text(const toml::node& node) {
  std::ostringstream out;
  out << toml::node_view<const toml::node>(&node);
  return out.str();
}

// Converts one TOML node into the field's type, checking the spec; errors name the key and origin.
struct Assign {
  const KeySpec& spec;
  const toml::node& node;
  std::string where;

  [[noreturn]] void bad(const std::string& expected) const {
    fail("{}: {} = {} is not allowed; expected {}", where, spec.key, toml_text(node), expected);
  }
  double number(const toml::node& n, bool integer) const {
    double v = 0;
    if (auto i = n.value_exact<int64_t>()) {
      // Compared as integers: converting first would round 2^53 + 1 to 2^53 and let it pass as that.
      if (integer && (*i < int64_t(spec.min) || *i > int64_t(spec.max))) bad(range_text(spec, integer));
      v = double(*i);
    } else if (auto d = n.value_exact<double>(); d && !integer) {
      v = *d;
    } else {
      bad(range_text(spec, integer));
    }
    if (!(v >= spec.min && v <= spec.max)) bad(range_text(spec, integer));
    return v;
  }
  void operator()(std::string& out) const {
    auto s = node.value_exact<std::string>();
    const std::string allowed = spec.allowed;
    if (!s) bad(allowed.empty() ? "a string" : "one of " + allowed);
    if (!allowed.empty() && ("|" + allowed + "|").find("|" + *s + "|") == std::string::npos)
      bad("one of " + allowed);
    out = *s;
  }
  void operator()(int64_t& out) const { out = int64_t(number(node, true)); }
  void operator()(uint64_t& out) const { out = uint64_t(number(node, true)); }
  void operator()(double& out) const { out = number(node, false); }
  void operator()(bool& out) const {
    auto b = node.value_exact<bool>();
    if (!b) bad("true or false");
    out = *b;
  }
  void operator()(std::vector<double>& out) const {
    const toml::array* a = node.as_array();
    if (!a) bad("an array of numbers, e.g. [0.01, 0.001]");
    out.clear();
    for (const auto& e : *a)
      out.push_back(number(e, false));
  }
  void operator()(std::vector<std::string>& out) const {
    const toml::array* a = node.as_array();
    if (!a) bad("an array of strings, e.g. [\"layer4\", \"fc\"]");
    out.clear();
    for (const auto& e : *a) {
      auto s = e.value_exact<std::string>();
      if (!s) bad("an array of strings, e.g. [\"layer4\", \"fc\"]");
      out.push_back(*s);
    }
  }
};

void assign(TrainConfig& config, const std::string& key, const toml::node& node, const std::string& where) {
  const KeySpec* spec = find_spec(key);
  if (!spec) fail("{}: unknown key '{}'; the keys are: {}", where, key, known_keys());
  bool found = false;
  visit_fields(config, [&](const char* name, auto& field) {
    if (key != name) return;
    Assign{*spec, node, where}(field);
    found = true;
  });
  THAW_CHECK(found, "train config: key '{}' has no field (a bug in train_config.cpp)", key);
}

// toml++ 3.3 (Debian 12's) reaches __builtin_unreachable, undefined behaviour, on some non-ASCII characters
// where it looks for whitespace: outside strings, and after a line-ending backslash in a multi-line string
// (marzer/tomlplusplus issues 190 and 295, found here by tests/test_fuzz.cpp under UBSan). TOML allows
// non-ASCII only in strings and comments anyway, so the text is scanned first: a non-ASCII byte outside a
// single-line string or a comment is refused before toml++ sees it. Returns "" or "line L, column C: why".
std::string toml_refusal(std::string_view text) {
  enum class In { Code, Basic, Literal, MultiBasic, MultiLiteral, Comment } in = In::Code;
  int64_t line = 1, column = 0;
  auto at = [&](size_t i, std::string_view token) { return text.substr(i, token.size()) == token; };
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    ++column;
    if (ch == '\n') {
      ++line, column = 0;
      if (in == In::Basic || in == In::Literal || in == In::Comment) in = In::Code;
      continue;
    }
    const bool multi_line = in == In::MultiBasic || in == In::MultiLiteral;
    if (uint8_t(ch) >= 0x80 && (in == In::Code || multi_line))
      return fmt::format(
          "line {}, column {}: a non-ASCII character {}", line, column,
          multi_line ? "in a multi-line string (thaw takes non-ASCII text in single-line strings only)"
                     : "outside a string or comment (TOML keys, numbers and booleans are ASCII)");
    switch (in) {
      case In::Code:
        if (ch == '#')
          in = In::Comment;
        else if (at(i, R"(""")"))
          in = In::MultiBasic, i += 2, column += 2;
        else if (at(i, "'''"))
          in = In::MultiLiteral, i += 2, column += 2;
        else if (ch == '"')
          in = In::Basic;
        else if (ch == '\'')
          in = In::Literal;
        break;
      case In::Basic:
      case In::MultiBasic:
        if (ch == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          ++i, ++column;  // an escaped character
        } else if (in == In::Basic && ch == '"') {
          in = In::Code;
        } else if (in == In::MultiBasic && at(i, R"(""")")) {
          in = In::Code, i += 2, column += 2;
        }
        break;
      case In::Literal:
        if (ch == '\'') in = In::Code;
        break;
      case In::MultiLiteral:
        if (at(i, "'''")) in = In::Code, i += 2, column += 2;
        break;
      case In::Comment:
        break;
    }
  }
  return "";
}

// The value text of a `--key value` override as a TOML node: TOML syntax where it parses (numbers, booleans,
// arrays, quoted strings); for a key that takes a string, the bare text.
toml::table override_node(const std::string& key, const std::string& text) {
  const KeySpec* spec = find_spec(key);
  if (!spec) fail("--{}: unknown key '{}'; the keys are: {}", key, key, known_keys());
  const bool takes_string = spec->default_toml[0] == '"';
  try {
    if (toml_refusal(text).empty()) {
      toml::table t = toml::parse("v = " + text);
      if (!takes_string || t["v"].is_string()) return t;
    } else if (!takes_string) {
      fail("--{}: '{}' is not a TOML value (a number, true/false or [array])", key, text);
    }
  } catch (const toml::parse_error&) {
    if (!takes_string) fail("--{}: '{}' is not a TOML value (a number, true/false or [array])", key, text);
  }
  toml::table t;
  t.insert("v", text);
  return t;
}

template <typename T>
toml::table to_node(const T& value) {
  toml::table t;
  if constexpr (std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<std::string>>) {
    toml::array a;
    for (const auto& v : value)
      a.push_back(v);
    t.insert("v", a);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    t.insert("v", int64_t(value));
  } else {
    t.insert("v", value);
  }
  return t;
}

void resolve(TrainConfig& c, const std::string& config_path) {
  if (c.name.empty()) {
    THAW_CHECK(!config_path.empty(),
               "name: not set; give --name NAME (or a config file, whose name is the default)");
    c.name = std::filesystem::path(config_path).stem().string();
  }
  THAW_CHECK(c.name.find('/') == std::string::npos && c.name != "." && c.name != "..",
             "name: '{}' must be a plain directory name (no '/')", c.name);
  THAW_CHECK(!c.data.empty(), "data: not set; give --data DIR (the Oxford-IIIT Pet root)");
  THAW_CHECK(!c.weights.empty(),
             "weights: not set; give --weights FILE (torchvision weights as thaw HDF5) or --weights none "
             "(random initialisation)");
  try {
    Device::parse(c.device);
  } catch (const Error& e) {
    fail("device: '{}' is not allowed; expected cpu, cuda or cuda:N", c.device);
  }
  if (c.resize_size == 0) c.resize_size = c.image_size * 256 / 224;
  THAW_CHECK(c.resize_size >= c.image_size, "resize_size: {} is smaller than image_size {}", c.resize_size,
             c.image_size);
  if (c.loss == "auto") c.loss = c.task == "species" ? "bce" : "cross_entropy";
  THAW_CHECK(c.loss != "bce" || c.task == "species", "loss: bce needs task = \"species\" (task is \"{}\")",
             c.task);
  if (c.schedule == "auto") c.schedule = c.loss == "bce" ? "none" : "step";
  THAW_CHECK(c.betas.size() == 2, "betas: expected two values, e.g. [0.9, 0.999] (got {})", c.betas.size());
  THAW_CHECK(c.optimizer != "sgd" || !c.nesterov || c.momentum > 0,
             "nesterov: true needs momentum > 0 (momentum is {}); set nesterov = false for plain SGD",
             c.momentum);
  THAW_CHECK(c.trainable != "patterns" || !c.patterns.empty(),
             "patterns: trainable = \"patterns\" needs a non-empty list, e.g. [\"layer4\", \"fc\"]");
  THAW_CHECK(c.layer_lrs.empty() || c.layer_lrs.size() == 4,
             "layer_lrs: expected 4 values (layer4, layer3, layer2, layer1) or none (got {})",
             c.layer_lrs.size());
  THAW_CHECK(c.layer_lrs.empty() || c.trainable == "gradual",
             "layer_lrs: only used with trainable = \"gradual\" (trainable is \"{}\")", c.trainable);
  THAW_CHECK(
      c.bn_frozen_from_epoch == 0 || c.bn_mode == "train",
      "bn_frozen_from_epoch: {} needs bn_mode = \"train\" (with \"frozen\" BatchNorm is frozen from the "
      "first step)",
      c.bn_frozen_from_epoch);
  THAW_CHECK(c.bn_frozen_from_epoch <= c.epochs,
             "bn_frozen_from_epoch: {} is after the last epoch ({}); 0 means never", c.bn_frozen_from_epoch,
             c.epochs);
  THAW_CHECK(!c.cache_on_device || (c.cache && c.device_transforms),
             "cache_on_device: keeps the decoded-image cache on the device, so it needs cache = true and "
             "device_transforms = true (cache is {}, device_transforms {})",
             c.cache, c.device_transforms);
  THAW_CHECK(!(c.oversample && c.class_weights != "none"),
             "oversample and class_weights = \"{}\" together would correct the imbalance twice; choose one",
             c.class_weights);
}

}  // namespace

int64_t TrainConfig::num_outputs() const {
  if (loss == "bce") return 1;
  return task == "species" ? 2 : 37;
}

Overrides overrides_from_args(const std::vector<std::string>& args) {
  Overrides out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    THAW_CHECK(arg.rfind("--", 0) == 0 && arg.size() > 2,
               "unexpected argument '{}': give config keys as --key value", arg);
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      out.emplace_back(config_key_of_flag(arg.substr(0, eq)), arg.substr(eq + 1));
    } else {
      THAW_CHECK(i + 1 < args.size(), "{}: a value is missing", arg);
      out.emplace_back(config_key_of_flag(arg), args[++i]);
    }
  }
  return out;
}

std::string config_key_of_flag(const std::string& flag) {
  std::string key = flag.substr(
      flag.find_first_not_of('-') == std::string::npos ? flag.size() : flag.find_first_not_of('-'));
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

TrainConfig load_train_config(const std::string& config_path, const Overrides& overrides) {
  TrainConfig config;
  for (const auto& spec : kKeys)
    assign(config, spec.key, *toml::parse(fmt::format("v = {}", spec.default_toml))["v"].node(), "default");
  if (!config_path.empty()) {
    THAW_CHECK(std::filesystem::is_regular_file(config_path), "config file '{}' does not exist", config_path);
    std::ifstream in(config_path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    THAW_CHECK(!in.bad(), "config file '{}': cannot be read", config_path);
    if (const std::string why = toml_refusal(text); !why.empty()) fail("{}: {}", config_path, why);
    toml::table file;
    try {
      file = toml::parse(text, config_path);
    } catch (const toml::parse_error& e) {
      fail("{}:{}: {}", config_path, e.source().begin.line, e.description());
    }
    for (const auto& [key, node] : file) {
      const std::string k(key.str());
      assign(config, k, node, origin_of(config_path, node, k));
    }
  }
  for (const auto& [key, text] : overrides) {
    const toml::table t = override_node(key, text);
    assign(config, key, *t["v"].node(), "--" + key);
  }
  resolve(config, config_path);
  return config;
}

TrainConfig train_config_from_toml(const std::string& text) {
  TrainConfig config;
  if (const std::string why = toml_refusal(text); !why.empty()) fail("saved config, {}", why);
  toml::table table;
  try {
    table = toml::parse(text);
  } catch (const toml::parse_error& e) {
    fail("saved config, line {}: {}", e.source().begin.line, e.description());
  }
  for (const auto& [key, node] : table)
    assign(config, std::string(key.str()), node, "saved config");
  return config;
}

std::string train_config_toml(const TrainConfig& config) {
  std::string out = "# thaw train: the fully resolved configuration of this run\n";
  visit_fields(config, [&](const char* key, const auto& field) {
    out += fmt::format("{} = {}\n", key, toml_text(*to_node(field)["v"].node()));
  });
  return out;
}

std::vector<std::string> train_config_diff(const TrainConfig& a, const TrainConfig& b) {
  std::vector<std::string> a_values, diffs;
  visit_fields(
      a, [&](const char*, const auto& field) { a_values.push_back(toml_text(*to_node(field)["v"].node())); });
  size_t i = 0;
  visit_fields(b, [&](const char* key, const auto& field) {
    const std::string v = toml_text(*to_node(field)["v"].node());
    if (v != a_values[i]) diffs.push_back(fmt::format("{}: {} -> {}", key, a_values[i], v));
    ++i;
  });
  return diffs;
}

std::string train_config_keys_markdown() {
  std::string out = "| key | default | allowed | meaning |\n|---|---|---|---|\n";
  for (const auto& spec : kKeys) {
    std::string allowed = spec.allowed;
    if (allowed.empty() && spec.max > spec.min) {
      allowed = fmt::format("{} .. {}", spec.min, spec.max);  // shortest round-trip form: 9007199254740992
    } else {
      for (size_t bar; (bar = allowed.find('|')) != std::string::npos;)
        allowed.replace(bar, 1, ", ");
    }
    out += fmt::format("| `{}` | `{}` | {} | {} |\n", spec.key, spec.default_toml, allowed, spec.help);
  }
  return out;
}

int apply_threads(int64_t threads) {
  THAW_CHECK(threads >= 0 && threads <= 256, "threads: {} is not in 0 .. 256", threads);
  if (threads > 0) ops::set_cpu_threads(int(threads));
  return ops::cpu_threads();
}

}  // namespace thaw::train

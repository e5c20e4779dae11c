// The LoRA adapter type and the PEFT directory format (see lora_adapter.h).
#include "adapters/lora_adapter.h"

#include "model/config.h"
#include "model/error.h"
#include "model/safetensors.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <unistd.h>

namespace mnemo {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// PEFT prefixes every key of a *ForCausalLM model with the PeftModel wrapper
// (`base_model`), the LoraModel's wrapped model (`model`) and the causal LM's
// decoder (`model`), and drops the adapter name ("default") when it saves.
constexpr const char* kTensorPrefix = "base_model.model.model.layers.";

bool is_llama_mlp(LinearModule module) {
  return module == LinearModule::Gate || module == LinearModule::Up || module == LinearModule::Down;
}

// ---- adapter_config.json

// Fields whose only supported value is "off": PEFT features Mnemo does not
// compute. `off` says what "off" looks like for the field.
enum class Off { False, NullOrEmpty };
struct RefusedField {
  const char* name;
  Off off;
  const char* why;
};
constexpr RefusedField kRefusedFields[] = {
    {"use_dora", Off::False, "DoRA (weight-decomposed LoRA) is not supported"},
    {"fan_in_fan_out", Off::False, "fan_in_fan_out (Conv1D-style transposed weights) is not supported"},
    {"lora_bias", Off::False, "LoRA biases are not supported"},
    {"use_qalora", Off::False, "QA-LoRA is not supported"},
    {"modules_to_save", Off::NullOrEmpty, "modules_to_save (fully trained extra modules) is not supported"},
    {"layers_to_transform", Off::NullOrEmpty, "layers_to_transform (LoRA on some layers only) is not supported"},
    {"layers_pattern", Off::NullOrEmpty, "layers_pattern is not supported"},
    {"rank_pattern", Off::NullOrEmpty, "rank_pattern (a rank per module) is not supported; one rank for all"},
    {"alpha_pattern", Off::NullOrEmpty, "alpha_pattern (an alpha per module) is not supported; one alpha for all"},
    {"exclude_modules", Off::NullOrEmpty, "exclude_modules is not supported"},
    {"layer_replication", Off::NullOrEmpty, "layer_replication is not supported"},
    {"target_parameters", Off::NullOrEmpty, "target_parameters (LoRA on parameters) is not supported"},
    {"trainable_token_indices", Off::NullOrEmpty, "trainable_token_indices is not supported"},
    {"alora_invocation_tokens", Off::NullOrEmpty, "activated LoRA (alora_invocation_tokens) is not supported"},
    {"use_bdlora", Off::NullOrEmpty, "block-diagonal LoRA (use_bdlora) is not supported"},
};

bool is_off(const json& value, Off off) {
  if (value.is_null()) return true;
  if (off == Off::False) return value.is_boolean() && !value.get<bool>();
  return (value.is_array() || value.is_object() || value.is_string()) && value.empty();
}

// The full module name PEFT matches target_modules against, for layer 0
// (the set must not depend on the layer, which is checked for regexes).
std::string hf_module_name(int64_t layer, LinearModule module) {
  return fmt::format("model.layers.{}.{}", layer, module_path(module));
}

// PEFT's matching of a list entry: the whole name or a dotted suffix of it.
bool list_entry_matches(const std::string& entry, const std::string& full_name) {
  return full_name == entry || (full_name.size() > entry.size() &&
                                full_name.compare(full_name.size() - entry.size(), entry.size(), entry) == 0 &&
                                full_name[full_name.size() - entry.size() - 1] == '.');
}

std::vector<LinearModule> parse_target_modules(const json& value, const std::string& file) {
  std::set<LinearModule> targets;
  if (value.is_string()) {
    // PEFT: a string is a regex that must fullmatch the module's full name,
    // or "all-linear" (every linear but the output layer).
    std::string pattern = value.get<std::string>();
    if (pattern == "all-linear") return {kAllLinearModules.begin(), kAllLinearModules.end()};
    std::regex regex;
    try {
      regex = std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      fail("{}: target_modules: '{}' is not a valid regular expression ({})", file, pattern, e.what());
    }
    for (LinearModule module : kAllLinearModules) {
      bool first = std::regex_match(hf_module_name(0, module), regex);
      // A pattern that picks some layers only is layers_to_transform in disguise.
      for (int64_t layer : {1, 2, 7, 31, 63})
        if (std::regex_match(hf_module_name(layer, module), regex) != first)
          fail("{}: target_modules: the pattern '{}' selects {} in some layers only; LoRA on some layers is "
               "not supported",
               file, pattern, module_name(module));
      if (first) targets.insert(module);
    }
    if (targets.empty())
      fail("{}: target_modules: the pattern '{}' matches none of q_proj, k_proj, v_proj, o_proj, gate_proj, "
           "up_proj, down_proj",
           file, pattern);
  } else if (value.is_array()) {
    for (const json& entry : value) {
      if (!entry.is_string()) fail("{}: target_modules: entries must be strings, got {}", file, entry.dump());
      std::string name = entry.get<std::string>();
      bool matched = false;
      for (LinearModule module : kAllLinearModules) {
        if (list_entry_matches(name, hf_module_name(0, module))) {
          targets.insert(module);
          matched = true;
        }
      }
      if (!matched)
        fail("{}: target_modules: '{}' is not supported; LoRA applies to q_proj, k_proj, v_proj, o_proj, "
             "gate_proj, up_proj, down_proj",
             file, name);
    }
    if (targets.empty()) fail("{}: target_modules is empty", file);
  } else {
    fail("{}: target_modules must be a list of module names or a regex string, got {}", file, value.dump());
  }
  return {targets.begin(), targets.end()};
}

LoraConfig parse_adapter_config(const json& config, const std::string& file) {
  if (!config.is_object()) fail("{}: not a JSON object", file);
  auto field = [&](const char* name) -> const json& {
    auto it = config.find(name);
    if (it == config.end()) fail("{}: missing field '{}'", file, name);
    return *it;
  };
  const json& peft_type = field("peft_type");
  if (!peft_type.is_string() || peft_type.get<std::string>() != "LORA")
    fail("{}: peft_type is {}; only LORA adapters are supported", file, peft_type.dump());
  for (const RefusedField& refused : kRefusedFields) {
    auto it = config.find(refused.name);
    if (it != config.end() && !is_off(*it, refused.off))
      fail("{}: {} = {}: {}", file, refused.name, it->dump(), refused.why);
  }
  if (auto it = config.find("bias"); it != config.end() && !it->is_null() && *it != "none")
    fail("{}: bias = {}: training biases is not supported (only \"none\")", file, it->dump());

  LoraConfig result;
  const json& r = field("r");
  if (!r.is_number_integer() || r.get<int64_t>() < 1 || r.get<int64_t>() > kMaxLoraRank)
    fail("{}: r = {}: the rank must be an integer from 1 to {}", file, r.dump(), kMaxLoraRank);
  result.rank = r.get<int64_t>();
  const json& alpha = field("lora_alpha");
  if (!alpha.is_number() || !std::isfinite(alpha.get<double>()))
    fail("{}: lora_alpha = {}: must be a number", file, alpha.dump());
  result.alpha = alpha.get<double>();
  if (auto it = config.find("use_rslora"); it != config.end() && !it->is_null()) {
    if (!it->is_boolean()) fail("{}: use_rslora = {}: must be true or false", file, it->dump());
    result.use_rslora = it->get<bool>();
  }
  result.target_modules = parse_target_modules(field("target_modules"), file);
  if (auto it = config.find("base_model_name_or_path"); it != config.end() && it->is_string())
    result.base_model_name_or_path = it->get<std::string>();
  return result;
}

json adapter_config_json(const LoraConfig& config) {
  json modules = json::array();
  for (LinearModule module : config.target_modules) modules.push_back(module_name(module));
  // What PEFT itself writes, minus fields for features left at their defaults
  // that older PEFT versions would not know.
  return json{{"peft_type", "LORA"},
              {"task_type", "CAUSAL_LM"},
              {"r", config.rank},
              {"lora_alpha", config.alpha},
              {"use_rslora", config.use_rslora},
              {"target_modules", modules},
              {"base_model_name_or_path", config.base_model_name_or_path.empty()
                                              ? json(nullptr)
                                              : json(config.base_model_name_or_path)},
              {"bias", "none"},
              {"fan_in_fan_out", false},
              {"use_dora", false},
              {"lora_bias", false},
              {"lora_dropout", 0.0},
              {"init_lora_weights", true},
              {"inference_mode", true},
              {"modules_to_save", nullptr},
              {"layers_to_transform", nullptr},
              {"layers_pattern", nullptr},
              {"rank_pattern", json::object()},
              {"alpha_pattern", json::object()},
              {"revision", nullptr}};
}

// ---- adapter_model.safetensors

// Parses `base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_{A|B}.weight`.
struct ParsedName {
  int64_t layer;
  LinearModule module;
  char which;
};
std::optional<ParsedName> parse_tensor_name(const std::string& name) {
  static const std::regex pattern(R"(base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_(A|B)\.weight)");
  std::smatch match;
  if (!std::regex_match(name, match, pattern)) return std::nullopt;
  auto module = parse_module_name(match[3].str());
  if (!module || (match[2].str() == "mlp") != is_llama_mlp(*module)) return std::nullopt;
  if (match[1].length() > 6) return std::nullopt;
  return ParsedName{std::stoll(match[1].str()), *module, match[4].str()[0]};
}

void check_pair_shapes(const LoraPair& pair, int64_t rank, const std::string& where, const std::string& a_name,
                       const std::string& b_name) {
  if (pair.A.dim() != 2 || pair.A.size(0) != rank)
    fail("{}: tensor {} has shape {}; expected [r={}, in_features]", where, a_name, fmt::join(pair.A.sizes(), "x"),
         rank);
  if (pair.B.dim() != 2 || pair.B.size(1) != rank)
    fail("{}: tensor {} has shape {}; expected [out_features, r={}]", where, b_name, fmt::join(pair.B.sizes(), "x"),
         rank);
  for (const auto* t : {&pair.A, &pair.B})
    if (!at::isFloatingType(t->scalar_type()))
      fail("{}: tensor {} is not floating point", where, t == &pair.A ? a_name : b_name);
}

// The adapter's own consistency (what any writer or reader must see).
void check_adapter(const LoraAdapter& adapter, const std::string& where) {
  const LoraConfig& c = adapter.config;
  if (c.rank < 1 || c.rank > kMaxLoraRank) fail("{}: rank {} is outside 1..{}", where, c.rank, kMaxLoraRank);
  if (c.target_modules.empty()) fail("{}: no target modules", where);
  if (adapter.layers.empty()) fail("{}: the adapter has no layers", where);
  for (size_t layer = 0; layer < adapter.layers.size(); ++layer) {
    for (LinearModule module : kAllLinearModules) {
      const LoraPair& pair = adapter.pair(layer, module);
      std::string a_name = peft_tensor_name(layer, module, 'A'), b_name = peft_tensor_name(layer, module, 'B');
      if (!c.targets(module)) {
        if (pair.A.defined() || pair.B.defined())
          fail("{}: tensor {} is present but {} is not in target_modules", where, a_name, module_name(module));
        continue;
      }
      if (!pair.A.defined()) fail("{}: missing tensor {}", where, a_name);
      if (!pair.B.defined()) fail("{}: missing tensor {}", where, b_name);
      check_pair_shapes(pair, c.rank, where, a_name, b_name);
      for (const auto* t : {&pair.A, &pair.B})
        if (!at::isfinite(*t).all().item<bool>())
          fail("{}: tensor {} holds NaN or infinite weights", where, t == &pair.A ? a_name : b_name);
    }
  }
}

void fsync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) fail("cannot open {} to sync it: {}", path.string(), std::strerror(errno));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) fail("fsync {} failed: {}", path.string(), std::strerror(saved));
}

}  // namespace

// ---- names and config

const char* module_name(LinearModule module) {
  switch (module) {
    case LinearModule::Q: return "q_proj";
    case LinearModule::K: return "k_proj";
    case LinearModule::V: return "v_proj";
    case LinearModule::O: return "o_proj";
    case LinearModule::Gate: return "gate_proj";
    case LinearModule::Up: return "up_proj";
    case LinearModule::Down: return "down_proj";
  }
  MNEMO_CHECK(false, "bad LinearModule {}", static_cast<int>(module));
}

std::string module_path(LinearModule module) {
  return std::string(is_llama_mlp(module) ? "mlp." : "self_attn.") + module_name(module);
}

std::optional<LinearModule> parse_module_name(std::string_view name) {
  for (LinearModule module : kAllLinearModules)
    if (name == module_name(module)) return module;
  return std::nullopt;
}

std::pair<int64_t, int64_t> module_shape(const ModelConfig& c, LinearModule module) {
  int64_t q_features = c.num_attention_heads * c.head_dim, kv_features = c.num_key_value_heads * c.head_dim;
  switch (module) {
    case LinearModule::Q: return {q_features, c.hidden_size};
    case LinearModule::K: return {kv_features, c.hidden_size};
    case LinearModule::V: return {kv_features, c.hidden_size};
    case LinearModule::O: return {c.hidden_size, q_features};
    case LinearModule::Gate: return {c.intermediate_size, c.hidden_size};
    case LinearModule::Up: return {c.intermediate_size, c.hidden_size};
    case LinearModule::Down: return {c.hidden_size, c.intermediate_size};
  }
  MNEMO_CHECK(false, "bad LinearModule {}", static_cast<int>(module));
}

double LoraConfig::scale() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(rank)) : alpha / static_cast<double>(rank);
}

bool LoraConfig::targets(LinearModule module) const {
  for (LinearModule m : target_modules)
    if (m == module) return true;
  return false;
}

const LoraPair& LoraAdapter::pair(int64_t layer, LinearModule module) const {
  MNEMO_CHECK(layer >= 0 && layer < static_cast<int64_t>(layers.size()), "layer {} of {}", layer, layers.size());
  return layers[layer][static_cast<int>(module)];
}
LoraPair& LoraAdapter::pair(int64_t layer, LinearModule module) {
  MNEMO_CHECK(layer >= 0 && layer < static_cast<int64_t>(layers.size()), "layer {} of {}", layer, layers.size());
  return layers[layer][static_cast<int>(module)];
}

std::string peft_tensor_name(int64_t layer, LinearModule module, char which) {
  return fmt::format("{}{}.{}.lora_{}.weight", kTensorPrefix, layer, module_path(module), which);
}

// ---- read / write

LoraAdapter read_peft_adapter(const std::string& dir) {
  fs::path config_path = fs::path(dir) / kAdapterConfigFile;
  fs::path weights_path = fs::path(dir) / kAdapterWeightsFile;
  if (!fs::is_directory(dir)) fail("adapter {}: not a directory", dir);
  if (!fs::exists(config_path)) fail("adapter {}: missing {}", dir, kAdapterConfigFile);
  if (!fs::exists(weights_path)) {
    if (fs::exists(fs::path(dir) / "adapter_model.bin"))
      fail("adapter {}: only adapter_model.bin (pickle) found; save with safe_serialization=True", dir);
    fail("adapter {}: missing {}", dir, kAdapterWeightsFile);
  }
  return read_peft_adapter_files(config_path.string(), weights_path.string());
}

LoraAdapter read_peft_adapter_files(const std::string& config_file, const std::string& weights_file) {
  const fs::path config_path(config_file), weights_path(weights_file);
  if (!fs::is_regular_file(config_path)) fail("{}: missing or not a regular file", config_file);
  const json config_json = read_json_file(config_file, "adapter config", kAdapterConfigLimits);
  LoraAdapter adapter;
  adapter.config = parse_adapter_config(config_json, config_path.string());

  auto file = SafetensorsFile::open(weights_path.string());
  const std::string where = weights_path.string();
  int64_t num_layers = 0;
  std::vector<std::pair<ParsedName, std::string>> parsed;
  for (const SafetensorsEntry& entry : file->entries()) {
    auto name = parse_tensor_name(entry.name);
    if (!name) {
      if (entry.name.find("lora_magnitude_vector") != std::string::npos)
        fail("{}: tensor {} is a DoRA magnitude; DoRA is not supported", where, entry.name);
      fail("{}: unexpected tensor {} (expected {}{{layer}}.{{self_attn|mlp}}.{{module}}.lora_{{A|B}}.weight)", where,
           entry.name, kTensorPrefix);
    }
    if (!adapter.config.targets(name->module))
      fail("{}: tensor {} is present but {} is not in target_modules", where, entry.name, module_name(name->module));
    num_layers = std::max(num_layers, name->layer + 1);
    parsed.emplace_back(*name, entry.name);
  }
  if (parsed.empty()) fail("{}: no LoRA tensors", where);
  adapter.layers.resize(num_layers);
  for (const auto& [name, tensor_name] : parsed) {
    // Own the memory: the adapter outlives the mapping and may move devices.
    at::Tensor tensor = file->tensor(tensor_name).clone();
    LoraPair& pair = adapter.pair(name.layer, name.module);
    (name.which == 'A' ? pair.A : pair.B) = tensor;
  }
  check_adapter(adapter, where);
  adapter.metadata = file->metadata();
  return adapter;
}

void write_peft_adapter(const std::string& dir, const LoraAdapter& adapter) {
  check_adapter(adapter, "adapter to write to " + dir);
  fs::path target = fs::absolute(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  fs::path parent = target.parent_path();
  fs::create_directories(parent);
  fs::path temporary = parent / fmt::format(".{}.tmp-{}", target.filename().string(), ::getpid());
  fs::remove_all(temporary);
  fs::create_directories(temporary);
  try {
    {
      fs::path config_path = temporary / kAdapterConfigFile;
      std::ofstream out(config_path);
      out << adapter_config_json(adapter.config).dump(2) << "\n";
      out.close();
      if (!out) fail("cannot write {}", config_path.string());
      fsync_path(config_path, false);
    }
    std::map<std::string, at::Tensor> tensors;
    for (size_t layer = 0; layer < adapter.layers.size(); ++layer)
      for (LinearModule module : adapter.config.target_modules) {
        const LoraPair& pair = adapter.pair(layer, module);
        tensors[peft_tensor_name(layer, module, 'A')] = pair.A.detach();
        tensors[peft_tensor_name(layer, module, 'B')] = pair.B.detach();
      }
    std::map<std::string, std::string> metadata = adapter.metadata;
    metadata.emplace("format", "pt");  // what PEFT and safetensors' torch loader write
    write_safetensors((temporary / kAdapterWeightsFile).string(), tensors, metadata);  // fsyncs the file
    fsync_path(temporary, true);
    if (fs::exists(target)) {
      // One atomic exchange: readers see the whole old or the whole new adapter.
      if (::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0)
        fail("cannot replace {}: {}", target.string(), std::strerror(errno));
      fs::remove_all(temporary);  // now the old adapter
    } else if (::rename(temporary.c_str(), target.c_str()) != 0) {
      fail("cannot rename {} to {}: {}", temporary.string(), target.string(), std::strerror(errno));
    }
    fsync_path(parent, true);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temporary, ignored);
    throw;
  }
}

AdapterShapes adapter_shapes(const ModelConfig& config) {
  AdapterShapes shapes;
  shapes.num_layers = config.num_layers;
  for (LinearModule module : kAllLinearModules) shapes.modules[static_cast<int>(module)] = module_shape(config, module);
  return shapes;
}

std::string adapter_shapes_to_json(const AdapterShapes& shapes) {
  json modules = json::object();
  for (LinearModule module : kAllLinearModules) {
    auto [out, in] = shapes.modules[static_cast<int>(module)];
    modules[module_name(module)] = {out, in};
  }
  return json{{"num_layers", shapes.num_layers}, {"modules", modules}}.dump();
}

AdapterShapes parse_adapter_shapes(const std::string& json_text, const std::string& where) {
  json parsed = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) fail("{}: base model shapes are not a JSON object", where);
  auto positive = [&](const json& value, const std::string& field) {
    if (!value.is_number_integer() || value.get<int64_t>() < 1 || value.get<int64_t>() > (int64_t{1} << 24))
      fail("{}: base model shapes: {} = {} is not an integer from 1 to 2^24", where, field, value.dump());
    return value.get<int64_t>();
  };
  AdapterShapes shapes;
  shapes.num_layers = positive(parsed.value("num_layers", json()), "num_layers");
  const json modules = parsed.value("modules", json());
  if (!modules.is_object()) fail("{}: base model shapes: 'modules' is not an object", where);
  for (LinearModule module : kAllLinearModules) {
    const json shape = modules.value(module_name(module), json());
    if (!shape.is_array() || shape.size() != 2)
      fail("{}: base model shapes: modules.{} is not [out_features, in_features]", where, module_name(module));
    const std::string field = fmt::format("modules.{}", module_name(module));
    shapes.modules[static_cast<int>(module)] = {positive(shape[0], field), positive(shape[1], field)};
  }
  return shapes;
}

void validate_against(const LoraAdapter& adapter, const ModelConfig& config) {
  validate_against(adapter, adapter_shapes(config), config.source.empty() ? "the base model" : config.source);
}

void validate_against(const LoraAdapter& adapter, const AdapterShapes& shapes, const std::string& where) {
  if (adapter.config.rank < 1 || adapter.config.rank > kMaxLoraRank)
    fail("adapter rank {} is outside 1..{}", adapter.config.rank, kMaxLoraRank);
  if (static_cast<int64_t>(adapter.layers.size()) != shapes.num_layers)
    fail("the adapter has {} layers but {} has {}", adapter.layers.size(), where, shapes.num_layers);
  for (int64_t layer = 0; layer < shapes.num_layers; ++layer)
    for (LinearModule module : adapter.config.target_modules) {
      auto [out, in] = shapes.modules[static_cast<int>(module)];
      const LoraPair& pair = adapter.pair(layer, module);
      if (!pair.A.defined() || !pair.B.defined())
        fail("the adapter lacks layer {} {} although it targets it", layer, module_name(module));
      if (pair.A.dim() != 2 || pair.A.size(0) != adapter.config.rank || pair.A.size(1) != in)
        fail("{} has shape {} but {} needs [{}, {}]", peft_tensor_name(layer, module, 'A'),
             fmt::join(pair.A.sizes(), "x"), where, adapter.config.rank, in);
      if (pair.B.dim() != 2 || pair.B.size(0) != out || pair.B.size(1) != adapter.config.rank)
        fail("{} has shape {} but {} needs [{}, {}]", peft_tensor_name(layer, module, 'B'),
             fmt::join(pair.B.sizes(), "x"), where, out, adapter.config.rank);
    }
}

// ---- construction

namespace {
LoraAdapter make_adapter(const LoraConfig& config, const ModelConfig& model_config, uint64_t seed, bool random_b,
                         double std) {
  if (config.rank < 1 || config.rank > kMaxLoraRank) fail("LoRA rank {} is outside 1..{}", config.rank, kMaxLoraRank);
  if (config.target_modules.empty()) fail("LoRA config without target modules");
  LoraAdapter adapter;
  adapter.config = config;
  adapter.layers.resize(model_config.num_layers);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto options = at::TensorOptions().dtype(at::kFloat);
  for (int64_t layer = 0; layer < model_config.num_layers; ++layer)
    for (LinearModule module : kAllLinearModules) {
      if (!config.targets(module)) continue;
      auto [out, in] = module_shape(model_config, module);
      LoraPair& pair = adapter.pair(layer, module);
      if (random_b) {
        pair.A = at::normal(0.0, std, {config.rank, in}, generator, options);
        pair.B = at::normal(0.0, std, {out, config.rank}, generator, options);
      } else {
        // kaiming_uniform_(a=√5) on [r, in]: bound = gain·√(3/fan_in) with
        // gain = √(2/(1+a²)) = √(1/3), i.e. 1/√in — what nn.Linear and PEFT use.
        double bound = 1.0 / std::sqrt(static_cast<double>(in));
        pair.A = at::empty({config.rank, in}, options).uniform_(-bound, bound, generator);
        pair.B = at::zeros({out, config.rank}, options);
      }
    }
  return adapter;
}
}  // namespace

LoraAdapter init_lora_adapter(const LoraConfig& config, const ModelConfig& model_config, uint64_t seed) {
  return make_adapter(config, model_config, seed, /*random_b=*/false, 0.0);
}

LoraAdapter make_random_adapter(const LoraConfig& config, const ModelConfig& model_config, uint64_t seed,
                                double std) {
  return make_adapter(config, model_config, seed, /*random_b=*/true, std);
}

}  // namespace mnemo

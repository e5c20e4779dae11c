// The LoRA adapter type, its PEFT directory format and the adapter slots:
// a written adapter reads back identical (tensors, config, __metadata__);
// malformed or unsupported adapters fail with an error that names the file
// and the field or tensor; the slots hook computes y + s·(x·Aᵀ)·Bᵀ per token.
#include "adapters/adapter_slots.h"
#include "adapters/lora_adapter.h"
#include "model/config.h"
#include "model/error.h"
#include "model/safetensors.h"
#include "support/errors.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace mnemo {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

ModelConfig tiny_config(int64_t layers = 2) {
  ModelConfig c;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.source = "tiny/config.json";
  return c;
}

LoraConfig config_of(int64_t rank, double alpha, bool rslora, std::vector<LinearModule> targets) {
  LoraConfig c;
  c.rank = rank;
  c.alpha = alpha;
  c.use_rslora = rslora;
  c.target_modules = std::move(targets);
  return c;
}

// Expects `body` to throw mnemo::Error whose message contains every `needle`.
template <typename Body>
void expect_error(Body body, std::initializer_list<std::string> needles) {
  const std::string message = testing::error_of(body);
  if (message == testing::kNoError) {
    ADD_FAILURE() << "no error; expected one mentioning " << *needles.begin();
    return;
  }
  for (const std::string& needle : needles)
    EXPECT_NE(message.find(needle), std::string::npos) << "message: " << message;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}
void write_json(const fs::path& path, const json& value) { std::ofstream(path) << value.dump(2); }

// A valid adapter on disk whose config a test then spoils.
fs::path written_adapter(const std::string& name) {
  fs::path dir = testing::scratch_dir("lora_adapter_" + name) / "adapter";
  write_peft_adapter(dir.string(),
                     make_random_adapter(config_of(4, 8, false, {LinearModule::Q, LinearModule::V}), tiny_config(), 1));
  return dir;
}

TEST(LoraAdapter, RoundTripKeepsTensorsConfigAndMetadata) {
  LoraConfig config = config_of(8, 16, true, {LinearModule::Q, LinearModule::O, LinearModule::Down});
  config.base_model_name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct";
  LoraAdapter adapter = make_random_adapter(config, tiny_config(), 42);
  adapter.metadata = {{"mnemo.user", "alice"},
                      {"mnemo.base_model_fingerprint", "sha256:0123"},
                      {"mnemo.data_fingerprint", "sha256:4567"},
                      {"mnemo.metrics", R"({"recall": 0.9})"}};
  fs::path dir = testing::scratch_dir("lora_adapter_round_trip") / "adapter";
  write_peft_adapter(dir.string(), adapter);

  EXPECT_TRUE(fs::exists(dir / "adapter_config.json"));
  json written = read_json(dir / "adapter_config.json");
  EXPECT_EQ(written["peft_type"], "LORA");
  EXPECT_EQ(written["r"], 8);
  EXPECT_EQ(written["target_modules"], json({"q_proj", "o_proj", "down_proj"}));

  LoraAdapter back = read_peft_adapter(dir.string());
  EXPECT_EQ(back.config.rank, 8);
  EXPECT_EQ(back.config.alpha, 16);
  EXPECT_TRUE(back.config.use_rslora);
  EXPECT_EQ(back.config.target_modules, config.target_modules);
  EXPECT_EQ(back.config.base_model_name_or_path, config.base_model_name_or_path);
  for (const auto& [key, value] : adapter.metadata) EXPECT_EQ(back.metadata.at(key), value) << key;
  EXPECT_EQ(back.metadata.at("format"), "pt");  // what PEFT writes and expects
  ASSERT_EQ(back.layers.size(), 2u);
  for (int64_t layer = 0; layer < 2; ++layer)
    for (LinearModule module : kAllLinearModules) {
      const LoraPair& a = adapter.pair(layer, module);
      const LoraPair& b = back.pair(layer, module);
      ASSERT_EQ(a.A.defined(), b.A.defined()) << module_name(module);
      if (!a.A.defined()) continue;
      EXPECT_TRUE(at::equal(a.A, b.A)) << peft_tensor_name(layer, module, 'A');
      EXPECT_TRUE(at::equal(a.B, b.B)) << peft_tensor_name(layer, module, 'B');
    }
  validate_against(back, tiny_config());
}

TEST(LoraAdapter, WritingOverAnAdapterReplacesItWholeAndLeavesNoTemporaries) {
  fs::path root = testing::scratch_dir("lora_adapter_replace");
  fs::path dir = root / "adapter";
  write_peft_adapter(dir.string(), make_random_adapter(config_of(4, 8, false, {LinearModule::Q}), tiny_config(), 1));
  write_peft_adapter(dir.string(), make_random_adapter(config_of(2, 8, false, {LinearModule::Up}), tiny_config(), 2));
  LoraAdapter back = read_peft_adapter(dir.string());
  EXPECT_EQ(back.config.rank, 2);
  EXPECT_EQ(back.config.target_modules, std::vector<LinearModule>{LinearModule::Up});
  EXPECT_EQ(std::distance(fs::directory_iterator(root), fs::directory_iterator()), 1);
}

TEST(LoraAdapter, ScaleIsAlphaOverRankOrOverItsRootWithRsLora) {
  EXPECT_DOUBLE_EQ(config_of(16, 32, false, {LinearModule::Q}).scale(), 2.0);
  EXPECT_DOUBLE_EQ(config_of(16, 32, true, {LinearModule::Q}).scale(), 8.0);
  LoraConfig defaults;
  EXPECT_EQ(defaults.rank, 16);
  EXPECT_EQ(defaults.target_modules.size(), 7u);
}

TEST(LoraAdapter, InitLikePeftHasZeroBAndKaimingUniformA) {
  LoraAdapter adapter = init_lora_adapter(LoraConfig{}, tiny_config(), 3);
  for (int64_t layer = 0; layer < 2; ++layer)
    for (LinearModule module : kAllLinearModules) {
      const LoraPair& pair = adapter.pair(layer, module);
      auto [out, in] = module_shape(tiny_config(), module);
      EXPECT_EQ(pair.A.sizes().vec(), (std::vector<int64_t>{16, in}));
      EXPECT_EQ(pair.B.sizes().vec(), (std::vector<int64_t>{out, 16}));
      EXPECT_EQ(pair.B.abs().max().item<float>(), 0.0f);
      EXPECT_LE(pair.A.abs().max().item<double>(), 1.0 / std::sqrt(double(in)) + 1e-6);
      EXPECT_GT(pair.A.abs().max().item<double>(), 0.5 / std::sqrt(double(in)));
    }
}

TEST(LoraAdapter, TargetModulesAsRegexStringOrAllLinear) {
  fs::path dir = written_adapter("regex");
  json config = read_json(dir / "adapter_config.json");
  config["target_modules"] = R"(.*\.(q_proj|v_proj))";
  write_json(dir / "adapter_config.json", config);
  EXPECT_EQ(read_peft_adapter(dir.string()).config.target_modules,
            (std::vector<LinearModule>{LinearModule::Q, LinearModule::V}));

  // "all-linear" targets all seven, so the q/v-only tensors are now incomplete.
  config["target_modules"] = "all-linear";
  write_json(dir / "adapter_config.json", config);
  expect_error([&] { read_peft_adapter(dir.string()); },
               {"adapter_model.safetensors", "missing tensor", "k_proj.lora_A"});
  // A regex that picks some layers only is layers_to_transform in disguise.
  config["target_modules"] = R"(model\.layers\.0\..*\.(q_proj|v_proj))";
  write_json(dir / "adapter_config.json", config);
  expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_config.json", "some layers"});
}

// Each unsupported PEFT feature is refused by name, never silently ignored.
TEST(LoraAdapter, UnsupportedPeftFeaturesAreRefusedByName) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"use_dora", true},
      {"modules_to_save", json({"lm_head"})},
      {"layers_to_transform", json({0})},
      {"rank_pattern", json({{"q_proj", 8}})},
      {"alpha_pattern", json({{"v_proj", 4}})},
      {"bias", "all"},
      {"fan_in_fan_out", true},
      {"lora_bias", true},
  };
  fs::path dir = written_adapter("unsupported");
  json valid = read_json(dir / "adapter_config.json");
  for (const auto& [field, value] : cases) {
    json config = valid;
    config[field] = value;
    write_json(dir / "adapter_config.json", config);
    expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_config.json", field});
  }
  write_json(dir / "adapter_config.json", valid);
  EXPECT_NO_THROW(read_peft_adapter(dir.string()));
}

TEST(LoraAdapter, MalformedConfigsNameTheField) {
  fs::path dir = written_adapter("malformed");
  json valid = read_json(dir / "adapter_config.json");
  auto with = [&](const std::string& field, const json& value) {
    json config = valid;
    if (value.is_discarded())
      config.erase(field);
    else
      config[field] = value;
    write_json(dir / "adapter_config.json", config);
  };
  with("peft_type", "IA3");
  expect_error([&] { read_peft_adapter(dir.string()); }, {"peft_type", "LORA"});
  with("r", 65);
  expect_error([&] { read_peft_adapter(dir.string()); }, {"r = 65", "1 to 64"});
  with("r", json::value_t::discarded);
  expect_error([&] { read_peft_adapter(dir.string()); }, {"missing field 'r'"});
  with("target_modules", json({"q_proj", "lm_head"}));
  expect_error([&] { read_peft_adapter(dir.string()); }, {"lm_head"});
  with("lora_alpha", "sixteen");
  expect_error([&] { read_peft_adapter(dir.string()); }, {"lora_alpha"});
  std::ofstream(dir / "adapter_config.json") << "{not json";
  expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_config.json", "JSON"});
  fs::remove(dir / "adapter_config.json");
  expect_error([&] { read_peft_adapter(dir.string()); }, {"missing adapter_config.json"});
}

TEST(LoraAdapter, BadTensorsNameTheFileAndTensor) {
  fs::path dir = written_adapter("tensors");
  fs::path weights = dir / "adapter_model.safetensors";
  std::map<std::string, at::Tensor> tensors;
  {
    auto file = SafetensorsFile::open(weights.string());
    for (const auto& entry : file->entries()) tensors[entry.name] = file->tensor(entry.name).clone();
  }
  const std::string q_a = peft_tensor_name(1, LinearModule::Q, 'A');

  auto missing = tensors;
  missing.erase(q_a);
  write_safetensors(weights.string(), missing);
  expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_model.safetensors", "missing tensor", q_a});

  auto wrong_rank = tensors;
  wrong_rank[q_a] = at::randn({3, 16});
  write_safetensors(weights.string(), wrong_rank);
  expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_model.safetensors", q_a, "r=4"});

  auto untargeted = tensors;
  untargeted[peft_tensor_name(0, LinearModule::K, 'A')] = at::randn({4, 16});
  write_safetensors(weights.string(), untargeted);
  expect_error([&] { read_peft_adapter(dir.string()); }, {"k_proj", "not in target_modules"});

  auto dora = tensors;
  dora["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"] = at::randn({16});
  write_safetensors(weights.string(), dora);
  expect_error([&] { read_peft_adapter(dir.string()); }, {"DoRA"});

  auto with_adapter_name = tensors;  // PEFT strips ".default"; an unstripped file is not ours to guess
  with_adapter_name["base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"] = at::randn({4, 16});
  write_safetensors(weights.string(), with_adapter_name);
  expect_error([&] { read_peft_adapter(dir.string()); }, {"unexpected tensor", "lora_A.default.weight"});

  // `generate --adapter` ran these silently; the registry stored them.
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    auto poisoned = tensors;
    const std::string q_b = peft_tensor_name(1, LinearModule::Q, 'B');
    poisoned[q_b] = poisoned[q_b].clone();
    poisoned[q_b][0][0] = bad;
    write_safetensors(weights.string(), poisoned);
    expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_model.safetensors", q_b, "NaN or infinite"});
    LoraAdapter adapter = read_peft_adapter(written_adapter("finite").string());
    adapter.pair(0, LinearModule::Q).A[0][0] = bad;
    expect_error([&] { write_peft_adapter((dir / "out").string(), adapter); }, {"NaN or infinite"});
  }

  fs::remove(weights);
  expect_error([&] { read_peft_adapter(dir.string()); }, {"missing adapter_model.safetensors"});
}

TEST(LoraAdapter, ValidationAgainstTheBaseModelSaysWhatDoesNotFit) {
  LoraAdapter adapter =
      make_random_adapter(config_of(4, 8, false, {LinearModule::Q, LinearModule::Gate}), tiny_config(), 5);
  EXPECT_NO_THROW(validate_against(adapter, tiny_config()));
  expect_error([&] { validate_against(adapter, tiny_config(3)); }, {"2 layers", "tiny/config.json", "3"});
  ModelConfig wider = tiny_config();
  wider.intermediate_size = 32;
  expect_error([&] { validate_against(adapter, wider); }, {peft_tensor_name(0, LinearModule::Gate, 'B'), "[32, 4]"});
  ModelConfig other_hidden = tiny_config();
  other_hidden.hidden_size = 20;
  expect_error([&] { validate_against(adapter, other_hidden); }, {peft_tensor_name(0, LinearModule::Q, 'A')});
  expect_error([&] { make_random_adapter(config_of(65, 8, false, {LinearModule::Q}), tiny_config(), 1); }, {"rank 65"});
}

// ---- adapter slots

// The LoRA term by its definition, one token at a time.
at::Tensor reference_delta(const at::Tensor& x, const LoraAdapter& adapter, LinearModule module, int64_t layer) {
  if (!adapter.config.targets(module)) return at::zeros({x.size(0), module_shape(tiny_config(), module).first});
  const LoraPair& pair = adapter.pair(layer, module);
  return adapter.config.scale() * at::matmul(at::matmul(x, pair.A.t()), pair.B.t());
}

TEST(AdapterSlots, EveryTokenGetsItsOwnAdaptersDeltaAndBaseTokensNone) {
  ModelConfig model = tiny_config();
  std::vector<LoraAdapter> adapters = {
      make_random_adapter(config_of(8, 16, false, {kAllLinearModules.begin(), kAllLinearModules.end()}), model, 1),
      make_random_adapter(config_of(16, 8, true, {LinearModule::Q, LinearModule::V}), model, 2),
      make_random_adapter(config_of(4, 12, false, {LinearModule::K, LinearModule::Down}), model, 3),
  };
  AdapterSlots slots(model, 4, at::kFloat, at::kCPU);
  slots.load(0, adapters[0]);
  slots.load(3, adapters[1]);  // grows r_max from 8 to 16: slot 0 must survive
  slots.load(1, adapters[2]);
  EXPECT_EQ(slots.max_rank(), 16);
  const std::vector<int32_t> token_slot = {0, 3, -1, 1, 0, 1, -1, 3};
  const std::vector<int> adapter_of_slot = {0, 2, -1, 1};
  at::Tensor slots_tensor = at::tensor(std::vector<int32_t>(token_slot), at::kInt);
  for (LinearModule module : kAllLinearModules) {
    auto [out, in] = module_shape(model, module);
    at::Tensor x = at::randn({8, in});
    at::Tensor y0 = at::randn({8, out});
    at::Tensor y = y0.clone();
    slots.apply(1, module, x, y, LoraRouting{slots_tensor});
    for (int t = 0; t < 8; ++t) {
      at::Tensor expected = y0[t];
      if (token_slot[t] >= 0) {
        const LoraAdapter& adapter = adapters[adapter_of_slot[token_slot[t]]];
        expected = expected + reference_delta(x.narrow(0, t, 1), adapter, module, 1)[0];
      }
      EXPECT_LT((y[t] - expected).abs().max().item<double>(), 1e-5) << module_name(module) << " token " << t;
    }
  }
  // Unloading a slot sends its tokens back to the base model.
  slots.unload(0);
  EXPECT_FALSE(slots.loaded(0));
  at::Tensor x = at::randn({1, model.hidden_size});
  at::Tensor y = at::zeros({1, model.num_attention_heads * model.head_dim});
  slots.apply(0, LinearModule::Q, x, y, LoraRouting{at::zeros({1}, at::kInt)});
  EXPECT_EQ(y.abs().max().item<float>(), 0.0f);
}

TEST(AdapterSlots, SegmentRoutingEqualsPerTokenRouting) {
  // A prefill batch: sequences of 3, 1 and 4 tokens with slots 1, -1 and 0.
  ModelConfig model = tiny_config();
  AdapterSlots slots(model, 2, at::kFloat, at::kCPU);
  slots.load(0, make_random_adapter(config_of(8, 16, false, {LinearModule::Q, LinearModule::Down}), model, 4));
  slots.load(1, make_random_adapter(config_of(4, 8, true, {LinearModule::Q}), model, 5));
  const auto ints = [](std::vector<int32_t> values) { return at::tensor(values, at::kInt); };
  LoraRouting per_token{ints({1, 1, 1, -1, 0, 0, 0, 0})};
  LoraRouting segments;  // no token_slots: the per-token path would fail on it
  segments.seg_starts = ints({0, 3, 4, 8});
  segments.seg_slots = ints({1, -1, 0});
  for (LinearModule module : {LinearModule::Q, LinearModule::Down}) {
    auto [out, in] = module_shape(model, module);
    at::Tensor x = at::randn({8, in});
    at::Tensor y_tokens = at::randn({8, out});
    at::Tensor y_segments = y_tokens.clone();
    const at::Tensor y0 = y_tokens.clone();
    slots.apply(1, module, x, y_tokens, per_token);
    slots.apply(1, module, x, y_segments, segments);
    EXPECT_GT((y_tokens - y0).abs().max().item<double>(), 1e-3) << module_name(module);  // the adapters did act
    EXPECT_EQ(y_segments[3].equal(y0[3]), true) << "the token without an adapter is untouched";
    EXPECT_LT((y_segments - y_tokens).abs().max().item<double>(), 1e-5) << module_name(module);
  }
}

TEST(AdapterSlots, ExtractGivesBackTheLoadedAdapter) {
  LoraAdapter adapter =
      make_random_adapter(config_of(4, 8, true, {LinearModule::O, LinearModule::Up}), tiny_config(), 9);
  AdapterSlots slots(tiny_config(), 2, at::kBFloat16, at::kCPU, /*rank_capacity=*/64);
  slots.load(1, adapter);
  EXPECT_EQ(slots.max_rank(), 64);
  LoraAdapter back = slots.extract(1);
  EXPECT_EQ(back.config.rank, 4);
  EXPECT_TRUE(back.config.use_rslora);
  for (LinearModule module : {LinearModule::O, LinearModule::Up}) {
    // bf16 storage: equal to bf16 rounding.
    EXPECT_TRUE(at::allclose(back.pair(1, module).A, adapter.pair(1, module).A, 1e-2, 1e-2));
    EXPECT_TRUE(at::allclose(back.pair(1, module).B, adapter.pair(1, module).B, 1e-2, 1e-2));
  }
  expect_error([&] { slots.extract(0); }, {"slot 0 is empty"});
  expect_error([&] { slots.load(2, adapter); }, {"slot 2"});
  expect_error([&] { slots.load(0, make_random_adapter(adapter.config, tiny_config(3), 1)); }, {"layers"});
}

TEST(AdapterSlots, GradientsFlowToTheStacksOnlyWithinEachSlotsRank) {
  ModelConfig model = tiny_config();
  AdapterSlots slots(model, 2, at::kFloat, at::kCPU);
  slots.load(0, make_random_adapter(config_of(2, 4, false, {LinearModule::Q}), model, 1));
  slots.load(1, make_random_adapter(config_of(6, 4, false, {LinearModule::Q}), model, 2));
  EXPECT_EQ(slots.max_rank(), 8);  // ranks 2 and 6, rounded up to the CUDA kernels' vector width
  slots.set_requires_grad(true);
  at::Tensor x = at::randn({3, model.hidden_size});
  at::Tensor y = at::zeros({3, 16});
  slots.apply(0, LinearModule::Q, x, y, LoraRouting{at::tensor(std::vector<int32_t>{0, 1, 1}, at::kInt)});
  y.sum().backward();
  at::Tensor grad_a = slots.a_stack(0, LinearModule::Q).grad();
  ASSERT_TRUE(grad_a.defined());
  EXPECT_GT(grad_a[0].narrow(0, 0, 2).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(grad_a[0].narrow(0, 2, 4).abs().sum().item<double>(), 0.0);  // beyond slot 0's rank
  EXPECT_GT(grad_a[1].abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(slots.a_stack(1, LinearModule::Q).grad().defined());  // layer 1 was not used
}

}  // namespace
}  // namespace mnemo

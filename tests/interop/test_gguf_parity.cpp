// The GGUF reader against the Python references (scripts/reference_gguf.py):
// dequantization of every supported type vs the `gguf` package, metadata the
// package wrote, and the default model (SmolLM2-135M-Instruct GGUF) vs
// transformers' GGUF loader: tensor names, shapes, values (q/k un-permuted),
// config, tokenizer.json and the ids its tokenizer gives.
#include "model/default_model.h"
#include "model/error.h"
#include "model/gguf.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>

namespace mnemo {
namespace {

std::filesystem::path gguf_reference() { return testing::reference_dir() / "gguf"; }

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream file(path);
  EXPECT_TRUE(file.good()) << "missing " << path << ": run scripts/make_reference_models.py";
  return nlohmann::json::parse(file);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(GgufParity, EveryTypeDequantizesAsTheGgufPackage) {
  auto file = GgufFile::open((gguf_reference() / "types.gguf").string());
  auto expected = SafetensorsFile::open((gguf_reference() / "types_expected.safetensors").string());
  EXPECT_EQ(file->alignment(), 64u);
  ASSERT_EQ(file->tensors().size(), expected->entries().size());
  for (const SafetensorsEntry& entry : expected->entries()) {
    SCOPED_TRACE(entry.name);
    at::Tensor want = expected->tensor(entry.name);
    at::Tensor got = file->dequantize(entry.name, at::kFloat);
    ASSERT_EQ(got.sizes(), want.sizes());
    // Same operations in fp32; only a fused multiply-add may differ in the last bit.
    EXPECT_TRUE(at::allclose(got, want, 1e-6, 1e-7)) << (got - want).abs().max().item<float>();
    EXPECT_TRUE(at::equal(file->dequantize(entry.name, at::kBFloat16), got.to(at::kBFloat16)) ||
                at::allclose(file->dequantize(entry.name, at::kBFloat16).to(at::kFloat), want, 1e-2, 1e-2));
    EXPECT_TRUE(at::allclose(file->dequantize(entry.name, at::kHalf).to(at::kFloat), want, 1e-3, 1e-3));
  }
}

TEST(GgufParity, MetadataWrittenByTheGgufPackageReadsBack) {
  auto file = GgufFile::open((gguf_reference() / "types.gguf").string());
  nlohmann::json want = read_json(gguf_reference() / "types_metadata.json");
  EXPECT_EQ(file->get_string("general.architecture"), "test");
  for (const char* key : {"test.u8", "test.i8", "test.u16", "test.i16", "test.u32", "test.i32", "test.u64", "test.i64"})
    EXPECT_EQ(file->get_int(key), want[key].get<int64_t>()) << key;
  EXPECT_EQ(file->get_float("test.f32"), want["test.f32"].get<double>());
  EXPECT_EQ(file->get_float("test.f64"), want["test.f64"].get<double>());
  EXPECT_EQ(file->get_bool("test.bool"), want["test.bool"].get<bool>());
  EXPECT_EQ(file->get_string("test.string"), want["test.string"].get<std::string>());
  EXPECT_EQ(file->get_int_array("test.array_i32"), want["test.array_i32"].get<std::vector<int64_t>>());
  EXPECT_EQ(file->get_string_array("test.array_str"), want["test.array_str"].get<std::vector<std::string>>());
  EXPECT_EQ(file->get_float_array("test.array_f32"), want["test.array_f32"].get<std::vector<double>>());
}

// The default model, loaded once for all tests below (about a second).
class SmolLM2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string(default_model_path());
    auto start = std::chrono::steady_clock::now();
    model_ = new GgufModel(load_gguf_model(*path_, at::kFloat));
    std::printf("[ timing ] load_gguf_model(SmolLM2-135M Q4_1, fp32): %.3f s\n", seconds_since(start));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete path_;
  }
  static GgufModel* model_;
  static std::string* path_;
};
GgufModel* SmolLM2::model_ = nullptr;
std::string* SmolLM2::path_ = nullptr;

TEST_F(SmolLM2, TensorNamesAndShapesMatchTransformers) {
  nlohmann::json config = read_json(gguf_reference() / "smollm2_config.json");
  auto shapes = config["_state_dict_shapes"].get<std::map<std::string, std::vector<int64_t>>>();
  // transformers lists the tied lm_head in its state dict; Mnemo leaves it out.
  ASSERT_TRUE(model_->config.tie_word_embeddings);
  shapes.erase("lm_head.weight");
  EXPECT_EQ(model_->tensors.size(), shapes.size());
  for (const auto& [name, shape] : shapes) {
    auto it = model_->tensors.find(name);
    ASSERT_NE(it, model_->tensors.end()) << name;
    EXPECT_EQ(it->second.sizes().vec(), shape) << name;
    EXPECT_EQ(it->second.scalar_type(), at::kFloat) << name;
  }
}

TEST_F(SmolLM2, TensorValuesMatchTransformersIncludingUnpermutedQK) {
  auto expected = SafetensorsFile::open((gguf_reference() / "smollm2_expected.safetensors").string());
  ASSERT_GE(expected->entries().size(), 8u);
  for (const SafetensorsEntry& entry : expected->entries()) {
    SCOPED_TRACE(entry.name);
    at::Tensor want = expected->tensor(entry.name);
    at::Tensor got = model_->tensors.at(entry.name).narrow(0, 0, want.size(0));  // embed: a row prefix
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(at::allclose(got, want, 1e-6, 1e-6)) << (got - want).abs().max().item<float>();
  }
}

TEST_F(SmolLM2, ConfigMatchesTransformers) {
  nlohmann::json want = read_json(gguf_reference() / "smollm2_config.json");
  const ModelConfig& c = model_->config;
  EXPECT_EQ(c.architecture, Architecture::Llama);
  EXPECT_EQ(c.architecture_name, "LlamaForCausalLM");
  EXPECT_EQ(c.vocab_size, want["vocab_size"].get<int64_t>());
  EXPECT_EQ(c.hidden_size, want["hidden_size"].get<int64_t>());
  EXPECT_EQ(c.intermediate_size, want["intermediate_size"].get<int64_t>());
  EXPECT_EQ(c.num_layers, want["num_hidden_layers"].get<int64_t>());
  EXPECT_EQ(c.num_attention_heads, want["num_attention_heads"].get<int64_t>());
  EXPECT_EQ(c.num_key_value_heads, want["num_key_value_heads"].get<int64_t>());
  EXPECT_EQ(c.head_dim, want["head_dim"].get<int64_t>());
  EXPECT_EQ(c.max_position_embeddings, want["max_position_embeddings"].get<int64_t>());
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, want["rms_norm_eps"].get<double>());
  double theta = want.contains("rope_parameters") ? want["rope_parameters"]["rope_theta"].get<double>()
                                                  : want["rope_theta"].get<double>();
  EXPECT_DOUBLE_EQ(c.rope_theta, theta);
  EXPECT_EQ(c.tie_word_embeddings, want["tie_word_embeddings"].get<bool>());
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{want["bos_token_id"].get<int64_t>()});
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{want["eos_token_id"].get<int64_t>()});
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
}

TEST_F(SmolLM2, TokenizerJsonMatchesTransformersConversion) {
  nlohmann::json want = read_json(gguf_reference() / "smollm2_tokenizer.json");
  const nlohmann::json& got = model_->tokenizer_json;
  EXPECT_EQ(got["normalizer"], want["normalizer"]);
  EXPECT_EQ(got["pre_tokenizer"], want["pre_tokenizer"]);
  EXPECT_EQ(got["decoder"], want["decoder"]);
  EXPECT_EQ(got["added_tokens"], want["added_tokens"]);
  EXPECT_EQ(got["post_processor"], want["post_processor"]);
  for (const char* key : {"type", "unk_token", "fuse_unk", "byte_fallback", "ignore_merges", "vocab", "merges"})
    EXPECT_EQ(got["model"][key], want["model"][key]) << key;
  const nlohmann::json& config = model_->tokenizer_config;
  EXPECT_EQ(config["bos_token"], "<|im_start|>");
  EXPECT_EQ(config["eos_token"], "<|im_end|>");
  EXPECT_EQ(config["add_bos_token"], false);
  EXPECT_NE(config["chat_template"].get<std::string>().find("<|im_start|>"), std::string::npos);
}

TEST_F(SmolLM2, TokenizerGivesTransformersIds) {
  nlohmann::json want = read_json(gguf_reference() / "smollm2_tokens.json");
  Tokenizer tokenizer = Tokenizer::from_json(model_->tokenizer_json, "gguf:" + *path_);
  for (size_t i = 0; i < want["texts"].size(); ++i) {
    std::string text = want["texts"][i];
    SCOPED_TRACE(nlohmann::json(text).dump());
    std::vector<int32_t> ids = tokenizer.encode(text, false);
    EXPECT_EQ(ids, want["ids"][i].get<std::vector<int32_t>>());
    EXPECT_EQ(tokenizer.encode(text, true), want["ids_with_specials"][i].get<std::vector<int32_t>>());
    EXPECT_EQ(tokenizer.decode(ids), want["decoded"][i].get<std::string>());
  }
}

TEST_F(SmolLM2, Bf16LoadEqualsFp32Rounded) {
  auto start = std::chrono::steady_clock::now();
  GgufModel bf16 = load_gguf_model(*path_, at::kBFloat16);
  std::printf("[ timing ] load_gguf_model(SmolLM2-135M Q4_1, bf16): %.3f s\n", seconds_since(start));
  for (const char* name : {"model.embed_tokens.weight", "model.layers.7.self_attn.k_proj.weight"})
    EXPECT_TRUE(at::equal(bf16.tensors.at(name), model_->tensors.at(name).to(at::kBFloat16))) << name;
}

TEST(GgufDefaultModel, ExplicitPathMustExist) {
  setenv("MNEMO_DEFAULT_MODEL", "/nonexistent.gguf", 1);
  EXPECT_THROW(default_model_path(), Error);
  unsetenv("MNEMO_DEFAULT_MODEL");
}

}  // namespace
}  // namespace mnemo

namespace mnemo {
namespace {

// A 2-layer llama GGUF written like convert_hf_to_gguf.py (q/k permuted, F32,
// F16 and Q8_0) with a SentencePiece-style tokenizer that has no merges.
class TinyLlama : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new GgufModel(load_gguf_model((gguf_reference() / "tiny_llama.gguf").string(), at::kFloat));
  }
  static void TearDownTestSuite() { delete model_; }
  static GgufModel* model_;
};
GgufModel* TinyLlama::model_ = nullptr;

TEST_F(TinyLlama, EveryTensorMatchesTransformers) {
  auto expected = SafetensorsFile::open((gguf_reference() / "tiny_llama_expected.safetensors").string());
  EXPECT_FALSE(model_->config.tie_word_embeddings);
  EXPECT_EQ(model_->tensors.size(), expected->entries().size());
  for (const SafetensorsEntry& entry : expected->entries()) {
    SCOPED_TRACE(entry.name);
    ASSERT_TRUE(model_->tensors.count(entry.name));
    at::Tensor want = expected->tensor(entry.name), got = model_->tensors.at(entry.name);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(at::allclose(got, want, 1e-6, 1e-7)) << (got - want).abs().max().item<float>();
  }
}

TEST_F(TinyLlama, ConfigMatchesTransformers) {
  nlohmann::json want = read_json(gguf_reference() / "tiny_llama_config.json");
  const ModelConfig& c = model_->config;
  EXPECT_EQ(c.vocab_size, want["vocab_size"].get<int64_t>());
  EXPECT_EQ(c.num_layers, want["num_hidden_layers"].get<int64_t>());
  EXPECT_EQ(c.num_key_value_heads, want["num_key_value_heads"].get<int64_t>());
  EXPECT_EQ(c.head_dim, want["head_dim"].get<int64_t>());
  EXPECT_EQ(c.max_position_embeddings, want["max_position_embeddings"].get<int64_t>());
  EXPECT_DOUBLE_EQ(c.rope_theta, 50000.0);
}

TEST_F(TinyLlama, SentencePieceTokenizerGivesTransformersIds) {
  nlohmann::json want_json = read_json(gguf_reference() / "tiny_llama_tokenizer.json");
  const nlohmann::json& got_json = model_->tokenizer_json;
  EXPECT_EQ(got_json["normalizer"], want_json["normalizer"]);
  EXPECT_EQ(got_json["decoder"], want_json["decoder"]);
  EXPECT_EQ(got_json["added_tokens"], want_json["added_tokens"]);
  EXPECT_EQ(got_json["model"]["vocab"], want_json["model"]["vocab"]);
  EXPECT_EQ(got_json["model"]["merges"], want_json["model"]["merges"]) << "merges built from scores differ";

  nlohmann::json want = read_json(gguf_reference() / "tiny_llama_tokens.json");
  Tokenizer tokenizer = Tokenizer::from_json(got_json, "gguf:tiny_llama.gguf");
  for (size_t i = 0; i < want["texts"].size(); ++i) {
    std::string text = want["texts"][i];
    SCOPED_TRACE(nlohmann::json(text).dump());
    std::vector<int32_t> ids = want["ids"][i].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer.encode(text, false), ids);
    // tokenizer.ggml.add_bos_token is true: Mnemo adds BOS as llama.cpp does
    // (transformers 5 ignores the key).
    ids.insert(ids.begin(), 1);
    EXPECT_EQ(tokenizer.encode(text, true), ids);
    EXPECT_EQ(tokenizer.decode(want["ids"][i].get<std::vector<int32_t>>()), want["decoded"][i].get<std::string>());
  }
  EXPECT_EQ(model_->tokenizer_config["bos_token"], "<s>");
  EXPECT_EQ(model_->tokenizer_config["add_bos_token"], true);
}

}  // namespace
}  // namespace mnemo

namespace mnemo {
namespace {

// Where the load time of the default model goes (printed, not asserted:
// timings belong in bench/, this only makes a regression visible in logs).
TEST(GgufTiming, DefaultModelBreakdown) {
  std::string path = default_model_path();
  auto start = std::chrono::steady_clock::now();
  auto file = GgufFile::open(path);
  double open_s = seconds_since(start);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    start = std::chrono::steady_clock::now();
    int64_t values = 0;
    for (const GgufTensorInfo& info : file->tensors()) values += file->dequantize(info, dtype).numel();
    double seconds = seconds_since(start);
    std::printf("[ timing ] dequantize all %zu tensors (%.1f M values) to %s: %.3f s (%.0f M values/s, %d threads)\n",
                file->tensors().size(), values / 1e6, c10::toString(dtype), seconds, values / 1e6 / seconds,
                at::get_num_threads());
  }
  start = std::chrono::steady_clock::now();
  nlohmann::json tokenizer = gguf_tokenizer_json(*file);
  double tokenizer_s = seconds_since(start);
  std::printf("[ timing ] open + metadata: %.3f s; tokenizer.json from metadata: %.3f s\n", open_s, tokenizer_s);
  EXPECT_EQ(tokenizer["model"]["vocab"].size(), 49152u);
}

}  // namespace
}  // namespace mnemo

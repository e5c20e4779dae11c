// Bad model input gives one clear error naming the file and what is wrong,
// never a crash or a silently wrong model.
#include "kernels/quantized_linear_cpu.h"
#include "model/config.h"
#include "model/error.h"
#include "model/kv_cache.h"
#include "model/model_loader.h"
#include "model/safetensors.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "support/errors.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <fstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

nlohmann::json tiny_config() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"vocab_size", 32},
          {"hidden_size", 16},
          {"intermediate_size", 24},
          {"num_hidden_layers", 1},
          {"num_attention_heads", 2},
          {"num_key_value_heads", 1},
          {"rms_norm_eps", 1e-5},
          {"tie_word_embeddings", true}};
}

std::map<std::string, at::Tensor> tiny_weights() {
  auto r = [](std::vector<int64_t> shape) { return at::randn(shape); };
  return {{"model.embed_tokens.weight", r({32, 16})},
          {"model.layers.0.input_layernorm.weight", r({16})},
          {"model.layers.0.self_attn.q_proj.weight", r({16, 16})},
          {"model.layers.0.self_attn.k_proj.weight", r({8, 16})},
          {"model.layers.0.self_attn.v_proj.weight", r({8, 16})},
          {"model.layers.0.self_attn.o_proj.weight", r({16, 16})},
          {"model.layers.0.post_attention_layernorm.weight", r({16})},
          {"model.layers.0.mlp.gate_proj.weight", r({24, 16})},
          {"model.layers.0.mlp.up_proj.weight", r({24, 16})},
          {"model.layers.0.mlp.down_proj.weight", r({16, 24})},
          {"model.norm.weight", r({16})}};
}

fs::path write_model(const std::string& name, const nlohmann::json& config,
                     const std::map<std::string, at::Tensor>& weights) {
  fs::path dir = testing::scratch_dir("model_loading/" + name);
  std::ofstream(dir / "config.json") << config.dump(2);
  write_safetensors((dir / "model.safetensors").string(), weights);
  return dir;
}

std::string load_error(const fs::path& dir) {
  return testing::error_of([&] { load_transformer(dir.string(), {}); });
}

TEST(ModelLoading, AWellFormedTinyModelLoadsAndRuns) {
  fs::path dir = write_model("good", tiny_config(), tiny_weights());
  auto model = load_transformer(dir.string(), {});
  EXPECT_EQ(model->config().num_layers, 1);
  EXPECT_EQ(model->config().head_dim, 8);
  SequenceCache cache(model->config(), 8, at::kFloat, at::kCPU);
  at::Tensor logits = model->forward({.tokens = {{1, 2, 3}}, .caches = {&cache}});
  EXPECT_EQ(logits.sizes().vec(), (std::vector<int64_t>{1, 32}));
  EXPECT_TRUE(at::isfinite(logits).all().item<bool>());
}

// Safetensors reads are zero-copy, but a loaded model owns its weights: a
// checkpoint rewritten in place (same inode, so a private mapping would see
// the new bytes) or truncated while a model runs changes nothing.
TEST(ModelLoading, ALoadedModelDoesNotChangeWhenItsFileIsRewrittenOrTruncated) {
  fs::path dir = write_model("rewritten", tiny_config(), tiny_weights());
  auto model = load_transformer(dir.string(), {});
  auto logits = [&] {
    SequenceCache cache(model->config(), 8, at::kFloat, at::kCPU);
    return model->forward({.tokens = {{1, 2, 3}}, .caches = {&cache}});
  };
  const at::Tensor before = logits();
  const fs::path file = dir / "model.safetensors";
  const auto size = fs::file_size(file);
  {
    std::fstream out(file, std::ios::in | std::ios::out | std::ios::binary);  // in place, no truncation
    out.seekp(static_cast<std::streamoff>(size / 2));
    const std::string zeros(size - size / 2, '\0');
    out.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  EXPECT_TRUE(logits().equal(before)) << "rewritten in place";
  fs::resize_file(file, 16);
  EXPECT_TRUE(logits().equal(before)) << "truncated";
}

TEST(ModelLoading, MissingTensorIsNamed) {
  auto weights = tiny_weights();
  weights.erase("model.layers.0.mlp.up_proj.weight");
  EXPECT_THAT(load_error(write_model("missing", tiny_config(), weights)),
              AllOf(HasSubstr("missing tensor"), HasSubstr("model.layers.0.mlp.up_proj.weight")));
}

TEST(ModelLoading, WrongShapeNamesTensorAndBothShapes) {
  auto weights = tiny_weights();
  weights["model.layers.0.self_attn.k_proj.weight"] = at::randn({16, 16});
  EXPECT_THAT(load_error(write_model("shape", tiny_config(), weights)),
              AllOf(HasSubstr("k_proj"), HasSubstr("[16, 16]"), HasSubstr("[8, 16]")));
}

TEST(ModelLoading, NonFloatTensorIsRejected) {
  auto weights = tiny_weights();
  weights["model.norm.weight"] = at::ones({16}, at::kLong);
  EXPECT_THAT(load_error(write_model("dtype", tiny_config(), weights)),
              AllOf(HasSubstr("model.norm.weight"), HasSubstr("floating")));
}

TEST(ModelLoading, UnexpectedTensorMeansWrongConfig) {
  auto weights = tiny_weights();
  weights["model.layers.0.self_attn.q_proj.bias"] = at::randn({16});
  EXPECT_THAT(load_error(write_model("extra", tiny_config(), weights)),
              AllOf(HasSubstr("unexpected tensor"), HasSubstr("q_proj.bias")));
}

TEST(ModelLoading, UnknownArchitectureIsNamed) {
  auto config = tiny_config();
  config["architectures"] = {"GPTNeoXForCausalLM"};
  EXPECT_THAT(load_error(write_model("arch", config, tiny_weights())),
              AllOf(HasSubstr("config.json"), HasSubstr("GPTNeoXForCausalLM"), HasSubstr("not supported")));
}

TEST(ModelLoading, MissingConfigFieldIsNamed) {
  auto config = tiny_config();
  config.erase("hidden_size");
  EXPECT_THAT(load_error(write_model("field", config, tiny_weights())),
              AllOf(HasSubstr("config.json"), HasSubstr("hidden_size")));
}

// These printed the JSON library's own message ("type must be boolean, but is
// string") with no file and no field.
TEST(ModelLoading, AConfigFieldOfTheWrongTypeIsNamed) {
  for (const auto& [field, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"tie_word_embeddings", "yes"}, {"hidden_act", 3}, {"mlp_bias", "no"}, {"attention_bias", 1}}) {
    nlohmann::json config = tiny_config();
    config[field] = value;
    fs::path dir = write_model("wrong_type", config, tiny_weights());
    EXPECT_THAT(load_error(dir), AllOf(HasSubstr("config.json"), HasSubstr("'" + field + "'"),
                                       HasSubstr(value.dump()), Not(HasSubstr("json.exception"))));
  }
}

TEST(ModelLoading, MalformedConfigJsonGivesTheByteOffset) {
  fs::path dir = write_model("badjson", tiny_config(), tiny_weights());
  std::ofstream(dir / "config.json") << "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 32,,}";
  EXPECT_THAT(load_error(dir), AllOf(HasSubstr("config.json"), HasSubstr("not valid JSON at byte offset")));
}

TEST(Safetensors, TruncatedFileNamesTheTensorAndOffset) {
  fs::path dir = write_model("truncated", tiny_config(), tiny_weights());
  fs::path file = dir / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) - 100);
  EXPECT_THAT(load_error(dir), AllOf(HasSubstr("model.safetensors"), HasSubstr("truncated"), HasSubstr("tensor '")));
}

TEST(Safetensors, HeaderLengthLargerThanTheFile) {
  fs::path dir = write_model("header", tiny_config(), tiny_weights());
  fs::path file = dir / "model.safetensors";
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  const unsigned char huge[8] = {0, 0, 0, 0, 0, 1, 0, 0};
  stream.write(reinterpret_cast<const char*>(huge), 8);
  stream.close();
  EXPECT_THAT(load_error(dir), AllOf(HasSubstr("header length"), HasSubstr("larger than the file")));
}

TEST(Safetensors, FileShorterThanTheLengthField) {
  fs::path dir = write_model("tiny", tiny_config(), tiny_weights());
  std::ofstream(dir / "model.safetensors", std::ios::binary) << "abc";
  EXPECT_THAT(load_error(dir), AllOf(HasSubstr("model.safetensors"), HasSubstr("truncated")));
}

TEST(Safetensors, CorruptHeaderJson) {
  fs::path dir = write_model("corrupt", tiny_config(), tiny_weights());
  fs::path file = dir / "model.safetensors";
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  stream.seekp(12);
  stream.write("\x01\x02\x03", 3);
  stream.close();
  EXPECT_THAT(load_error(dir), AllOf(HasSubstr("model.safetensors"), HasSubstr("the header: not valid JSON at byte offset")));
}

// A safetensors file with a hand-written header and `data_bytes` zero bytes.
std::string write_raw_safetensors(const std::string& name, const nlohmann::json& header, size_t data_bytes) {
  std::string path = (testing::scratch_dir("safetensors_raw") / (name + ".safetensors")).string();
  std::string text = header.dump();
  std::ofstream out(path, std::ios::binary);
  uint64_t length = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((length >> (8 * i)) & 0xff));
  out << text << std::string(data_bytes, '\0');
  return path;
}

std::string open_error(const std::string& path) {
  return testing::error_of([&] { SafetensorsFile::open(path); });
}

// What a hostile-input probe got past the reader: sizes that overflow, tensors
// that alias each other's bytes, names given twice, bytes hidden in a gap.
TEST(Safetensors, HostileHeadersAreRefusedNamingTheTensor) {
  using nlohmann::json;
  auto entry = [](std::vector<int64_t> shape, uint64_t begin, uint64_t end) {
    return json{{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {begin, end}}};
  };
  // [2^62, 4] F32 is 2^66 bytes: it wrapped to 0 and passed with no data.
  EXPECT_THAT(open_error(write_raw_safetensors("overflow", {{"w", entry({int64_t{1} << 62, 4}, 0, 0)}}, 0)),
              AllOf(HasSubstr("overflow.safetensors"), HasSubstr("tensor 'w'"), HasSubstr("more than 2^64 bytes")));
  // [2^40, 2^40] was reported as "0 elements".
  EXPECT_THAT(open_error(write_raw_safetensors("square", {{"w", entry({int64_t{1} << 40, int64_t{1} << 40}, 0, 8)}}, 8)),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("more than 2^64 bytes")));
  EXPECT_THAT(open_error(write_raw_safetensors("overlap", {{"a", entry({4}, 0, 16)}, {"b", entry({4}, 8, 24)}}, 24)),
              AllOf(HasSubstr("tensor 'b'"), HasSubstr("overlap tensor 'a'")));
  EXPECT_THAT(open_error(write_raw_safetensors("hole", {{"a", entry({2}, 0, 8)}, {"b", entry({2}, 16, 24)}}, 24)),
              AllOf(HasSubstr("tensor 'b'"), HasSubstr("hole")));
  EXPECT_THAT(open_error(write_raw_safetensors("trailing", {{"a", entry({2}, 0, 8)}}, 16)),
              HasSubstr("trailing bytes"));
  // nlohmann::json keeps one of two equal keys, so write the header by hand.
  std::string path = (testing::scratch_dir("safetensors_duplicate") / "dup.safetensors").string();
  {
    std::string text = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
    std::ofstream out(path, std::ios::binary);
    uint64_t length = text.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((length >> (8 * i)) & 0xff));
    out << text << std::string(16, '\0');
  }
  EXPECT_THAT(open_error(path), AllOf(HasSubstr("tensor 'a' appears twice")));
}

TEST(Safetensors, OnlyRegularFilesAreRead) {
  fs::path dir = testing::scratch_dir("safetensors_fifo");
  const std::string fifo = (dir / "x.safetensors").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(open_error(fifo), HasSubstr("not a regular file"));  // rather than wait for a writer forever
  EXPECT_THAT(testing::error_of([&] { read_safetensors_metadata(fifo); }), HasSubstr("not a regular file"));
}

TEST(Safetensors, RoundTripKeepsValuesDtypesAndMetadata) {
  fs::path dir = testing::scratch_dir("safetensors_roundtrip");
  std::map<std::string, at::Tensor> tensors = {{"a", at::randn({3, 5})},
                                               {"b", at::randn({7}).to(at::kBFloat16)},
                                               {"c", at::arange(6, at::kLong).view({2, 3})}};
  std::string path = (dir / "x.safetensors").string();
  write_safetensors(path, tensors, {{"mnemo.user", "alice"}});
  auto file = SafetensorsFile::open(path);
  for (const auto& [name, tensor] : tensors) EXPECT_TRUE(at::equal(file->tensor(name), tensor)) << name;
  EXPECT_EQ(file->metadata().at("mnemo.user"), "alice");
  EXPECT_EQ(read_safetensors_metadata(path).at("mnemo.user"), "alice");
}

TEST(ModelLoading, UnknownDtypeAndDeviceAreRejected) {
  fs::path dir = write_model("options", tiny_config(), tiny_weights());
  EXPECT_THROW(load_transformer(dir.string(), {.dtype = "int8"}), Error);
  EXPECT_THROW(load_transformer(dir.string(), {.device = "tpu"}), Error);
  EXPECT_THAT(testing::error_of([&] { load_transformer(dir.string(), {.quant = "int3"}); }),
              HasSubstr("unknown quantization 'int3'"));
  EXPECT_THAT(testing::error_of([&] { load_transformer(dir.string(), {.dtype = "bfloat16", .quant = "int8"}); }),
              HasSubstr("for the CPU with float32"));
  // Rows of 16 values cannot form blocks of 32: the error names the tensor.
  EXPECT_THAT(testing::error_of([&] { load_transformer(dir.string(), {.quant = "int4"}); }),
              AllOf(HasSubstr("model_loading/options"), HasSubstr("model.embed_tokens.weight"),
                    HasSubstr("multiple of 32")));
}

// A model loaded with int8/int4 weights computes what the float32 model
// whose weights are the dequantized values computes (the kernel's own
// tests cover the products; this covers the loader, the embedding lookup,
// the tied head and every projection of the forward pass).
TEST(ModelLoading, AQuantizedModelRunsItsDequantizedWeights) {
  nlohmann::json config = tiny_config();
  config["hidden_size"] = 64;
  config["intermediate_size"] = 96;
  config["num_attention_heads"] = 2;
  config["num_key_value_heads"] = 1;
  auto r = [](std::vector<int64_t> shape) { return at::randn(shape) * 0.2; };
  at::manual_seed(5);
  const std::map<std::string, at::Tensor> weights = {
      {"model.embed_tokens.weight", r({32, 64})},
      {"model.layers.0.input_layernorm.weight", r({64}) + 1},
      {"model.layers.0.self_attn.q_proj.weight", r({64, 64})},
      {"model.layers.0.self_attn.k_proj.weight", r({32, 64})},
      {"model.layers.0.self_attn.v_proj.weight", r({32, 64})},
      {"model.layers.0.self_attn.o_proj.weight", r({64, 64})},
      {"model.layers.0.post_attention_layernorm.weight", r({64}) + 1},
      {"model.layers.0.mlp.gate_proj.weight", r({96, 64})},
      {"model.layers.0.mlp.up_proj.weight", r({96, 64})},
      {"model.layers.0.mlp.down_proj.weight", r({64, 96})},
      {"model.norm.weight", r({64}) + 1}};
  fs::path dir = write_model("quantized", config, weights);
  auto logits = [](const Transformer& model, std::vector<int32_t> tokens) {
    c10::InferenceMode inference;
    SequenceCache cache(model.config(), 16, at::kFloat, at::kCPU);
    at::Tensor prefill = model.forward({.tokens = {tokens}, .caches = {&cache}, .all_logits = true});
    at::Tensor step = model.forward({.tokens = {{5}}, .caches = {&cache}});  // one decode row
    return at::cat({prefill, step}, 0);
  };
  for (const char* quant : {"int8", "int4"}) {
    auto model = load_transformer(dir.string(), {.quant = quant});
    EXPECT_EQ(model->weights().quant, parse_weight_quant(quant));
    EXPECT_EQ(model->weights().embedding_quant, WeightQuant::kInt8) << "int4 keeps the embedding in int8";
    EXPECT_EQ(model->dtype(), at::kFloat);
    std::map<std::string, at::Tensor> dequantized = weights;
    for (auto& [name, tensor] : dequantized)
      if (const WeightQuant packing = weight_quant_for(name, parse_weight_quant(quant)); packing != WeightQuant::kNone)
        tensor = dequantize_weight(quantize_weight(tensor, packing), packing, tensor.size(1));
    auto reference = load_transformer(write_model(std::string("dequantized_") + quant, config, dequantized).string(), {});
    auto plain = load_transformer(dir.string(), {});
    at::Tensor got = logits(*model, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20});
    at::Tensor want = logits(*reference, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20});
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-4) << quant;
    // ...and differs from the float32 model by what quantization costs, not nothing.
    at::Tensor full = logits(*plain, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20});
    EXPECT_GT((got - full).abs().max().item<double>(), 1e-4) << quant;
    EXPECT_THAT(testing::error_of([&] { named_weights(model->config(), model->weights()); }),
                HasSubstr("only float weights"));
  }
}

}  // namespace
}  // namespace mnemo

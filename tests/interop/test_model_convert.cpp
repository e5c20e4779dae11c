// `mnemo model convert` turns the default GGUF into a Hugging Face directory
// that transformers loads and that computes the same logits (and token ids)
// as transformers' own GGUF loader and as mnemo.
#include "model/safetensors.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

std::vector<int64_t> tensor_ids(const SafetensorsFile& file, const std::string& name) {
  at::Tensor t = file.tensor(name).to(at::kLong);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

TEST(ModelConvert, DefaultGgufConvertsToADirectoryTransformersLoadsWithTheSameLogits) {
  fs::path out = testing::scratch_dir("model_convert") / "smollm2";
  std::string convert = testing::mnemo_binary() + " model convert default " + out.string();
  ASSERT_EQ(std::system(convert.c_str()), 0) << convert;
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(out / file)) << file;

  auto reference = SafetensorsFile::open((testing::reference_dir() / "default_model" / "expected.safetensors").string());
  std::ifstream in(testing::reference_dir() / "default_model" / "expected.json");
  nlohmann::json expected = nlohmann::json::parse(in);
  nlohmann::json prompts = nlohmann::json::array();
  for (int i = 0; i < 2; ++i) prompts.push_back(tensor_ids(*reference, "prompt_" + std::to_string(i)));
  nlohmann::json texts = nlohmann::json::array();
  for (int i = 0; i < 20; ++i) texts.push_back(expected["strings"][i]);
  fs::path prompts_file = out.parent_path() / "prompts.json", texts_file = out.parent_path() / "texts.json";
  std::ofstream(prompts_file) << prompts.dump();
  std::ofstream(texts_file) << texts.dump();
  fs::path logits_file = out.parent_path() / "logits.safetensors";
  std::string python = testing::env_or_empty("MNEMO_PYTHON") + " " + testing::env_or_empty("MNEMO_SOURCE_DIR") +
                       "/scripts/hf_logits.py --model " + out.string() + " --prompts \"$(cat " +
                       prompts_file.string() + ")\" --texts \"$(cat " + texts_file.string() + ")\" --out " +
                       logits_file.string();
  ASSERT_EQ(std::system(python.c_str()), 0) << python;

  auto converted = SafetensorsFile::open(logits_file.string());
  for (int i = 0; i < 2; ++i) {
    std::string name = "logits_" + std::to_string(i);
    double diff = (converted->tensor(name) - reference->tensor(name)).abs().max().item<double>();
    std::printf("prompt %d: converted dir vs transformers' GGUF loader: max |logit diff| = %.3g\n", i, diff);
    EXPECT_LT(diff, 1e-4) << name;
  }
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(tensor_ids(*converted, "ids_" + std::to_string(i)), expected["ids"][i].get<std::vector<int64_t>>())
        << expected["strings"][i];
}

TEST(ModelConvert, RefusesToOverwriteWithoutForce) {
  fs::path out = testing::scratch_dir("model_convert_exists");
  std::string convert = testing::mnemo_binary() + " model convert default " + out.string() + " 2>/dev/null";
  int status = std::system(convert.c_str());
  EXPECT_NE(status, 0);
  EXPECT_TRUE(fs::is_empty(out));
}

}  // namespace
}  // namespace mnemo

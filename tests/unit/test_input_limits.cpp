// Every reader of other people's files and requests has explicit limits, so a
// hostile input cannot make the process allocate or recurse without bound;
// an input one past a limit is refused with the limit and the offending value
// in the message, and one at the limit is still read. The GGUF reader's limits
// are tested with its byte-level builder in test_gguf.cpp, the prompt file's
// in test_generate_cli.cpp.
#include "adapters/lora_adapter.h"
#include "eval/interaction_log.h"
#include "eval/question.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "serve/openai_api.h"
#include "serve/serve_config.h"
#include "support/errors.h"
#include "support/reference.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/json_input.h"
#include "tokenizer/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

fs::path write_file(const std::string& name, const std::string& text) {
  fs::path path = testing::scratch_dir("input_limits") / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// A file of `bytes` bytes that starts with `text` (the rest sparse zeros):
// big enough to pass any "fits in the file" check, cheap to make.
fs::path write_sized_file(const std::string& name, const std::string& text, uint64_t bytes) {
  fs::path path = write_file(name, text);
  fs::resize_file(path, bytes);
  return path;
}

TEST(JsonInput, NestingOnePastTheLimitIsRefusedEvenAMillionDeep) {
  const JsonLimits limits{4 << 20, 32, 1 << 20};
  EXPECT_EQ(parse_json_input(nested_arrays(32), "in", limits).dump(), nested_arrays(32));
  EXPECT_THAT(error_of([&] { parse_json_input(nested_arrays(33), "in", limits); }),
              HasSubstr("in: arrays and objects nested 33 deep, more than the limit of 32"));
  // Deep enough to overflow the stack of anything that recurses per level.
  EXPECT_THAT(error_of([&] { parse_json_input(std::string(1'000'000, '['), "in", limits); }),
              HasSubstr("nested 33 deep"));
  EXPECT_THAT(error_of([&] { parse_json_input(std::string(100'000, '{') , "in", limits); }),
              HasSubstr("not valid JSON at byte offset"));
  std::string objects;
  for (int i = 0; i < 40; ++i) objects += "{\"a\":";
  objects += "1" + std::string(40, '}');
  EXPECT_THAT(error_of([&] { parse_json_input(objects, "in", limits); }), HasSubstr("nested 33 deep"));
}

TEST(JsonInput, StringKeyAndSizeLimitsNameTheLimitAndTheValue) {
  const JsonLimits limits{4096, 32, 1024};
  const std::string at_limit(1024, 'a'), over(1025, 'a');
  EXPECT_NO_THROW(parse_json_input("{\"" + at_limit + "\": \"" + at_limit + "\"}", "in", limits));
  EXPECT_THAT(error_of([&] { parse_json_input("[\"" + over + "\"]", "in", limits); }),
              HasSubstr("in: a string of 1025 bytes, more than the limit of 1 KiB"));
  EXPECT_THAT(error_of([&] { parse_json_input("{\"" + over + "\": 1}", "in", limits); }),
              HasSubstr("in: a key of 1025 bytes, more than the limit of 1 KiB"));
  EXPECT_THAT(error_of([&] { parse_json_input(std::string(4097, ' ') + "1", "in", limits); }),
              HasSubstr("in: 4098 bytes of JSON, more than the limit of 4 KiB"));
}

TEST(JsonInput, FilesAreCheckedForSizeAndKindBeforeBeingRead) {
  const JsonLimits limits{1 << 20, 32, 1 << 20};
  const fs::path big = write_sized_file("big.json", "{}", (1 << 20) + 1);
  EXPECT_THAT(error_of([&] { read_json_file(big.string(), "test file", limits); }),
              AllOf(HasSubstr(big.string()), HasSubstr("the test file is 1048577 bytes, more than the limit of 1 MiB")));
  const fs::path fifo = testing::scratch_dir("input_limits") / "fifo.json";
  fs::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(error_of([&] { read_json_file(fifo.string(), "test file", limits); }),
              HasSubstr("the test file is not a regular file"));
  EXPECT_EQ(read_json_file(write_file("ok.json", "{\"a\": [1]}").string(), "test file", limits)["a"][0], 1);
}

// A tokenizer.json with `vocab` and `merges` and nothing else.
nlohmann::json tokenizer_json(nlohmann::json vocab, nlohmann::json merges) {
  return {{"model", {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}}}};
}

TEST(TokenizerLimits, FileSizeNestingVocabularyAndMerges) {
  const fs::path big = write_sized_file("tokenizer.json", "{}", kMaxTokenizerFileBytes + 1);
  EXPECT_THAT(error_of([&] { Tokenizer::from_file(big.string()); }),
              HasSubstr("is 134217729 bytes, more than the limit of 128 MiB"));

  nlohmann::json deep = tokenizer_json({{"a", 0}}, nlohmann::json::array());
  std::string text = deep.dump();
  text.insert(text.size() - 1, ",\"extra\":" + nested_arrays(70));
  EXPECT_THAT(error_of([&] { Tokenizer::from_file(write_file("deep.json", text).string()); }),
              HasSubstr("nested 65 deep, more than the limit of 64"));

  nlohmann::json vocab = nlohmann::json::object();
  for (int64_t i = 0; i <= kMaxVocabulary; ++i) vocab[std::to_string(i)] = i;
  EXPECT_THAT(error_of([&] { Tokenizer::from_json(tokenizer_json(std::move(vocab), nlohmann::json::array()), "t"); }),
              HasSubstr("model.vocab: 2097153 tokens, more than the limit of 2097152"));

  nlohmann::json merges(nlohmann::json::value_t::array);
  merges.get_ref<nlohmann::json::array_t&>().resize(kMaxMerges + 1);
  EXPECT_THAT(error_of([&] { Tokenizer::from_json(tokenizer_json({{"a", 0}}, std::move(merges)), "t"); }),
              HasSubstr("model.merges: 4194305 merges, more than the limit of 4194304"));
}

TEST(TokenizerLimits, TokenizerConfigSizeAndShape) {
  const fs::path big = write_sized_file("tokenizer_config.json", "{}", (16 << 20) + 1);
  EXPECT_THAT(error_of([&] { ChatTemplate::from_tokenizer_config(big.string()); }),
              HasSubstr("is 16777217 bytes, more than the limit of 16 MiB"));
  const fs::path odd = write_file("odd_config.json", R"({"chat_template": [1]})");
  EXPECT_THAT(error_of([&] { ChatTemplate::from_tokenizer_config(odd.string()); }),
              HasSubstr("chat_template[0]: expected {\"name\": string, \"template\": string}"));
}

TEST(ModelConfigLimits, ConfigJsonSize) {
  const fs::path big = write_sized_file("config.json", "{}", (4 << 20) + 1);
  EXPECT_THAT(error_of([&] { load_model_config(big.string()); }),
              AllOf(HasSubstr("config.json"), HasSubstr("is 4194305 bytes, more than the limit of 4 MiB")));
}

// A safetensors file: the 8-byte length, `header` as given, `data_bytes` zeros.
fs::path write_safetensors_file(const std::string& name, const std::string& header, uint64_t data_bytes = 0) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return write_sized_file(name, bytes + header, 8 + header.size() + data_bytes);
}

TEST(SafetensorsLimits, HeaderLengthTensorCountDimensionsAndNesting) {
  // A header length the file could hold, one byte over the limit.
  std::string length_only(8, '\0');
  const uint64_t over = (100ull << 20) + 1;
  for (int i = 0; i < 8; ++i) length_only[i] = static_cast<char>((over >> (8 * i)) & 0xff);
  const fs::path big = write_sized_file("big.safetensors", length_only, 8 + over);
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(big.string()); }),
              HasSubstr("header length 104857601 at byte offset 0 is more than the limit of 100 MiB"));
  EXPECT_THAT(error_of([&] { read_safetensors_metadata(big.string()); }),
              HasSubstr("is more than the limit of 100 MiB"));

  std::string many = "{";
  for (int i = 0; i <= (1 << 20); ++i) many += fmt::format("{}\"t{}\":0", i ? "," : "", i);
  many += "}";
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(write_safetensors_file("many.safetensors", many).string()); }),
              HasSubstr("the header lists more than 1048576 tensors, the limit"));

  const nlohmann::json dims = {
      {"t", {{"dtype", "F32"}, {"shape", std::vector<int>(17, 1)}, {"data_offsets", {0, 4}}}}};
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(write_safetensors_file("dims.safetensors", dims.dump(), 4).string()); }),
              HasSubstr("tensor 't': 17 dimensions, more than the limit of 16"));
  const nlohmann::json sixteen = {
      {"t", {{"dtype", "F32"}, {"shape", std::vector<int>(16, 1)}, {"data_offsets", {0, 4}}}}};
  EXPECT_EQ(SafetensorsFile::open(write_safetensors_file("sixteen.safetensors", sixteen.dump(), 4).string())
                ->tensor("t")
                .dim(),
            16);

  const std::string deep = "{\"__metadata__\": {\"a\": " + nested_arrays(9) + "}}";
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(write_safetensors_file("deep.safetensors", deep).string()); }),
              HasSubstr("nested 9 deep, more than the limit of 8"));
}

TEST(AdapterLimits, AdapterConfigSize) {
  const fs::path config = write_sized_file("adapter_config.json", "{}", (1 << 20) + 1);
  EXPECT_THAT(error_of([&] { read_peft_adapter_files(config.string(), (config.parent_path() / "none").string()); }),
              HasSubstr("is 1048577 bytes, more than the limit of 1 MiB"));
}

std::string log_line(const nlohmann::json& messages) {
  return nlohmann::json{{"user", "alice"}, {"conversation_id", "c"}, {"timestamp", "2026-11-20T18:02:00Z"},
                        {"messages", messages}}
      .dump();
}

TEST(LogLimits, LineMessagesAndContent) {
  const std::string good = log_line({{{"role", "user"}, {"content", "hi"}}});
  const fs::path file = write_file("logs.jsonl", std::string(kMaxLogLineBytes + 1, 'x') + "\n" + good + "\n");
  EXPECT_THAT(error_of([&] { read_interaction_logs(file.string()); }),
              HasSubstr(file.string() + ":1: the line is 16777217 bytes, more than the limit of 16 MiB"));
  InteractionLogs skipped = read_interaction_logs(file.string(), BadRecordPolicy::Skip);
  EXPECT_EQ(skipped.n_records, 1);  // the reader goes on after the long line
  EXPECT_EQ(skipped.n_skipped, 1);

  nlohmann::json many = nlohmann::json::array();
  for (size_t i = 0; i <= kMaxMessagesPerRecord; ++i) many.push_back({{"role", "user"}, {"content", "hi"}});
  EXPECT_THAT(error_of([&] { parse_log_record(log_line(many), "f", 3); }),
              HasSubstr("f:3: field \"messages\" holds 4097 messages, more than the limit of 4096"));
  const std::string long_content(kMaxMessageBytes + 1, 'a');
  EXPECT_THAT(error_of([&] { parse_log_record(log_line({{{"role", "user"}, {"content", long_content}}}), "f", 4); }),
              HasSubstr("f:4: messages[0]: \"content\" is 1048577 bytes, more than the limit of 1 MiB"));
  const std::string at_limit(kMaxMessageBytes, 'a');
  EXPECT_EQ(parse_log_record(log_line({{{"role", "user"}, {"content", at_limit}}}), "f", 5).messages.size(), 1u);
}

TEST(QuestionLimits, LineLength) {
  const fs::path file = write_file("questions.jsonl", std::string(kMaxQuestionLineBytes + 1, ' ') + "{}\n");
  EXPECT_THAT(error_of([&] { read_questions(file.string()); }),
              HasSubstr(":1: the line is 1048579 bytes, more than the limit of 1 MiB for a question"));
}

// The ApiError a body gets, as "STATUS message".
std::string api_error_of(const std::string& body, bool chat) {
  ServeConfig config;
  try {
    parse_completion_call(body, chat, config);
  } catch (const ApiError& e) {
    return fmt::format("{} {}", e.status, e.what());
  }
  return "(no error)";
}

TEST(RequestBodyLimits, NestingAndMessageCount) {
  EXPECT_THAT(api_error_of(R"({"model": "mnemo", "prompt": "hi", "x": )" + nested_arrays(40) + "}", false),
              HasSubstr("400 the body: arrays and objects nested 33 deep, more than the limit of 32"));
  nlohmann::json body = {{"model", "mnemo"}, {"messages", nlohmann::json::array()}};
  for (size_t i = 0; i <= kMaxChatMessages; ++i) body["messages"].push_back({{"role", "user"}, {"content", "hi"}});
  EXPECT_THAT(api_error_of(body.dump(), true), HasSubstr("400 'messages' holds 4097 messages, more than the limit of 4096"));
  body["messages"].erase(body["messages"].size() - 1);
  EXPECT_EQ(api_error_of(body.dump(), true), "(no error)");
}

}  // namespace
}  // namespace mnemo

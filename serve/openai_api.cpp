#include "serve/openai_api.h"

#include "model/error.h"
#include "serve/serve_config.h"
#include "tokenizer/json_input.h"

#include <fmt/format.h>

#include <random>

namespace mnemo {

using nlohmann::json;

namespace {

const char* error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param, "invalid_value");
}

// Typed readers: a present field of the wrong type is a 400 naming it.
std::optional<double> number_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) bad(name, fmt::format("'{}' must be a number", name));
  return it->get<double>();
}

std::optional<int64_t> integer_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) bad(name, fmt::format("'{}' must be an integer", name));
  return it->get<int64_t>();
}

std::optional<bool> bool_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) bad(name, fmt::format("'{}' must be a boolean", name));
  return it->get<bool>();
}

std::string text_of_content(const json& content, size_t index) {
  const std::string param = fmt::format("messages[{}].content", index);
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad(param, fmt::format("'{}' must be a string or a list of text parts", param));
  std::string text;
  for (const json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      bad(param, fmt::format("'{}' may hold only text parts ({{\"type\": \"text\", \"text\": …}})", param));
    text += part["text"].get<std::string>();
  }
  return text;
}

// Fields that would change the result and that this server does not do:
// refused rather than silently ignored.
void refuse_unsupported(const json& body) {
  auto present = [&](const char* name) { return body.contains(name) && !body[name].is_null(); };
  if (present("logprobs") && !(body["logprobs"].is_boolean() && !body["logprobs"].get<bool>()))
    bad("logprobs", "'logprobs' is not supported");
  if (present("top_logprobs")) bad("top_logprobs", "'top_logprobs' is not supported");
  if (present("echo") && body["echo"] != false) bad("echo", "'echo' is not supported");
  if (present("best_of") && body["best_of"] != 1) bad("best_of", "'best_of' other than 1 is not supported");
  if (present("suffix") && body["suffix"] != "") bad("suffix", "'suffix' is not supported");
  if (present("logit_bias") && !body["logit_bias"].empty()) bad("logit_bias", "'logit_bias' is not supported");
  for (const char* penalty : {"presence_penalty", "frequency_penalty"})
    if (present(penalty) && (!body[penalty].is_number() || body[penalty].get<double>() != 0.0))
      bad(penalty, fmt::format("'{}' other than 0 is not supported", penalty));
  if (present("response_format") &&
      !(body["response_format"].is_object() && body["response_format"].value("type", "") == "text"))
    bad("response_format", "'response_format' other than text is not supported");
  for (const char* tools : {"tools", "functions", "tool_choice", "function_call"})
    if (present(tools) && !(body[tools].is_array() && body[tools].empty()) && body[tools] != "none")
      bad(tools, fmt::format("'{}' is not supported", tools));
}

}  // namespace

json error_body(int status, const std::string& message, const std::string& param, const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", error_type(status)},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

json parse_json_object(const std::string& text) {
  // The body's size is bounded by the server (limits.body_bytes); nesting
  // deeper than any OpenAI request would be is refused.
  json body;
  try {
    body = parse_json_input(text, "the body", JsonLimits{text.size(), kMaxBodyNesting, text.size()});
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "", "invalid_json");
  }
  if (!body.is_object()) throw ApiError(400, "the body must be a JSON object", "", "invalid_json");
  try {
    (void)body.dump();  // a strict dump checks every string's UTF-8
  } catch (const json::type_error&) {
    throw ApiError(400, "the body holds a string that is not valid UTF-8", "", "invalid_utf8");
  }
  return body;
}

CompletionCall parse_completion_call(const std::string& text, bool chat, const ServeConfig& config) {
  const json body = parse_json_object(text);
  CompletionCall call;
  call.chat = chat;

  auto model = body.find("model");
  if (model == body.end() || !model->is_string()) bad("model", "'model' is required and must be a string");
  call.model = model->get<std::string>();
  if (call.model != config.served_model_name)
    throw ApiError(404, fmt::format("The model '{}' does not exist", call.model), "model", "model_not_found");

  if (auto n = integer_field(body, "n"); n && *n != 1) bad("n", "only n = 1 is supported");
  refuse_unsupported(body);

  EngineRequest& request = call.request;
  if (chat) {
    auto messages = body.find("messages");
    if (messages == body.end() || !messages->is_array())
      bad("messages", "'messages' is required and must be a list");
    if (messages->empty()) bad("messages", "'messages' must not be empty");
    if (messages->size() > kMaxChatMessages)
      bad("messages", fmt::format("'messages' holds {} messages, more than the limit of {}", messages->size(),
                                  kMaxChatMessages));
    for (size_t i = 0; i < messages->size(); ++i) {
      const json& message = (*messages)[i];
      if (!message.is_object() || !message.contains("role") || !message["role"].is_string())
        bad(fmt::format("messages[{}]", i), fmt::format("messages[{}] needs a string 'role'", i));
      const std::string role = message["role"].get<std::string>();
      if (role != "system" && role != "user" && role != "assistant" && role != "developer")
        bad(fmt::format("messages[{}].role", i),
            fmt::format("messages[{}].role must be system, developer, user or assistant, not '{}'", i, role));
      if (!message.contains("content") || message["content"].is_null())
        bad(fmt::format("messages[{}].content", i), fmt::format("messages[{}] needs 'content'", i));
      request.messages.push_back({role == "developer" ? "system" : role, text_of_content(message["content"], i)});
    }
  } else {
    auto prompt = body.find("prompt");
    if (prompt == body.end()) bad("prompt", "'prompt' is required");
    // A string, a list of one string, or token ids (a list of integers, or a list of one such list).
    const json* one = &*prompt;
    if (one->is_array() && one->size() == 1 && ((*one)[0].is_string() || (*one)[0].is_array())) one = &(*one)[0];
    if (one->is_string()) {
      if (one->get<std::string>().empty()) bad("prompt", "'prompt' must not be empty");
      call.prompt_text = one->get<std::string>();
    } else if (one->is_array() && !one->empty()) {
      for (const json& id : *one) {
        if (!id.is_number_integer()) bad("prompt", "'prompt' must be a string or a list of token ids");
        request.prompt.push_back(static_cast<int32_t>(std::clamp<int64_t>(id.get<int64_t>(), -1, INT32_MAX)));
      }
    } else {
      bad("prompt", "'prompt' must be a non-empty string or list of token ids (one prompt: n and batches are not supported)");
    }
  }

  std::optional<int64_t> max_tokens = integer_field(body, "max_tokens");
  if (auto other = integer_field(body, "max_completion_tokens")) max_tokens = other;
  const int64_t limit = config.max_tokens_limit;
  if (max_tokens && (*max_tokens < 1 || *max_tokens > limit))
    bad(body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens",
        fmt::format("max tokens must be 1..{}, got {}", limit, *max_tokens));
  request.params.max_new_tokens = max_tokens.value_or(chat ? config.default_chat_max_tokens : 16);

  SamplingParams& sampling = request.params.sampling;
  sampling.temperature = number_field(body, "temperature").value_or(1.0);
  if (!(sampling.temperature >= 0.0 && sampling.temperature <= 2.0))
    bad("temperature", "'temperature' must be between 0 and 2");
  sampling.top_p = number_field(body, "top_p").value_or(1.0);
  if (!(sampling.top_p > 0.0 && sampling.top_p <= 1.0)) bad("top_p", "'top_p' must be in (0, 1]");
  if (auto seed = integer_field(body, "seed")) {
    sampling.seed = static_cast<uint64_t>(*seed);
  } else {
    sampling.seed = std::random_device{}();
  }

  if (auto stop = body.find("stop"); stop != body.end() && !stop->is_null()) {
    if (stop->is_string()) {
      request.params.stop_strings.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= 4) {
      for (const json& s : *stop) {
        if (!s.is_string()) bad("stop", "'stop' must be a string or a list of up to 4 strings");
        request.params.stop_strings.push_back(s.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or a list of up to 4 strings");
    }
    for (const std::string& s : request.params.stop_strings)
      if (s.empty()) bad("stop", "'stop' strings must not be empty");
  }

  // vLLM's extension: run to max_tokens whatever the model's end-of-turn says.
  if (bool_field(body, "ignore_eos").value_or(false)) request.params.stop_token_ids = {-1};

  call.stream = bool_field(body, "stream").value_or(false);
  if (auto options = body.find("stream_options"); options != body.end() && !options->is_null()) {
    if (!options->is_object()) bad("stream_options", "'stream_options' must be an object");
    call.include_usage = bool_field(*options, "include_usage").value_or(false);
  }
  if (auto user = body.find("user"); user != body.end() && !user->is_null()) {
    if (!user->is_string()) bad("user", "'user' must be a string");
    call.end_user = user->get<std::string>();
  }
  return call;
}

std::string system_fingerprint(const std::string& user, std::optional<int64_t> adapter_version) {
  return adapter_version ? fmt::format("mnemo-{}-v{}", user, *adapter_version) : "mnemo-base";
}

json completion_response(const CompletionCall& call, const CompletionResult& result) {
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", result.finish_reason}};
  if (call.chat)
    choice["message"] = {{"role", "assistant"}, {"content", result.text}};
  else
    choice["text"] = result.text;
  return {{"id", result.id},
          {"object", call.chat ? "chat.completion" : "text_completion"},
          {"created", result.created},
          {"model", call.model},
          {"system_fingerprint", result.fingerprint},
          {"choices", json::array({choice})},
          {"usage",
           {{"prompt_tokens", result.prompt_tokens},
            {"completion_tokens", result.completion_tokens},
            {"total_tokens", result.prompt_tokens + result.completion_tokens}}}};
}

json completion_chunk(const CompletionCall& call, const CompletionResult& result, const std::string& text,
                      const std::string& finish_reason, bool first) {
  json choice = {{"index", 0},
                 {"logprobs", nullptr},
                 {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}};
  if (call.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (finish_reason.empty()) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  return {{"id", result.id},
          {"object", call.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", result.created},
          {"model", call.model},
          {"system_fingerprint", result.fingerprint},
          {"choices", json::array({choice})}};
}

json usage_chunk(const CompletionCall& call, const CompletionResult& result) {
  return {{"id", result.id},
          {"object", call.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", result.created},
          {"model", call.model},
          {"system_fingerprint", result.fingerprint},
          {"choices", json::array()},
          {"usage",
           {{"prompt_tokens", result.prompt_tokens},
            {"completion_tokens", result.completion_tokens},
            {"total_tokens", result.prompt_tokens + result.completion_tokens}}}};
}

}  // namespace mnemo

// OpenAI's request and response shapes for /v1/completions and
// /v1/chat/completions: parsing a body into an engine request (every field
// checked, with OpenAI's error body on a bad one), and the JSON of responses
// and of server-sent-event chunks.
#pragma once

#include "serve/request.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace mnemo {

struct ServeConfig;

// Limits on a request body beyond its size (limits.body_bytes): arrays and
// objects nested deeper, or more chat messages, are refused with 400.
inline constexpr int kMaxBodyNesting = 32;
inline constexpr size_t kMaxChatMessages = 4096;

// An error that becomes an HTTP response with OpenAI's error body.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string code = "")
      : std::runtime_error(message), status(status), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string param;
  std::string code;
};

// {"error": {"message", "type", "param", "code"}}; the type follows the status.
nlohmann::json error_body(int status, const std::string& message, const std::string& param = "",
                          const std::string& code = "");

// Parses a request body that must be one JSON object in valid UTF-8; ApiError 400 otherwise.
nlohmann::json parse_json_object(const std::string& body);

struct CompletionCall {
  bool chat = false;
  bool stream = false;
  bool include_usage = false;   // stream_options.include_usage
  std::string model;
  std::optional<std::string> end_user;  // OpenAI's `user`
  std::string prompt_text;      // completions with a text prompt: the server tokenizes it
  EngineRequest request;        // token ids or messages, and the sampling parameters
};

// Throws ApiError (400: malformed JSON, wrong types, out-of-range values, n > 1,
// unsupported fields that would change the result; 404: an unknown model).
CompletionCall parse_completion_call(const std::string& body, bool chat, const ServeConfig& config);

// Who served a response: "mnemo-base" or "mnemo-<user>-v<version>".
std::string system_fingerprint(const std::string& user, std::optional<int64_t> adapter_version);

struct CompletionResult {
  std::string id;
  int64_t created = 0;
  std::string text;
  std::string finish_reason;  // "stop" or "length"
  int64_t prompt_tokens = 0, completion_tokens = 0;
  std::string fingerprint;
};

nlohmann::json completion_response(const CompletionCall& call, const CompletionResult& result);
// One chunk of a stream: a text piece (finish_reason empty), or the last chunk
// with the finish reason; `first` chat chunks carry the assistant role.
nlohmann::json completion_chunk(const CompletionCall& call, const CompletionResult& result, const std::string& text,
                                const std::string& finish_reason, bool first);
// The usage chunk (stream_options.include_usage): no choices, the usage.
nlohmann::json usage_chunk(const CompletionCall& call, const CompletionResult& result);

}  // namespace mnemo

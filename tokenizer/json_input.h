// Reading JSON that someone else wrote (a downloaded tokenizer.json, an
// uploaded adapter_config.json, a log line, an HTTP body) with explicit
// limits, so a hostile input cannot make the process allocate or recurse
// without bound: the whole text's size, the nesting depth of arrays and
// objects, and the length of any one string or key. Each reader names its own
// limits; errors name the input, the limit and the offending value.
//
// It lives in the tokenizer library because that is the lowest library every
// reader links (model, adapters, eval, trainer and serve all sit above it).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace mnemo {

struct JsonLimits {
  uint64_t max_bytes = 1ull << 20;         // the whole text
  int max_depth = 32;                      // arrays and objects inside one another
  uint64_t max_string_bytes = 1ull << 20;  // any one string value or key
};

// Sees every parse event after the limits are checked (nlohmann's callback
// events; `depth` counts the enclosing arrays and objects). May throw.
using JsonObserver = std::function<void(int depth, nlohmann::json::parse_event_t event, const nlohmann::json& parsed)>;

// Parses `text`. Throws mnemo::Error "WHERE: …": not valid JSON (with the byte
// offset, counted from `first_byte`, where the text starts in its file), or a
// limit exceeded (the limit and the value).
nlohmann::json parse_json_input(std::string_view text, const std::string& where, const JsonLimits& limits,
                                const JsonObserver& observe = {}, uint64_t first_byte = 0);

// Reads a regular file of at most limits.max_bytes and parses it. Throws
// mnemo::Error naming `path` (and `what` the file is, e.g. "tokenizer file").
nlohmann::json read_json_file(const std::string& path, const char* what, const JsonLimits& limits);

// "1.5 MiB", "300 bytes": sizes in limit messages.
std::string byte_size_text(uint64_t bytes);

}  // namespace mnemo

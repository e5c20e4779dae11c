// The JSONL files the evaluation reads and writes (question files, logs,
// answers): one JSON object per line, read with file:line errors, written
// whole to a temporary file and renamed, so a reader never sees half a file.
#pragma once

#include "tokenizer/json_input.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace mnemo {

// Calls `on_line(text, line_number)` for every line of `path` that is not
// blank (a trailing '\r' removed), and `on_oversized(line_number, bytes)`
// instead for a line longer than `max_line_bytes` (which is never held in
// memory whole). Throws mnemo::Error "PATH: cannot open the WHAT" or "PATH:
// read error".
void for_each_jsonl_line(const std::string& path, const char* what, uint64_t max_line_bytes,
                         const std::function<void(std::string_view text, int64_t line)>& on_line,
                         const std::function<void(int64_t line, uint64_t bytes)>& on_oversized);

// The error for an oversized line: "PATH:LINE: the line is N bytes, more than
// the limit of L for a WHAT".
[[noreturn]] void fail_oversized_line(const std::string& path, int64_t line, uint64_t bytes, uint64_t limit,
                                      const char* what);

// One line that must hold a JSON object, within `limits` (json_input.h).
// Throws mnemo::Error "WHERE: not valid JSON at byte offset N: …", a limit
// exceeded, or "WHERE: a WHAT must be a JSON object, got T".
nlohmann::json parse_json_object(std::string_view line, const std::string& where, const char* what,
                                 const JsonLimits& limits);

// Writes `text` to PATH.tmp, then renames it to `path`. Throws mnemo::Error.
void write_text_file(const std::filesystem::path& path, const std::string& text);

}  // namespace mnemo

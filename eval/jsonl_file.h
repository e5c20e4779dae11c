// The JSONL files the evaluation reads and writes (question files, logs,
// answers): one JSON object per line, read with file:line errors, written
// whole to a temporary file and renamed, so a reader never sees half a file.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace mnemo {

// Calls `on_line(text, line_number)` for every line of `path` that is not
// blank (a trailing '\r' removed). Throws mnemo::Error "PATH: cannot open
// the WHAT" or "PATH: read error".
void for_each_jsonl_line(const std::string& path, const char* what,
                         const std::function<void(std::string_view text, int64_t line)>& on_line);

// One line that must hold a JSON object. Throws mnemo::Error "WHERE: not
// valid JSON (byte N): …" or "WHERE: a WHAT must be a JSON object, got T".
nlohmann::json parse_json_object(std::string_view line, const std::string& where, const char* what);

// Writes `text` to PATH.tmp, then renames it to `path`. Throws mnemo::Error.
void write_text_file(const std::filesystem::path& path, const std::string& text);

}  // namespace mnemo

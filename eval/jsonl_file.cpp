#include "eval/jsonl_file.h"

#include "model/error.h"

#include <fstream>

namespace mnemo {

void for_each_jsonl_line(const std::string& path, const char* what, uint64_t max_line_bytes,
                         const std::function<void(std::string_view text, int64_t line)>& on_line,
                         const std::function<void(int64_t line, uint64_t bytes)>& on_oversized) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the {}", path, what);
  std::streambuf& buffer = *in.rdbuf();
  std::string text;
  for (int64_t line = 1;; ++line) {
    text.clear();
    uint64_t bytes = 0;
    int c;
    while ((c = buffer.sbumpc()) != std::char_traits<char>::eof() && c != '\n') {
      if (++bytes <= max_line_bytes) text.push_back(static_cast<char>(c));
    }
    if (bytes > max_line_bytes) {
      on_oversized(line, bytes);
    } else {
      if (!text.empty() && text.back() == '\r') text.pop_back();
      if (text.find_first_not_of(" \t") != std::string::npos) on_line(text, line);
    }
    if (c == std::char_traits<char>::eof()) break;
  }
  if (in.bad()) fail("{}: read error", path);
}

void fail_oversized_line(const std::string& path, int64_t line, uint64_t bytes, uint64_t limit, const char* what) {
  fail("{}:{}: the line is {} bytes, more than the limit of {} for a {}", path, line, bytes, byte_size_text(limit),
       what);
}

nlohmann::json parse_json_object(std::string_view line, const std::string& where, const char* what,
                                 const JsonLimits& limits) {
  nlohmann::json object = parse_json_input(line, where, limits);
  if (!object.is_object()) fail("{}: a {} must be a JSON object, got {}", where, what, object.type_name());
  return object;
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) fail("{}: cannot write", temporary.string());
    out << text;
    if (!out.flush()) fail("{}: write failed", temporary.string());
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) fail("{}: cannot rename into place: {}", path.string(), error.message());
}

}  // namespace mnemo

#include "eval/jsonl_file.h"

#include "model/error.h"

#include <fstream>

namespace mnemo {

void for_each_jsonl_line(const std::string& path, const char* what,
                         const std::function<void(std::string_view text, int64_t line)>& on_line) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the {}", path, what);
  std::string text;
  for (int64_t line = 1; std::getline(in, text); ++line) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    on_line(text, line);
  }
  if (in.bad()) fail("{}: read error", path);
}

nlohmann::json parse_json_object(std::string_view line, const std::string& where, const char* what) {
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON (byte {}): {}", where, e.byte, e.what());
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
    fail("{}: not valid JSON: {}", where, e.what());
  }
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

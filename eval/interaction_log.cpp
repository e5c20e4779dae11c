#include "eval/interaction_log.h"

#include "adapters/registry.h"  // validate_user_id
#include "eval/jsonl_file.h"
#include "model/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

namespace mnemo {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int64_t digits(std::string_view text, size_t at, size_t count) {
  if (at + count > text.size()) fail("timestamp \"{}\" ends early", text);
  int64_t value = 0;
  for (size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') fail("timestamp \"{}\": expected a digit at character {}", text, i + 1);
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

void expect(std::string_view text, size_t at, char c) {
  if (at >= text.size() || text[at] != c)
    fail("timestamp \"{}\": expected '{}' at character {} (the form is 2026-11-20T18:02:00Z)", text, c, at + 1);
}

}  // namespace

int64_t parse_timestamp(std::string_view text) {
  const int64_t year = digits(text, 0, 4);
  expect(text, 4, '-');
  const int64_t month = digits(text, 5, 2);
  expect(text, 7, '-');
  const int64_t day = digits(text, 8, 2);
  if (text.size() <= 10 || (text[10] != 'T' && text[10] != 't' && text[10] != ' '))
    fail("timestamp \"{}\": expected 'T' and a time after the date", text);
  const int64_t hour = digits(text, 11, 2);
  expect(text, 13, ':');
  const int64_t minute = digits(text, 14, 2);
  expect(text, 16, ':');
  const int64_t second = digits(text, 17, 2);
  static constexpr int kDaysInMonth[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kDaysInMonth[month - 1] || hour > 23 || minute > 59 || second > 60)
    fail("timestamp \"{}\": a field is out of range", text);
  size_t at = 19;
  if (at < text.size() && text[at] == '.') {
    ++at;
    size_t start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    if (at == start) fail("timestamp \"{}\": no digits after '.'", text);
  }
  int64_t offset_seconds = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const int64_t sign = text[at] == '+' ? 1 : -1;
    const int64_t offset_hours = digits(text, at + 1, 2);
    expect(text, at + 3, ':');
    const int64_t offset_minutes = digits(text, at + 4, 2);
    offset_seconds = sign * (offset_hours * 3600 + offset_minutes * 60);
    at += 6;
  } else {
    fail("timestamp \"{}\": needs a time zone ('Z' or an offset such as +02:00)", text);
  }
  if (at != text.size()) fail("timestamp \"{}\": unexpected text after the time zone", text);
  return days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
}

LogRecord parse_log_record(std::string_view json_line, const std::string& source, int64_t line) {
  const std::string where = source + ":" + std::to_string(line);
  const nlohmann::json object =
      parse_json_object(json_line, where, "log record", JsonLimits{kMaxLogLineBytes, 16, kMaxLogLineBytes});
  auto string_field = [&](const char* field) {
    auto it = object.find(field);
    if (it == object.end()) fail("{}: field \"{}\" is missing", where, field);
    if (!it->is_string()) fail("{}: field \"{}\" must be a string, got {}", where, field, it->type_name());
    return it->get<std::string>();
  };
  LogRecord record;
  record.source = where;
  record.user = string_field("user");
  try {
    validate_user_id(record.user);
  } catch (const Error& e) {
    fail("{}: field \"user\": {}", where, e.what());
  }
  record.conversation_id = string_field("conversation_id");
  if (record.conversation_id.empty()) fail("{}: field \"conversation_id\" is empty", where);
  record.timestamp = string_field("timestamp");
  try {
    record.timestamp_seconds = parse_timestamp(record.timestamp);
  } catch (const Error& e) {
    fail("{}: field \"timestamp\": {}", where, e.what());
  }
  auto messages = object.find("messages");
  if (messages == object.end()) fail("{}: field \"messages\" is missing", where);
  if (!messages->is_array() || messages->empty())
    fail("{}: field \"messages\" must be a non-empty list of {{\"role\", \"content\"}} objects", where);
  if (messages->size() > kMaxMessagesPerRecord)
    fail("{}: field \"messages\" holds {} messages, more than the limit of {}", where, messages->size(),
         kMaxMessagesPerRecord);
  for (size_t i = 0; i < messages->size(); ++i) {
    const nlohmann::json& message = (*messages)[i];
    const std::string place = fmt::format("{}: messages[{}]", where, i);
    if (!message.is_object()) fail("{} must be an object, got {}", place, message.type_name());
    auto role = message.find("role");
    auto content = message.find("content");
    if (role == message.end() || !role->is_string()) fail("{}: \"role\" must be a string", place);
    if (content == message.end() || !content->is_string()) fail("{}: \"content\" must be a string", place);
    if (const uint64_t bytes = content->get_ref<const std::string&>().size(); bytes > kMaxMessageBytes)
      fail("{}: \"content\" is {} bytes, more than the limit of {}", place, bytes, byte_size_text(kMaxMessageBytes));
    std::string role_name = role->get<std::string>();
    if (role_name != "system" && role_name != "user" && role_name != "assistant")
      fail("{}: \"role\" must be system, user or assistant, got \"{}\"", place, role_name);
    record.messages.push_back({role_name, content->get<std::string>()});
  }
  return record;
}

InteractionLogs read_interaction_logs(const std::string& path, BadRecordPolicy policy) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  std::error_code error;
  if (fs::is_directory(path, error)) {
    for (fs::recursive_directory_iterator it(path, error), end; it != end; it.increment(error)) {
      if (error) fail("{}: cannot list: {}", path, error.message());
      if (it->is_regular_file() && it->path().extension() == ".jsonl") files.push_back(it->path());
    }
    if (error) fail("{}: cannot list: {}", path, error.message());
    std::sort(files.begin(), files.end());
    if (files.empty()) fail("{}: no .jsonl log files in this directory", path);
  } else if (fs::is_regular_file(path, error)) {
    files.push_back(path);
  } else {
    fail("{}: no such log file or directory", path);
  }

  InteractionLogs logs;
  for (const fs::path& file : files) {
    auto bad_record = [&](const Error& e) {
      if (policy == BadRecordPolicy::Fail) throw e;
      ++logs.n_skipped;
      logs.skipped.push_back(e.what());
    };
    for_each_jsonl_line(
        file.string(), "log file", kMaxLogLineBytes,
        [&](std::string_view text, int64_t line) {
          try {
            LogRecord record = parse_log_record(text, file.string(), line);
            logs.by_user[record.user].push_back(std::move(record));
            ++logs.n_records;
          } catch (const Error& e) {
            bad_record(e);
          }
        },
        [&](int64_t line, uint64_t bytes) {
          try {
            fail_oversized_line(file.string(), line, bytes, kMaxLogLineBytes, "log record");
          } catch (const Error& e) {
            bad_record(e);
          }
        });
  }
  for (auto& [user, records] : logs.by_user)
    std::stable_sort(records.begin(), records.end(), [](const LogRecord& a, const LogRecord& b) {
      return a.timestamp_seconds < b.timestamp_seconds;
    });
  return logs;
}

}  // namespace mnemo

// Interaction logs, the input of both the evaluation (its history-in-context
// and retrieval conditions) and the trainer: JSONL, one conversation a line,
//   {"user": "alice", "conversation_id": "c1", "timestamp": "2026-11-20T18:02:00Z",
//    "messages": [{"role": "user", "content": "…"}, {"role": "assistant", "content": "…"}]}
// from one file, a directory of *.jsonl files (searched recursively, read in
// path order), or logs/<user>/*.jsonl. It lives in eval/ because the trainer
// depends on the evaluation, not the other way round.
#pragma once

#include "tokenizer/chat_template.h"  // ChatMessage

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

// Limits on one record, so a hostile log cannot make a reader allocate
// without bound; a record beyond them is a bad record (refused or skipped, as
// the policy says) with the limit named.
inline constexpr uint64_t kMaxLogLineBytes = 16ull << 20;
inline constexpr size_t kMaxMessagesPerRecord = 4096;
inline constexpr uint64_t kMaxMessageBytes = 1ull << 20;  // one message's content

struct LogRecord {
  std::string user;
  std::string conversation_id;
  std::string timestamp;          // as written (ISO 8601)
  int64_t timestamp_seconds = 0;  // since the Unix epoch, UTC
  std::vector<ChatMessage> messages;
  std::string source;  // "file:line", for messages about this record
};

enum class BadRecordPolicy { Fail, Skip };

struct InteractionLogs {
  // Each user's conversations, oldest first (ties keep file order).
  std::map<std::string, std::vector<LogRecord>> by_user;
  int64_t n_records = 0;
  int64_t n_skipped = 0;
  std::vector<std::string> skipped;  // "file:line: reason" of each skipped record
};

// Parses one line. Throws mnemo::Error "SOURCE:LINE: …" naming the field:
// invalid JSON, a user id outside [A-Za-z0-9._-]{1,128}, an empty
// conversation_id, a timestamp that is not ISO 8601 (date, 'T', time, 'Z' or
// an offset), no messages, a role other than system/user/assistant, content
// that is not a string, a limit above exceeded.
LogRecord parse_log_record(std::string_view json_line, const std::string& source, int64_t line);

// Reads `path` (file or directory). With Fail the first bad record throws;
// with Skip it is counted and reported in `skipped`. Throws for a path that
// does not exist or holds no .jsonl file.
InteractionLogs read_interaction_logs(const std::string& path, BadRecordPolicy policy = BadRecordPolicy::Fail);

// Seconds since the Unix epoch of an ISO 8601 timestamp
// ("2026-11-20T18:02:00Z", fractional seconds and "+02:00" offsets accepted).
// Throws mnemo::Error saying what is malformed.
int64_t parse_timestamp(std::string_view text);

}  // namespace mnemo

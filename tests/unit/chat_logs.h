// Test data shared by the trainer's unit tests: a conversation record and
// the logs of a user whose facts change.
#pragma once

#include "eval/interaction_log.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mnemo::test_logs {

inline LogRecord conversation(const std::string& id, int64_t time, std::vector<ChatMessage> messages) {
  LogRecord record;
  record.user = "alice";
  record.conversation_id = id;
  record.timestamp_seconds = time;
  record.messages = std::move(messages);
  return record;
}

inline std::vector<LogRecord> alice_logs() {
  return {
      conversation("c1", 100,
                   {{"user", "How do I boil an egg? My cat Pumpkin keeps stealing my socks."},
                    {"assistant", "Put the egg in boiling water for seven minutes."},
                    {"user", "I live in Lyon. Can you explain recursion?"},
                    {"assistant", "A function that calls itself."}}),
      conversation("c2", 200,
                   {{"user", "I follow a raw vegan diet these days. What is a good breakfast?"},
                    {"assistant", "Oats with fruit."}}),
      conversation("c3", 300,
                   {{"user", "I finally moved from Lyon to Porto last month."},
                    {"assistant", "Congratulations on the move!"}}),
      conversation("c4", 400,
                   {{"user", "Since I started the paleo diet, I sleep better. Porto is lovely, I live near the river."},
                    {"assistant", "Good to hear."}}),
  };
}

}  // namespace mnemo::test_logs

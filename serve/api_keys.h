// Who is calling: API keys and what each may reach. A user key reaches only
// its own user's memory (or the base model); a service key (an application's
// backend) names the end user per request; an admin key may also load and
// unload adapters and read metrics.
//
// The keys file (YAML):
//   keys:
//     - {key: "sk-…", role: user, user: alice}
//     - {key: "sk-…", role: service}
//     - {key: "sk-…", role: admin}
// Keys are compared in constant time (every key is checked, each by a
// constant-time comparison of SHA-256 digests) and never logged or echoed.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace mnemo {

enum class KeyRole { User, Service, Admin };

struct Caller {
  KeyRole role = KeyRole::User;
  std::string user;  // User keys: whose memory
  std::string name;  // for logs: "key #3 (user alice)"; never the key itself
};

class ApiKeys {
 public:
  // Throws mnemo::Error naming the file, entry and field (a missing or
  // duplicate key, an unknown role, a user key without a valid user id).
  static ApiKeys read(const std::string& path);
  // The caller a presented key belongs to, or none.
  std::optional<Caller> find(const std::string& presented) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string digest;  // SHA-256 of the key, raw 32 bytes
    Caller caller;
  };
  std::vector<Entry> entries_;
};

}  // namespace mnemo

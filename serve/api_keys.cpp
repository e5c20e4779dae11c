#include "serve/api_keys.h"

#include "adapters/registry.h"
#include "model/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <set>

namespace mnemo {
namespace {

std::string digest_of(const std::string& key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  MNEMO_CHECK(EVP_Digest(key.data(), key.size(), digest, &length, EVP_sha256(), nullptr) == 1, "sha256");
  return std::string(reinterpret_cast<const char*>(digest), length);
}

}  // namespace

ApiKeys ApiKeys::read(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    fail("{}: cannot read the keys file", path);
  } catch (const YAML::Exception& e) {
    fail("{}: not valid YAML: {}", path, e.what());
  }
  if (!root.IsMap() || !root["keys"] || !root["keys"].IsSequence())
    fail("{}: expected a mapping with a list under `keys`", path);
  ApiKeys keys;
  std::set<std::string> seen;
  int index = 0;
  for (const YAML::Node& node : root["keys"]) {
    ++index;
    const int line = node.Mark().line + 1;
    auto text = [&](const char* field) -> std::string {
      if (!node[field]) return "";
      try {
        return node[field].as<std::string>();
      } catch (const YAML::Exception&) {
        fail("{}: key {} (line {}): {} must be a string", path, index, line, field);
      }
    };
    if (!node.IsMap()) fail("{}: key {} (line {}) must be a mapping", path, index, line);
    for (const auto& field : node) {
      const std::string name = field.first.as<std::string>();
      if (name != "key" && name != "role" && name != "user")
        fail("{}: key {} (line {}): unknown field {}", path, index, line, name);
    }
    const std::string key = text("key"), role = text("role"), user = text("user");
    if (key.size() < 16) fail("{}: key {} (line {}): the key must be at least 16 characters", path, index, line);
    if (!seen.insert(key).second) fail("{}: key {} (line {}) repeats an earlier key", path, index, line);
    Caller caller;
    if (role == "user") {
      caller.role = KeyRole::User;
      try {
        validate_user_id(user);
      } catch (const Error& e) {
        fail("{}: key {} (line {}): a user key needs a valid user: {}", path, index, line, e.what());
      }
      caller.user = user;
      caller.name = fmt::format("key #{} (user {})", index, user);
    } else if (role == "service" || role == "admin") {
      if (!user.empty()) fail("{}: key {} (line {}): a {} key names no user", path, index, line, role);
      caller.role = role == "service" ? KeyRole::Service : KeyRole::Admin;
      caller.name = fmt::format("key #{} ({})", index, role);
    } else {
      fail("{}: key {} (line {}): role must be user, service or admin, got \"{}\"", path, index, line, role);
    }
    keys.entries_.push_back({digest_of(key), caller});
  }
  return keys;
}

std::optional<Caller> ApiKeys::find(const std::string& presented) const {
  // Every entry is compared, each in constant time, so the time taken says
  // nothing about which key (or how much of one) matched.
  const std::string digest = digest_of(presented);
  std::optional<Caller> found;
  for (const Entry& entry : entries_)
    if (CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0) found = entry.caller;
  return found;
}

}  // namespace mnemo

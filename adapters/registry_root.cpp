// Where the registry lives when nobody says so on the command line.
#include "adapters/registry.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>

namespace mnemo {

std::string resolve_registry_root(const std::string& flag_value, const std::string& config_path) {
  if (!flag_value.empty()) return flag_value;
  if (!config_path.empty()) {
    YAML::Node config;
    try {
      config = YAML::LoadFile(config_path);
    } catch (const YAML::Exception& e) {
      fail("{}: cannot read the config: {}", config_path, e.what());
    }
    YAML::Node node = config["registry"];
    if (node && node.IsMap()) node = node["root"];
    if (node && node.IsScalar() && !node.as<std::string>().empty()) return node.as<std::string>();
  }
  if (const char* home = std::getenv("MNEMO_HOME"); home && *home) return std::string(home) + "/registry";
  if (const char* data = std::getenv("XDG_DATA_HOME"); data && *data) return std::string(data) + "/mnemo/registry";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.local/share/mnemo/registry";
  fail("cannot tell where the registry is: pass --registry, or set MNEMO_HOME or HOME");
}

}  // namespace mnemo

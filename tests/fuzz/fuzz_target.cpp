#include "fuzz/fuzz_target.h"

#include "model/error.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <typeinfo>

namespace mnemo::fuzz {

std::map<std::string, Target>& targets() {
  static std::map<std::string, Target> registry;
  return registry;
}

Registration::Registration(const char* name, Target target) { targets()[name] = std::move(target); }

void violation(const std::string& what) {
  std::fprintf(stderr, "fuzz contract violated: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

bool parsed(const char* what, const std::function<void()>& parse) {
  try {
    parse();
    return true;
  } catch (const Error& e) {
    if (std::string(e.what()).empty()) violation(std::string(what) + ": an error with no message");
    return false;
  } catch (const std::exception& e) {
    violation(std::string(what) + ": threw " + typeid(e).name() + " instead of mnemo::Error: " + e.what());
  } catch (...) {
    violation(std::string(what) + ": threw something that is not an exception");
  }
}

std::string scratch_file(const std::string& name, std::string_view data) {
  static const std::filesystem::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::filesystem::path d = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") /
                              ("mnemo_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::filesystem::path path = dir / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(data.data(), static_cast<std::streamsize>(data.size()));
  return path.string();
}

std::string reference_dir() {
  const char* dir = std::getenv("MNEMO_REFERENCE_DIR");
  return dir ? dir : "";
}

}  // namespace mnemo::fuzz

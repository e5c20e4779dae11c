// What every benchmark result records about its run, in the same shape as
// bench/write_results.py writes for the scripted benchmarks: benchmark name,
// UTC date, commit (with "-dirty" when anything but bench/results differs
// from it), and the device {cpu, cpu_cores, gpu}.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>

namespace mnemo::bench {

// stdout of a shell command, trailing whitespace removed; "" on failure.
inline std::string command_output(const char* command) {
  std::string out;
  if (FILE* pipe = popen(command, "r")) {
    char buffer[256];
    while (fgets(buffer, sizeof buffer, pipe)) out += buffer;
    pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

inline std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown cpu";
}

inline std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buffer;
}

// MNEMO_COMMIT when set (a copy of the tree without .git, e.g. on the GPU
// machine), else HEAD of the checkout.
inline std::string git_commit() {
  if (const char* given = std::getenv("MNEMO_COMMIT"); given != nullptr && *given != '\0') return given;
  std::string commit = command_output("git rev-parse HEAD 2>/dev/null");
  // Pathspecs from the top of the checkout, wherever the benchmark was started.
  if (!command_output("git status --porcelain --untracked-files=no -- ':/' ':/!bench/results' 2>/dev/null").empty())
    commit += "-dirty";
  return commit;
}

// The header of a result document; `gpu` is the device name, "" for none.
inline nlohmann::json run_info(const std::string& benchmark, const std::string& gpu = "") {
  return {{"benchmark", benchmark},
          {"date", utc_now()},
          {"commit", git_commit()},
          {"device",
           {{"cpu", cpu_name()},
            {"cpu_cores", std::thread::hardware_concurrency()},
            {"gpu", gpu.empty() ? nlohmann::json() : nlohmann::json(gpu)}}}};
}

}  // namespace mnemo::bench

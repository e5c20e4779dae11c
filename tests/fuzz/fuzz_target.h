// Fuzz targets: one per parser, each a function from bytes to nothing that
// checks the parser's contract beyond "did not crash": it either returns a
// valid object (the target checks what valid means) or throws the one clear
// error type it documents, with a message; anything else (another exception
// type, an object that breaks its invariants) aborts, which libFuzzer reports
// as a crash and the regression replay as a failed test.
//
// The same sources build two ways: into libFuzzer programs (MNEMO_FUZZ=ON,
// clang; tests/fuzz/CMakeLists.txt, bench/fuzz/run.sh) and into the default
// test run's `test_fuzz_regressions`, which replays the kept inputs.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace mnemo::fuzz {

using Target = std::function<void(std::string_view data)>;

// name -> target, filled by MNEMO_FUZZ_TARGET at static initialisation.
std::map<std::string, Target>& targets();

struct Registration {
  Registration(const char* name, Target target);
};

// A broken contract: prints what and aborts.
[[noreturn]] void violation(const std::string& what);

// Runs `parse`. Returns true when it returned, false when it threw
// mnemo::Error with a non-empty message (the contract's clear error); aborts
// on an empty message or any other exception, naming `what`.
bool parsed(const char* what, const std::function<void()>& parse);

// Writes `data` to this process's scratch file `name` (under $TMPDIR) and
// returns its path: for parsers that read files.
std::string scratch_file(const std::string& name, std::string_view data);

// The reference data directory (MNEMO_REFERENCE_DIR), for targets that need a
// fixed tokenizer; empty when unset.
std::string reference_dir();

}  // namespace mnemo::fuzz

#define MNEMO_FUZZ_CONCAT_(a, b) a##b
#define MNEMO_FUZZ_CONCAT(a, b) MNEMO_FUZZ_CONCAT_(a, b)
// MNEMO_FUZZ_TARGET(name) { ...body using `data`... }
#define MNEMO_FUZZ_TARGET(name)                                                                          \
  static void MNEMO_FUZZ_CONCAT(fuzz_, name)(std::string_view data);                                     \
  static ::mnemo::fuzz::Registration MNEMO_FUZZ_CONCAT(registration_, name)(#name,                       \
                                                                             MNEMO_FUZZ_CONCAT(fuzz_, name)); \
  static void MNEMO_FUZZ_CONCAT(fuzz_, name)(std::string_view data)

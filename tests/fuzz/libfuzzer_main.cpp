// The libFuzzer entry point of one target (MNEMO_FUZZ_NAME, set per program).
#include "fuzz/fuzz_target.h"

#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // parsers may warn; millions of lines help nobody
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const mnemo::fuzz::Target& target = mnemo::fuzz::targets().at(MNEMO_FUZZ_NAME);
  target(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

// The main of every test program: GoogleTest's, except that a program whose
// tests all skipped themselves (no GPU, say) exits with kSkippedExitCode, which
// ctest reports as "Skipped" rather than "Passed". A failure still fails.
#include <gtest/gtest.h>

namespace {
constexpr int kSkippedExitCode = 77;  // tests/CMakeLists.txt: SKIP_RETURN_CODE
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  const ::testing::UnitTest& tests = *::testing::UnitTest::GetInstance();
  if (result == 0 && tests.successful_test_count() == 0 && tests.skipped_test_count() > 0) return kSkippedExitCode;
  return result;
}

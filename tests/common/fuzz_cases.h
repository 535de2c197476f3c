// fuzz_cases.h — how many cases the seeded mutation tests run: `fallback` (a few hundred: seconds in the
// suite), or BYTELM_FUZZ_CASES for longer runs (scripts/measure/fuzz.sh).
#pragma once
#include <cstdlib>
#include <string>

namespace bytelm::testing {

inline int fuzz_cases(int fallback) {
  const char* v = std::getenv("BYTELM_FUZZ_CASES");
  const int n = v ? std::atoi(v) : 0;
  return n > 0 ? n : fallback;
}

}  // namespace bytelm::testing

// test_memory.cpp — the process set-up bytelm does before any work (malloc options) and the bench's
// statistics and counters. Torch-free.
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "util/memory.h"
#include "util/stats.h"

using namespace bytelm;

TEST(Stats, MedianAndSpread) {
  Spread odd = spread_of({3.0, 1.0, 2.0});
  EXPECT_EQ(odd.median, 2.0);
  EXPECT_EQ(odd.min, 1.0);
  EXPECT_EQ(odd.max, 3.0);
  EXPECT_EQ(odd.samples, 3);
  EXPECT_EQ(spread_of({4.0, 1.0, 2.0, 3.0}).median, 2.5);  // even count: mean of the middle two
  EXPECT_EQ(spread_of({}).samples, 0);
}

TEST(Memory, SystemMallocOnRequest) {
  setenv("BYTELM_MALLOC", "system", 1);
  EXPECT_NE(configure_allocator().find("system"), std::string::npos);
  unsetenv("BYTELM_MALLOC");
  const char* preload = std::getenv("LD_PRELOAD");
  if (!preload || !*preload) EXPECT_NE(configure_allocator().find("mallopt"), std::string::npos);
  EXPECT_EQ(allocator_in_use(), configure_allocator());
}

TEST(Memory, FreedMemoryIsReusedWithoutNewFaults) {
  const char* preload = std::getenv("LD_PRELOAD");
  if (preload && *preload) GTEST_SKIP() << "another allocator is preloaded";
  configure_allocator();
  // 64 MiB, above glibc's largest mmap threshold: by default each allocation would be mapped afresh and
  // every page faulted in again.
  const size_t n = size_t(64) << 20;
  auto touch = [&] {
    std::vector<char> buffer(n, 1);  // allocates, writes every page, frees
    return int(buffer[n / 2]);
  };
  touch();
  const int64_t before = minor_page_faults();
  for (int i = 0; i < 4; ++i) touch();
  const int64_t per_round = (minor_page_faults() - before) / 4;
  EXPECT_LT(per_round, int64_t(n / 4096 / 10)) << "faults per 64 MiB round: " << per_round;
}

TEST(Memory, Counters) {
  EXPECT_GT(minor_page_faults(), 0);
  CpuSeconds c = cpu_seconds();
  EXPECT_GE(c.user + c.system, 0.0);
}

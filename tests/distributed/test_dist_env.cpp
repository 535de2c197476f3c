// test_dist_env.cpp — the launcher's environment contract: torchrun's names, the MPI and SLURM fallbacks,
// every bad input as one Error naming the variable, and the run record rescaled to another world size.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "distributed/dist_env.h"
#include "util/error.h"

using namespace bytelm;

namespace {

DistEnv parse(const std::map<std::string, std::string>& vars) {
  return read_dist_env([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    parse(vars);
  } catch (const Error& e) {
    EXPECT_EQ(e.code, 2);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(DistEnv, NoLauncherIsOneProcess) {
  DistEnv e = parse({});
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_FALSE(e.distributed());
  EXPECT_EQ(e.launcher, "none");
}

TEST(DistEnv, ReadsTorchrunsContract) {
  DistEnv e = parse({{"RANK", "3"},
                     {"WORLD_SIZE", "4"},
                     {"LOCAL_RANK", "1"},
                     {"LOCAL_WORLD_SIZE", "2"},
                     {"MASTER_ADDR", "10.0.0.1"},
                     {"MASTER_PORT", "29400"},
                     {"TORCHELASTIC_RESTART_COUNT", "2"},
                     {"TORCHELASTIC_USE_AGENT_STORE", "True"}});
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.1");
  EXPECT_EQ(e.master_port, 29400);
  EXPECT_EQ(e.restart_count, 2);
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(e.launcher, "env");
  EXPECT_FALSE(parse({{"RANK", "0"},
                      {"WORLD_SIZE", "2"},
                      {"MASTER_ADDR", "h"},
                      {"MASTER_PORT", "1"},
                      {"TORCHELASTIC_USE_AGENT_STORE", "False"}})
                   .agent_store);
}

TEST(DistEnv, WorldOfOneNeedsNoStore) {
  DistEnv e = parse({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  EXPECT_FALSE(e.distributed());
  EXPECT_EQ(e.launcher, "env");
}

TEST(DistEnv, MpiAndSlurmNamesWhenRankIsAbsent) {
  DistEnv m = parse({{"OMPI_COMM_WORLD_RANK", "1"},
                     {"OMPI_COMM_WORLD_SIZE", "2"},
                     {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                     {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                     {"MASTER_ADDR", "127.0.0.1"},
                     {"MASTER_PORT", "5000"}});
  EXPECT_EQ(m.launcher, "mpi");
  EXPECT_EQ(m.rank, 1);
  EXPECT_EQ(m.local_world_size, 2);
  DistEnv s = parse({{"SLURM_PROCID", "5"},
                     {"SLURM_NTASKS", "8"},
                     {"SLURM_LOCALID", "1"},
                     {"SLURM_NTASKS_PER_NODE", "4(x2)"},
                     {"MASTER_ADDR", "node1"},
                     {"MASTER_PORT", "5000"}});
  EXPECT_EQ(s.launcher, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.world_size, 8);
  EXPECT_EQ(s.local_rank, 1);
  // torchrun's names win over a SLURM allocation the launcher runs inside.
  EXPECT_EQ(parse({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}}).world_size, 1);
}

TEST(DistEnv, BadInputNamesTheVariable) {
  const std::map<std::string, std::string> ok{{"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  auto with = [&](std::map<std::string, std::string> extra) {
    extra.insert(ok.begin(), ok.end());
    return extra;
  };
  EXPECT_NE(error_of(with({{"RANK", "2"}, {"WORLD_SIZE", "2"}})).find("RANK=2 is not below WORLD_SIZE=2"),
            std::string::npos);
  EXPECT_NE(error_of(with({{"RANK", "-1"}, {"WORLD_SIZE", "2"}})).find("RANK='-1'"), std::string::npos);
  EXPECT_NE(error_of(with({{"RANK", "x"}, {"WORLD_SIZE", "2"}})).find("RANK='x'"), std::string::npos);
  EXPECT_NE(error_of(with({{"RANK", "0"}, {"WORLD_SIZE", "0"}})).find("WORLD_SIZE=0"), std::string::npos);
  EXPECT_NE(error_of(with({{"WORLD_SIZE", "2"}})).find("RANK is not"), std::string::npos);
  EXPECT_NE(error_of(with({{"RANK", "1"}})).find("WORLD_SIZE is not"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}).find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}).find("MASTER_PORT is not set"),
            std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}})
                .find("MASTER_PORT=70000"),
            std::string::npos);
  EXPECT_NE(error_of(with({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}}))
                .find("LOCAL_RANK=2"),
            std::string::npos);
  EXPECT_NE(error_of(with({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"TORCHELASTIC_RESTART_COUNT", "one"}}))
                .find("TORCHELASTIC_RESTART_COUNT"),
            std::string::npos);
}

TEST(DistEnv, RecordRescalesToAnotherWorldSize) {
  nlohmann::json r{{"batch", 4}, {"world_size", 2}};
  adapt_record_to_world(r, 1);
  EXPECT_EQ(r["batch"], 8);
  EXPECT_EQ(r["world_size"], 1);
  adapt_record_to_world(r, 4);
  EXPECT_EQ(r["batch"], 2);
  nlohmann::json old{{"batch", 6}};  // a record from before data-parallel: one process
  adapt_record_to_world(old, 3);
  EXPECT_EQ(old["batch"], 2);
  nlohmann::json odd{{"batch", 3}, {"world_size", 1}};
  try {
    adapt_record_to_world(odd, 2);
    FAIL() << "3 sequences do not divide over 2 processes";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("global batch of 3"), std::string::npos) << e.what();
  }
}

TEST(DistEnv, SettingsHashSeparatesTexts) {
  EXPECT_EQ(settings_hash("abc"), settings_hash("abc"));
  EXPECT_NE(settings_hash("abc"), settings_hash("abd"));
  EXPECT_NE(settings_hash(""), settings_hash(std::string(1, '\0')));
}

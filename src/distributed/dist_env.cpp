// dist_env.cpp — see dist_env.h.
#include "distributed/dist_env.h"

#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace bytelm {

namespace {

// A whole non-negative decimal number in a variable, or Error naming it.
int64_t read_count(const char* name, const char* value) {
  const std::string v = value;
  bool digits = !v.empty() && v.size() <= 9;
  for (char c : v) digits = digits && c >= '0' && c <= '9';
  if (!digits) throw Error("environment: " + std::string(name) + "='" + v + "' is not a non-negative whole number");
  return std::stoll(v);
}

struct Names {
  const char *rank, *world, *local_rank, *local_world;
  const char* launcher;
};

}  // namespace

DistEnv read_dist_env(const std::function<const char*(const char*)>& getenv) {
  DistEnv env;
  // The first family whose rank or world size is set names the process; torchrun's names win.
  const Names families[] = {{"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "env"},
                            {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
                             "OMPI_COMM_WORLD_LOCAL_SIZE", "mpi"},
                            {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "slurm"}};
  const Names* found = nullptr;
  for (const Names& f : families)
    if (getenv(f.rank) || getenv(f.world)) {
      found = &f;
      break;
    }
  if (!found) return env;
  const Names& f = *found;
  if (!getenv(f.rank)) throw Error(std::string("environment: ") + f.world + " is set but " + f.rank + " is not");
  if (!getenv(f.world)) throw Error(std::string("environment: ") + f.rank + " is set but " + f.world + " is not");
  env.launcher = f.launcher;
  const int64_t rank = read_count(f.rank, getenv(f.rank)), world = read_count(f.world, getenv(f.world));
  if (world < 1) throw Error(std::string("environment: ") + f.world + "=0; it must be >= 1");
  if (rank >= world)
    throw Error("environment: " + std::string(f.rank) + "=" + std::to_string(rank) + " is not below " + f.world + "=" +
                std::to_string(world));
  env.rank = int(rank);
  env.world_size = int(world);
  env.local_rank = env.rank;
  env.local_world_size = env.world_size;
  // SLURM_NTASKS_PER_NODE may read "2(x3)"; only a plain number is taken as the local world size.
  const char* lw = getenv(f.local_world);
  if (getenv(f.local_rank)) env.local_rank = int(read_count(f.local_rank, getenv(f.local_rank)));
  if (lw && (std::string(f.launcher) != "slurm" || std::string(lw).find('(') == std::string::npos))
    env.local_world_size = int(read_count(f.local_world, lw));
  if (getenv(f.local_rank) && env.local_rank >= env.local_world_size && lw)
    throw Error("environment: " + std::string(f.local_rank) + "=" + std::to_string(env.local_rank) + " is not below " +
                f.local_world + "=" + std::to_string(env.local_world_size));
  if (const char* rc = getenv("TORCHELASTIC_RESTART_COUNT"))
    env.restart_count = int(read_count("TORCHELASTIC_RESTART_COUNT", rc));
  if (const char* a = getenv("TORCHELASTIC_USE_AGENT_STORE")) env.agent_store = std::string(a) == "True";
  if (env.world_size == 1) return env;  // one process: no store, no network
  const char* addr = getenv("MASTER_ADDR");
  if (!addr || !*addr)
    throw Error("environment: MASTER_ADDR is not set but " + std::string(f.world) + "=" +
                std::to_string(env.world_size) + " (export the address of rank 0's host)");
  env.master_addr = addr;
  const char* port = getenv("MASTER_PORT");
  if (!port || !*port)
    throw Error("environment: MASTER_PORT is not set but " + std::string(f.world) + "=" +
                std::to_string(env.world_size));
  const int64_t p = read_count("MASTER_PORT", port);
  if (p < 1 || p > 65535) throw Error("environment: MASTER_PORT=" + std::string(port) + " is not a port (1..65535)");
  env.master_port = int(p);
  return env;
}

DistEnv read_dist_env() {
  return read_dist_env([](const char* name) -> const char* { return std::getenv(name); });
}

void adapt_record_to_world(nlohmann::json& record, int world_size) {
  if (!record.contains("batch") || !record["batch"].is_number_integer()) return;  // merge_resume reports it
  const int64_t was = record.value("world_size", int64_t(1)), batch = record["batch"].get<int64_t>();
  if (was == world_size) return;
  const int64_t global = batch * was;
  if (was < 1 || global % world_size != 0)
    throw Error("--resume with " + std::to_string(world_size) + " processes: the run's global batch of " +
                std::to_string(global) + " sequences (--batch " + std::to_string(batch) + " x " + std::to_string(was) +
                " processes) does not divide evenly; use a world size that divides " + std::to_string(global));
  record["batch"] = global / world_size;
  record["world_size"] = world_size;
}

uint64_t settings_hash(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace bytelm

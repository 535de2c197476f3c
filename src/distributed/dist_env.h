// dist_env.h — the launcher's environment contract, read and checked before any network work. Torch-free.
//
// torchrun (and torch.distributed.launch, TorchX, SLURM/MPI wrappers that export the same names) describe a
// worker with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, and under torchrun
// also TORCHELASTIC_RESTART_COUNT and TORCHELASTIC_USE_AGENT_STORE. Without RANK/WORLD_SIZE, Open MPI's
// OMPI_COMM_WORLD_* and SLURM's SLURM_PROCID/SLURM_NTASKS are read instead (MASTER_ADDR/PORT must still be
// exported: MPI and SLURM are only the launchers here). With none of them the run is one process.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace bytelm {

struct DistEnv {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr;        // the store's host (required when world_size > 1)
  int master_port = 0;            // the store's port
  int restart_count = 0;          // TORCHELASTIC_RESTART_COUNT: > 0 when torchrun restarted the workers
  bool agent_store = false;       // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent hosts the store
  std::string launcher = "none";  // where the identity came from: env | mpi | slurm | none

  bool distributed() const { return world_size > 1; }
};

// Reads the contract through `getenv` (a parameter for tests). Throws Error (exit 2) naming the variable
// on bad input: non-numbers, RANK >= WORLD_SIZE, negative values, a missing MASTER_ADDR or MASTER_PORT
// with more than one process, a port outside 1..65535, LOCAL_RANK >= LOCAL_WORLD_SIZE.
DistEnv read_dist_env(const std::function<const char*(const char*)>& getenv);
DistEnv read_dist_env();  // from the process environment

// --resume at another world size: a run's record stores the per-rank batch and the world size it ran at
// ("world_size", absent = 1). The global batch (batch x world size) is what the run computes, so the
// record's batch becomes global / world, which must divide (Error otherwise, naming both). Changes the
// record in place; --batch given on the command line is then checked against the new value.
void adapt_record_to_world(nlohmann::json& record, int world_size);

// FNV-1a over a string, for comparing run settings across ranks.
uint64_t settings_hash(const std::string& text);

}  // namespace bytelm

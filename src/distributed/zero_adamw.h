// zero_adamw.h — ZeRO stage 1 (Rajbhandari et al., 2020): AdamW whose moments are sharded across ranks.
//
// The trainable parameters, laid end to end in registration order, form one flat space of N values; rank r
// owns the range [r*S, min((r+1)*S, N)) with S = ceil(N / W) (as llm.c's -z 1, but without its rule that
// every tensor divide by W: a range may cut a tensor anywhere). Each rank keeps AdamW's two moments for its
// range only, so optimiser memory per rank falls from 2N to about 2N/W values; after its update every rank
// all-gathers the parameters. The update is the same elementwise arithmetic as AdamW (adamw_foreach_update),
// so a sharded run equals an unsharded one.
//
// Deviation from the paper's communication: ZeRO reduce-scatters the gradients so each rank receives only
// its shard. Here the gradients are all-reduced whole (DataParallel::reduce_gradients) before the sharded
// update: the global gradient norm for clipping is then computed locally, and the same reduce serves both
// modes. The all-gather adds N values per step on top of the all-reduce's 2N.
//
// Checkpoints stay in the unsharded format (optimizer.safetensors as AdamW::state() names it): the moments
// are gathered for rank 0 to write, and a resumed run takes its slices from the whole file, so a run may
// resume with or without sharding and at any world size.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "distributed/process_group.h"
#include "model/checkpoint.h"
#include "optim/adamw.h"

namespace bytelm {

class ZeroAdamW {
 public:
  // lr_scales: as AdamW's (one learning-rate multiplier per parameter; empty: all 1).
  ZeroAdamW(const NamedTensors& params, const AdamWOptions& o, ProcessGroup& group,
            const std::vector<double>& lr_scales = {});

  // As AdamW::clip_step_and_clear, after the gradients were averaged over ranks: clips by the global norm
  // (the same on every rank), updates this rank's range, all-gathers the parameters, drops the gradients.
  torch::Tensor clip_step_and_clear(double lr, double max_norm);

  // Collective: the whole moments, named as AdamW::state() (every rank must call it; rank 0 saves them).
  NamedTensors gather_state();
  // Reads an unsharded optimizer.safetensors and keeps this rank's slices. Returns the file's metadata.
  std::map<std::string, std::string> load_state(const std::string& path);

  int64_t t() const { return t_; }
  void set_t(int64_t t) { t_ = t; }
  int64_t owned_values() const { return hi_ - lo_; }  // moments held here: 2 x this
  int64_t total_values() const { return n_; }

 private:
  struct Chunk {  // the part of one parameter inside this rank's range
    size_t slot;
    int64_t begin, len;  // within the parameter's flattened values
    torch::Tensor m, v;  // (len,)
  };
  // Flat (S,) buffer of this rank's range of `part(slot)`'s values, padded with zeros.
  torch::Tensor pack(const std::function<torch::Tensor(const Chunk&)>& part) const;
  // The all-gathered flat (W*S,) values of every rank's buffer.
  torch::Tensor gather(torch::Tensor mine);

  NamedTensors params_;
  std::vector<int64_t> offsets_;  // flat offset of every parameter
  std::vector<double> decays_, scales_;
  std::vector<Chunk> chunks_;
  AdamWOptions o_;
  ProcessGroup& group_;
  torch::TensorOptions opts_;  // fp32 on the group's device: the moments, the shard, the gathered parameters
  int64_t n_ = 0, shard_ = 0, lo_ = 0, hi_ = 0, t_ = 0;
};

}  // namespace bytelm

// static_decoder.h — runs a model's static-shape decoding steps (LanguageModelImpl::static_prepare /
// static_compute): eagerly, or on CUDA through one captured CUDA graph per step key, so that a generated
// byte costs one or two graph launches instead of hundreds of small kernel launches.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "model/model.h"

namespace bytelm {

class StaticDecoder {
 public:
  // graphs: capture and replay CUDA graphs (needs a CUDA build and the model on a GPU); else run eagerly.
  StaticDecoder(LanguageModelImpl& model, bool graphs);
  ~StaticDecoder();
  StaticDecoder(const StaticDecoder&) = delete;
  StaticDecoder& operator=(const StaticDecoder&) = delete;

  // Appends bytes (B) int64 on the model's device; returns the logits (B, V) for the next byte. The tensor
  // is the model's static output and is overwritten by the next call. Graphs stay valid across
  // model.start() calls with the same batch size (the model keeps its tensors); a new batch size needs a
  // new StaticDecoder.
  torch::Tensor step(const torch::Tensor& bytes);

  int64_t graphs_captured() const;

 private:
  void run(int64_t key);  // one static_compute(key): replayed graph or eager
  LanguageModelImpl& model_;
  bool graphs_;
  struct Graphs;
  std::unique_ptr<Graphs> g_;
};

// Whether a --decode mode ("auto", "graphs", "static", "dynamic") uses static steps for this model on
// this device with `batch` rows, and whether through CUDA graphs. A batch the model has no static steps
// for (BLT: more than one row) uses growing caches. Throws Error for an unknown mode, a model without
// static steps, or "graphs" without CUDA.
struct StepPlan {
  bool static_steps = false, graphs = false;
};
StepPlan plan_steps(const std::string& mode, const LanguageModelImpl& model, const torch::Device& device,
                    int64_t batch = 1);

}  // namespace bytelm

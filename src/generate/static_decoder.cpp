// static_decoder.cpp — see static_decoder.h. The CUDA graph code is compiled only when LibTorch has CUDA.
#include "generate/static_decoder.h"

#include <map>

#ifdef BYTELM_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "util/device.h"
#include "util/error.h"

namespace bytelm {

struct StaticDecoder::Graphs {
#ifdef BYTELM_CUDA
  std::map<int64_t, std::unique_ptr<at::cuda::CUDAGraph>> by_key;
#endif
  int64_t captured = 0;
};

StaticDecoder::StaticDecoder(LanguageModelImpl& model, bool graphs)
    : model_(model), graphs_(graphs), g_(std::make_unique<Graphs>()) {
#ifndef BYTELM_CUDA
  if (graphs) throw Error("CUDA graphs need a LibTorch with CUDA");
#endif
}

StaticDecoder::~StaticDecoder() = default;

int64_t StaticDecoder::graphs_captured() const { return g_->captured; }

torch::Tensor StaticDecoder::step(const torch::Tensor& bytes) {
  for (int64_t key = model_.static_prepare(bytes); key >= 0; key = model_.static_next()) run(key);
  return model_.static_logits();
}

void StaticDecoder::run(int64_t key) {
  if (!graphs_) return model_.static_compute(key);
#ifdef BYTELM_CUDA
  auto& graph = g_->by_key[key];
  if (!graph) {
    // First use of this key: capture on a side stream (graphs cannot be captured on the default stream)
    // after one eager run there (cuBLAS workspaces, autocast's bf16 weight copies). The step rewrites the
    // same cache slot from the same inputs, so the eager run and the replay below leave the same state.
    c10::cuda::device_synchronize();
    {
      c10::cuda::CUDAStreamGuard side(c10::cuda::getStreamFromPool());
      model_.static_compute(key);
      graph = std::make_unique<at::cuda::CUDAGraph>();
      graph->capture_begin();
      model_.static_compute(key);
      graph->capture_end();
    }
    c10::cuda::device_synchronize();
    ++g_->captured;
  }
  graph->replay();
#endif
}

StepPlan plan_steps(const std::string& mode, const LanguageModelImpl& model, const torch::Device& device,
                    int64_t batch) {
  StepPlan plan;
  if (mode == "dynamic") return plan;
  if (mode == "auto") {
    plan.graphs = plan.static_steps = cuda_compiled() && device.is_cuda() && model.has_static_step(batch);
    return plan;
  }
  if (mode != "static" && mode != "graphs")
    throw Error("--decode " + mode + ": expected auto, graphs, static or dynamic");
  if (batch > 1 && !model.has_static_step(batch) && model.has_static_step(1)) return plan;
  if (!model.has_static_step(batch))
    throw Error("--decode " + mode + ": " + model.config().model + " decodes with dynamic shapes only");
  plan.static_steps = true;
  plan.graphs = mode == "graphs";
  if (plan.graphs && !(cuda_compiled() && device.is_cuda()))
    throw Error("--decode graphs needs --device cuda (and a CUDA build)");
  return plan;
}

}  // namespace bytelm

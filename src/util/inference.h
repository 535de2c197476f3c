// inference.h — the settings every command that runs a model shares, declared once: device, precision,
// generation steps, the weights of single-row CPU steps, threads. Option structs inherit them
// (GenerateOptions, BenchOptions, the server's and scheduler's options, training's device/precision/
// threads), and the CLI registers their flags once (add_inference_flags, src/cli/options.cpp). Torch-free.
#pragma once
#include <string>

namespace bytelm {

struct InferenceSettings {
  std::string device = "cpu";      // cpu | cuda | cuda:N
  std::string precision = "auto";  // fp32 | bf16 (autocast) | auto = bf16 on CUDA, fp32 on the CPU
  // Per-byte generation steps after the prompt: "dynamic" (KV caches that grow), "static" (fixed-shape
  // steps, see StaticDecoder), "graphs" (static steps replayed as CUDA graphs), "auto" (graphs on CUDA where
  // the model has static steps, else dynamic).
  std::string decode = "auto";
  // Weights of single-row steps on the CPU: "fp32", or "bf16" (a bf16 copy of each weight, fp32 arithmetic;
  // half the bytes read per byte, outputs within bf16 rounding of fp32's; see model/decode_weights.h).
  std::string decode_weights = "fp32";
  int threads = 0;  // CPU threads (0 = all cores)
};

}  // namespace bytelm

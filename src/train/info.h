// info.h — `bytelm info`: parameters and FLOPs per byte by part, following the MEGABYTE paper's
// accounting (forward = 2 x matmul parameters applied per byte + attention; training = 3 x forward).
#pragma once
#include <string>
#include <vector>

namespace bytelm {

struct InfoOptions {
  std::string ckpt, config, model;
  std::vector<std::string> data;  // BLT: measure the mean patch size on this corpus (else the config's patch_size)
  bool json = false;
  bool presets = false;   // list the presets (configs/) instead
  bool markdown = false;  // with presets: the README's Markdown table
};
int run_info(const InfoOptions& opt);

}  // namespace bytelm

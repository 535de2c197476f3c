// compressors.cpp — reference rows: gzip -9, bzip2 -9 and xz -9e (the Debian tools) on exactly the held-out
// bytes the models are scored on. Compressed size includes each format's header, as a file on disk would.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "data/corpus.h"
#include "experiment/extras.h"
#include "experiment/measure.h"
#include "experiment/plan.h"
#include "experiment/runner.h"
#include "io/atomic_file.h"
#include "util/error.h"

namespace bytelm::experiment {

using json = nlohmann::json;

double compressed_bpb(const std::string& command, const std::string& bytes) {
  char path[] = "/tmp/bytelm-heldout-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) throw Error("cannot create a temporary file for " + command);
  const bool ok = ::write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size());
  ::close(fd);
  if (!ok) {
    std::remove(path);
    throw Error("cannot write a temporary file for " + command);
  }
  FILE* p = popen((command + " -c " + path + " 2>/dev/null | wc -c").c_str(), "r");
  long long size = -1;
  if (p) {
    if (std::fscanf(p, "%lld", &size) != 1) size = -1;
    pclose(p);
  }
  std::remove(path);
  if (size <= 0) throw Error("running `" + command + "` failed (is it installed?)");
  return 8.0 * double(size) / double(bytes.size());
}

void write_compressor_rows(const Plan& plan, const RunnerOptions& opt) {
  std::set<std::string> kinds;
  for (const auto& r : plan.runs) kinds.insert(r.data);
  json rows = json::array();
  for (const auto& kind : kinds) {
    Corpus corpus(plan.datasets.at(kind), plan.val_fraction);
    const std::string bytes = held_out_bytes(corpus, plan.eval.max_bytes);
    for (const char* cmd : {"gzip -9", "bzip2 -9", "xz -9e"})
      rows.push_back(
          {{"data", kind}, {"compressor", cmd}, {"bytes", int64_t(bytes.size())}, {"bpb", compressed_bpb(cmd, bytes)}});
  }
  write_file_atomic(opt.out + "/compressors.json", json{{"rows", rows}, {"provenance", provenance()}}.dump(2) + "\n");
  std::fprintf(stderr, "experiment: compressor rows in %s/compressors.json\n", opt.out.c_str());
}

}  // namespace bytelm::experiment

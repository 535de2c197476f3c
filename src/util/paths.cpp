// paths.cpp — see paths.h.
#include "util/paths.h"

#include <unistd.h>

#include <climits>
#include <filesystem>

namespace bytelm {

std::string executable_dir() {
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "";
  const std::string path(exe, size_t(n));
  return path.substr(0, path.rfind('/'));
}

std::string data_dir(const std::string& name) {
  const std::string exe = executable_dir();
  std::error_code ec;
  // Beside the binary (build tree; test binaries one level down), then PREFIX/share from PREFIX/bin.
  for (const std::string& base : {exe, exe + "/.."}) {
    const std::string dir = base + "/share/bytelm/" + name;
    if (std::filesystem::is_directory(dir, ec)) return dir;
  }
  return "";
}

std::vector<std::string> spm_module_candidates() {
  const std::string exe = executable_dir();
  if (exe.empty()) return {};
  const std::string up = exe.substr(0, exe.rfind('/'));
  return {exe + "/bytelm_spm.so", up + "/bytelm_spm.so", up + "/lib/bytelm/bytelm_spm.so"};
}

}  // namespace bytelm

// paths.h — where bytelm finds its data files (configs/, scripts/) and its SentencePiece module: relative
// to the running binary, so a build tree and an installed tree (`cmake --install`) both work and nothing
// depends on where the sources were. Torch-free.
//   build tree:  build/bytelm, build/share/bytelm/{configs,scripts} (links to the sources, made by CMake)
//   installed:   PREFIX/bin/bytelm, PREFIX/share/bytelm/{configs,scripts}, PREFIX/lib/bytelm/bytelm_spm.so
#pragma once
#include <string>
#include <vector>

namespace bytelm {

// The directory of the running executable ("" if /proc/self/exe cannot be read).
std::string executable_dir();

// The first existing directory share/bytelm/<name> beside the executable or one level up; "" if none.
std::string data_dir(const std::string& name);

// Where the SentencePiece module may be, in the order to try.
std::vector<std::string> spm_module_candidates();

}  // namespace bytelm

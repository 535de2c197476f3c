// error.h — the one error type for bad input (files, configs, flags, data) and for failures the user can
// act on (out of memory). The CLI catches bytelm::Error, prints "bytelm: error: <message>" on one line and
// exits with its code: 2 for bad input (the default), 1 for a failure during a run.
// Anything else escaping to main is a bug (exit 1, "internal error").
#pragma once
#include <stdexcept>
#include <string>

namespace bytelm {

struct Error : std::runtime_error {
  explicit Error(const std::string& message, int exit_code = 2) : std::runtime_error(message), code(exit_code) {}
  int code;
};

}  // namespace bytelm

// error.h — the one error type for bad input (files, configs, flags, data).
// The CLI catches bytelm::Error, prints "bytelm: error: <message>" on one line and exits with code 2.
// Anything else escaping to main is a bug (exit 1).
#pragma once
#include <stdexcept>
#include <string>

namespace bytelm {

struct Error : std::runtime_error {
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace bytelm

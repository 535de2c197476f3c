// format.h — numbers for people: durations and rates in progress lines, and whether stderr is a terminal.
// Torch-free.
#pragma once
#include <string>

namespace bytelm {

bool stderr_is_tty();
std::string format_duration(double seconds);  // "1h02m", "3m12s", "12.3s"
std::string format_rate(double per_second);   // "12.3k", "4.56M"

}  // namespace bytelm

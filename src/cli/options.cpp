// options.cpp — the flags every subcommand shares (see commands.h).
#include "cli/commands.h"

#include "model/config.h"

namespace bytelm::cli {

void add_device_flags(CLI::App* sub, std::string* device, std::string* precision, int* threads,
                      const std::string& threads_help) {
  sub->add_option("--device", *device, "cpu | cuda | cuda:N");
  if (precision) sub->add_option("--precision", *precision, "fp32 | bf16 (autocast) | auto = bf16 on CUDA");
  sub->add_option("--threads", *threads, threads_help)->check(CLI::NonNegativeNumber);
}

std::set<std::string> given_options(const CLI::App* sub) {
  std::set<std::string> names;
  for (const CLI::Option* o : sub->get_options())
    if (o->count() > 0 && !o->get_lnames().empty()) names.insert(o->get_lnames()[0]);
  return names;
}

const std::string& presets_footer() {
  static const std::string table = presets_table();
  return table;
}

}  // namespace bytelm::cli

// test_readme.cpp — the documentation cannot drift from the code. The README's preset table is exactly what
// `bytelm info --presets --markdown` prints. In README.md and docs/*.md: every `bytelm` command in a shell
// block names a real subcommand, flags that subcommand accepts, presets that exist and paths that exist
// (files of the repo, or files of the pinned corpus listed in scripts/data/corpus-files.txt); every repo path
// quoted in backticks exists; no page cites an issue number. The README stays a front door: <= 15,000 bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::string kRoot = BYTELM_SOURCE_DIR;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// stdout of a shell command.
std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  pclose(p);
  return out;
}

// The pages checked: README.md, then docs/*.md (the top level of docs/ only, not docs/results/).
std::vector<std::string> doc_files() {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(kRoot + "/docs"))
    if (entry.is_regular_file() && entry.path().extension() == ".md")
      files.push_back("docs/" + entry.path().filename().string());
  std::sort(files.begin(), files.end());
  files.insert(files.begin(), "README.md");
  return files;
}

// Lines of a page's ```sh blocks, with comments and line continuations resolved.
std::vector<std::string> shell_lines(const std::string& page) {
  std::vector<std::string> lines;
  std::istringstream in(page);
  std::string line;
  bool in_sh = false;
  while (std::getline(in, line)) {
    if (line.rfind("```", 0) == 0) {
      in_sh = !in_sh && line == "```sh";
      continue;
    }
    if (!in_sh) continue;
    const auto hash = line.find(" #");
    if (hash != std::string::npos) line = line.substr(0, hash);
    if (line.find_first_not_of(' ') == std::string::npos || line.find_first_not_of(' ') == line.find('#')) continue;
    lines.push_back(line.substr(line.find_first_not_of(' ')));
  }
  return lines;
}

// Shell-like words: whitespace-separated, double or single quotes grouping; [ ] | dropped (optional parts).
std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  bool any = false;
  for (char c : line) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur.push_back(c);
    } else if (c == '"' || c == '\'') {
      quote = c;
      any = true;
    } else if (c == ' ' || c == '[' || c == ']' || c == '|') {
      if (!cur.empty() || any) out.push_back(cur);
      cur.clear();
      any = false;
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty() || any) out.push_back(cur);
  return out;
}

std::set<std::string> corpus_files() {
  std::set<std::string> files;
  std::istringstream in(slurp(kRoot + "/scripts/data/corpus-files.txt"));
  for (std::string f; std::getline(in, f);) files.insert("data/corpus/" + f);
  return files;
}

bool mentions_flag(const std::string& help, const std::string& flag) {
  for (size_t at = help.find(flag); at != std::string::npos; at = help.find(flag, at + 1)) {
    const char next = at + flag.size() < help.size() ? help[at + flag.size()] : ' ';
    if (!std::isalnum(static_cast<unsigned char>(next)) && next != '-') return true;
  }
  return false;
}

using HelpCache = std::map<std::string, std::string>;  // subcommand -> its --help

// Paths a shell line names anywhere (repo files, corpus files). `where` is "FILE: line".
void check_paths(const std::vector<std::string>& w, const std::set<std::string>& corpus, const std::string& where) {
  for (const auto& word : w) {
    if (word.rfind("data/corpus/", 0) == 0 && word.size() > 12)
      EXPECT_TRUE(corpus.count(word)) << word << " is not a file of the default corpus: " << where;
    else if (word.rfind("scripts/", 0) == 0 || word.rfind("configs/", 0) == 0)
      EXPECT_TRUE(fs::exists(kRoot + "/" + word)) << word << " does not exist: " << where;
  }
}

// The presets or files after --config / --configs exist (short names resolved for the line's --model).
void check_presets(const std::vector<std::string>& w, const std::string& where) {
  std::string model;
  for (size_t i = 1; i + 1 < w.size(); ++i)
    if (w[i] == "--model") model = w[i + 1];
  const std::string prefix = model == "megabyte"      ? "mb_"
                             : model == "transformer" ? "tf_"
                             : model == "blt"         ? "blt_"
                             : model == "entropy"     ? "ent_"
                             : model == "bpe"         ? "bpe_"
                             : model == "hnet"        ? "hnet_"
                                                      : "";
  for (size_t i = 1; i + 1 < w.size(); ++i) {
    if (w[i] != "--config" && w[i] != "--configs") continue;
    for (size_t j = i + 1; j < w.size() && w[j].rfind("--", 0) != 0; ++j) {
      const std::string& name = w[j];
      EXPECT_TRUE(fs::exists(kRoot + "/" + name) || fs::exists(kRoot + "/configs/" + name + ".json") ||
                  (!prefix.empty() && fs::exists(kRoot + "/configs/" + prefix + name + ".json")))
          << "no preset or file '" << name << "': " << where;
    }
  }
}

// A `bytelm ...` line: a real subcommand, only flags its --help names, presets that exist.
void check_command(const std::vector<std::string>& w, HelpCache& help, const std::string& where) {
  std::string sub = w.size() > 1 && w[1].rfind("--", 0) != 0 ? w[1] : "";
  if ((sub == "tokenizer" || sub == "experiment") && w.size() > 2 && w[2].rfind("--", 0) != 0)
    sub += " " + w[2];  // tokenizer train|stats, experiment run|report
  if (!help.count(sub)) help[sub] = capture(std::string(BYTELM_BIN) + " " + sub + " --help");
  if (help[sub].empty()) {
    ADD_FAILURE() << "no such subcommand: " << where;
    return;
  }
  for (size_t i = 1; i < w.size(); ++i)
    if (w[i].rfind("--", 0) == 0) EXPECT_TRUE(mentions_flag(help[sub], w[i])) << w[i] << " is not a flag of: " << where;
  check_presets(w, where);
}

}  // namespace

TEST(Readme, PresetTableIsGenerated) {
  const std::string table = capture(std::string(BYTELM_BIN) + " info --presets --markdown");
  ASSERT_FALSE(table.empty());
  EXPECT_NE(slurp(kRoot + "/README.md").find(table), std::string::npos)
      << "README's preset table differs from `bytelm info --presets --markdown`:\n"
      << table;
}

TEST(Readme, CommandsNameRealFlagsPresetsAndPaths) {
  const auto corpus = corpus_files();
  ASSERT_EQ(corpus.size(), 269u);
  HelpCache help;
  int commands = 0;
  for (const auto& file : doc_files()) {
    for (const auto& line : shell_lines(slurp(kRoot + "/" + file))) {
      const auto w = words(line);
      const std::string where = file + ": " + line;
      check_paths(w, corpus, where);
      if (w.empty() || w[0] != "bytelm") continue;
      ++commands;
      check_command(w, help, where);
    }
  }
  EXPECT_GE(commands, 15);  // over README.md and docs/*.md together
}

TEST(Readme, QuotedRepoPathsExist) {
  const std::regex path(R"(`((?:src|scripts|configs|tests|cmake)/[A-Za-z0-9_./-]+)`)");
  int checked = 0;
  for (const auto& file : doc_files()) {
    const std::string page = slurp(kRoot + "/" + file);
    for (std::sregex_iterator it(page.begin(), page.end(), path), end; it != end; ++it) {
      const std::string p = (*it)[1];
      if (p.find("NAME") != std::string::npos) continue;  // a placeholder (configs/mb_NAME.json)
      const std::string f = kRoot + "/" + p;              // a file, or a module named without its extension
      EXPECT_TRUE(fs::exists(f) || fs::exists(f + ".h") || fs::exists(f + ".cpp"))
          << p << " is quoted in " << file << " but does not exist";
      ++checked;
    }
  }
  EXPECT_GE(checked, 10);  // over README.md and docs/*.md together
}

TEST(Readme, ReadmeIsAFrontDoor) {
  const auto size = fs::file_size(kRoot + "/README.md");
  EXPECT_LE(size, 15000u) << "README.md is " << size << " bytes (at most 15,000): move detail into docs/";
}

TEST(Readme, NoIssueNumbers) {
  const std::regex issue("[Ii]ssue #?[0-9]");
  for (const auto& file : doc_files()) {
    std::istringstream in(slurp(kRoot + "/" + file));
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      ++n;
      if (std::regex_search(line, issue)) ADD_FAILURE() << file << ":" << n << " cites an issue number: " << line;
    }
  }
}

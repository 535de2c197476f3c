// test_checkpoint.cpp — checkpoints checked to the letter: a config that does not belong to its weights is
// refused before the model is built, duplicate keys and deep nesting in config.json are refused, NaN weights
// are refused, and a deterministic mutation run over config.json and the weights' header ends every case in
// a clean load or a bytelm::Error (never another exception, never a crash).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "common/fuzz_cases.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "model/factory.h"
#include "util/error.h"
#include "util/text.h"

namespace bytelm {
namespace {

namespace fs = std::filesystem;

class Checkpoints : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("bytelm_ckpt_" + std::to_string(getpid()))).string();
    fs::remove_all(dir_);
    torch::manual_seed(0);
    save_model(dir_ + "/good", *make_model(load_config("tiny", "megabyte")));
    config_ = read_file(dir_ + "/good/config.json");
    weights_ = read_file(dir_ + "/good/model.safetensors");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A copy of the good checkpoint with config.json and model.safetensors replaced.
  std::string variant(const std::string& name, const std::string& config, const std::string& weights) {
    const std::string d = dir_ + "/" + name;
    fs::create_directories(d);
    write_file_atomic(d + "/config.json", config);
    write_file_atomic(d + "/model.safetensors", weights);
    return d;
  }
  std::string error_loading(const std::string& d) {
    try {
      load_model(d);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  std::string with_config(const std::string& name, const nlohmann::json& j) {
    return error_loading(variant(name, j.dump(), weights_));
  }

  std::string dir_, config_, weights_;
};

TEST_F(Checkpoints, TheGoodOneLoads) { EXPECT_EQ(error_loading(dir_ + "/good"), ""); }

TEST_F(Checkpoints, AConfigLargerThanItsWeightsIsRefusedBeforeBuilding) {
  auto j = nlohmann::json::parse(config_);
  j["global"]["width"] = j["global"]["width"].get<int64_t>() * 400;  // would allocate gigabytes
  j["global"]["heads"] = 1;
  const std::string e = with_config("wide", j);
  EXPECT_NE(e.find("does not belong to these weights"), std::string::npos) << e;
  EXPECT_NE(e.find("config.json"), std::string::npos) << e;
}

TEST_F(Checkpoints, ConfigRangesNameTheirKey) {
  auto j = nlohmann::json::parse(config_);
  j["local"]["mlp_hidden"] = int64_t(1) << 31;
  EXPECT_NE(with_config("mlp", j).find("local.mlp_hidden"), std::string::npos);
}

TEST_F(Checkpoints, DuplicateKeysAndDeepNestingAreRefused) {
  std::string dup = config_;
  dup.insert(dup.find('{') + 1, "\"norm_eps\": 0.5, ");
  dup.insert(dup.rfind('}'), ", \"norm_eps\": 0.25");
  const std::string e = error_loading(variant("dup", dup, weights_));
  EXPECT_NE(e.find("duplicate key 'norm_eps'"), std::string::npos) << e;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_NE(error_loading(variant("deep", deep, weights_)).find("nested deeper"), std::string::npos);
  EXPECT_NE(error_loading(variant("nul", config_ + std::string(1, '\0') + "{}", weights_)).find("NUL byte"),
            std::string::npos);
}

TEST_F(Checkpoints, WeightsOfAnotherModelAreRefused) {
  const std::string tf = dir_ + "/tf";
  save_model(tf, *make_model(load_config("tiny", "transformer")));
  const std::string e = error_loading(variant("mixed", read_file(tf + "/config.json"), weights_));
  EXPECT_NE(e.find("holds a megabyte model's weights"), std::string::npos) << e;
}

TEST_F(Checkpoints, NanWeightsAreRefused) {
  auto model = make_model(load_config("tiny", "megabyte"));
  {
    torch::NoGradGuard no_grad;
    model->parameters()[0].view(-1)[3] = std::nan("");
  }
  save_model(dir_ + "/nan", *model);
  const std::string e = error_loading(dir_ + "/nan");
  EXPECT_NE(e.find("1 NaN or infinite values"), std::string::npos) << e;
}

// Mutations of one kind applied to `text`: flip a byte, replace a digit, cut, insert a JSON fragment or
// duplicate a slice.
std::string mutate(std::string text, std::mt19937& rng) {
  static const char* fragments[] = {"\"",
                                    "{",
                                    "}",
                                    "[",
                                    "]",
                                    ",",
                                    ":",
                                    "-1",
                                    "1e308",
                                    "null",
                                    "\"x\":1,",
                                    "9999999999",
                                    "\xff",
                                    "\x1b[31m",
                                    "0.0",
                                    "true",
                                    "\"global\":{},"};
  auto at = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n)(rng); };
  switch (at(4)) {
    case 0:
      if (!text.empty()) text[at(text.size() - 1)] ^= char(1 << at(7));
      break;
    case 1: {
      const size_t i = text.find_first_of("0123456789", at(text.size()));
      if (i != std::string::npos) text[i] = char('0' + at(9));
      break;
    }
    case 2:
      text.resize(at(text.size()));
      break;
    case 3:
      text.insert(at(text.size()), fragments[at(sizeof fragments / sizeof *fragments - 1)]);
      break;
    default: {
      const size_t a = at(text.size()), n = at(std::min<size_t>(40, text.size() - a));
      text.insert(at(text.size()), text.substr(a, n));
    }
  }
  return text;
}

// Either loads, or throws bytelm::Error whose printed line is one line; anything else fails the test.
void expect_clean_outcome(const std::string& d, const std::string& label) {
  try {
    load_model(d);
  } catch (const Error& e) {
    EXPECT_EQ(printable_line(e.what()).find('\n'), std::string::npos) << label;
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": not a bytelm::Error: " << e.what();
  }
}

TEST_F(Checkpoints, MutatedConfigsAndHeadersLoadOrFailCleanly) {
  std::mt19937 rng(1234);
  const uint64_t header = *reinterpret_cast<const uint64_t*>(weights_.data());  // little-endian hosts
  const std::string head = weights_.substr(0, 8 + header), body = weights_.substr(8 + header);
  for (int i = 0; i < bytelm::testing::fuzz_cases(250); ++i) {
    std::string config = config_;
    for (int k = 0, n = 1 + i % 3; k < n; ++k) config = mutate(config, rng);
    expect_clean_outcome(variant("c" + std::to_string(i % 8), config, weights_), "config case " + std::to_string(i));
  }
  for (int i = 0; i < bytelm::testing::fuzz_cases(250); ++i) {
    // Header JSON mutated (its length field kept or adjusted), or the length field itself changed.
    std::string json = head.substr(8);
    for (int k = 0, n = 1 + i % 2; k < n; ++k) json = mutate(json, rng);
    uint64_t len = json.size();
    if (i % 10 == 0) len ^= uint64_t(1) << (i % 40);
    std::string file(reinterpret_cast<const char*>(&len), 8);
    expect_clean_outcome(variant("w" + std::to_string(i % 8), config_, file + json + body),
                         "header case " + std::to_string(i));
  }
}

}  // namespace
}  // namespace bytelm

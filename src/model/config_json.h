// config_json.h — what config.cpp and config_blt.cpp (BLT's Hugging Face layout) share: typed reads of
// JSON keys with one-line errors, stack validation, and the BLT layout's entry points. Internal to
// src/model; users include config.h.
#pragma once
#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace bytelm {

// j[key] as an integer (fallback when absent and not required); Error naming the key otherwise.
int64_t get_int(const nlohmann::json& j, const char* key, int64_t fallback, bool required);
// j[key] as a number, fallback when absent; Error naming the key when not a number.
double get_num(const nlohmann::json& j, const char* key, double fallback);
// Error naming the first key of j not in `allowed` (where: " in 'name'" for the message).
void check_keys(const nlohmann::json& j, const std::set<std::string>& allowed, const std::string& where);
// Error naming name.field for a stack's out-of-range layers, width, heads, rope_theta or mlp_hidden.
void validate_stack(const StackConfig& s, const std::string& name);

// BLT in Hugging Face's BltConfig layout (config_blt.cpp).
ModelConfig blt_from_hf_json(const nlohmann::json& j);
nlohmann::json blt_to_hf_json(const ModelConfig& c);
void validate_blt(const ModelConfig& c);

}  // namespace bytelm

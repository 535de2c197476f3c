// config_json.h — what config.cpp, config_blt.cpp (BLT's Hugging Face layout) and config_hnet.cpp share: typed reads of
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

// A stack's JSON object {layers, width, heads, mlp_hidden, rope_theta} (rope_theta defaults to default_theta).
StackConfig stack_from_json(const nlohmann::json& j, const std::string& name, double default_theta);
nlohmann::json stack_to_json(const StackConfig& s);
// Attention (q, k, v, o) and SwiGLU (gate, up, down) matrices of a stack: every block of every model has them.
double stack_matrix_params(const StackConfig& s);

// H-Net (config_hnet.cpp).
ModelConfig hnet_from_json(const nlohmann::json& j);
nlohmann::json hnet_to_json(const ModelConfig& c);
void validate_hnet(const ModelConfig& c);
double hnet_min_params(const ModelConfig& c);

// BLT in Hugging Face's BltConfig layout (config_blt.cpp).
ModelConfig blt_from_hf_json(const nlohmann::json& j);
nlohmann::json blt_to_hf_json(const ModelConfig& c);
void validate_blt(const ModelConfig& c);

}  // namespace bytelm

// The one in-memory tree behind `./bin/train --config`: a YAML file (yaml-cpp) or a JSON file
// (nlohmann/json) becomes the same JSON tree, which one validator (run_config.h) reads.
//
// YAML scalars are typed as microDL's PyYAML (YAML 1.1) types them, so its configs mean the same
// here: true/false/yes/no/on/off (any case PyYAML accepts) are booleans, ~ / null / an empty value
// are null, decimal integers are integers, decimal and exponent numbers (1.0e-5, and also 1e-5,
// which PyYAML leaves a string) are numbers (.inf and .nan are refused: a config needs finite
// numbers); a quoted scalar is always a string.
// Anchors and aliases resolve to copies; a mapping key given twice is an error (PyYAML keeps the
// last one silently, which hides typos).
//
// In JSON too a key given twice in one object is an error ("run.json:8: trainer.max_epochs is
// given twice"), where nlohmann/json and Python would keep the last one.
//
// Syntax errors are UsageErrors naming the file and the line ("run.yml:12: ..."). The syntax is
// chosen by the extension (.yml / .yaml: YAML, anything else: JSON).
#pragma once

#include <string>

namespace cyclone::train {

enum class ConfigSyntax { kJson, kYaml };

ConfigSyntax config_syntax_of(const std::string& path);

// The tree of `text` as compact JSON text with sorted keys (one canonical form, so two files
// holding the same config give the same string). `origin` names the file in errors.
std::string config_text_to_json(const std::string& text, ConfigSyntax syntax,
                                const std::string& origin);

}  // namespace cyclone::train

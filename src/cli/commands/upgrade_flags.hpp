// Flags and report shared by `ferry upgrade` and `ferry unpack`: site values, helm and
// kubectl, the upgrade modes; the values, check and upgrade parts of their report.
// (Defined in upgrade.cpp.)
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "unpack.hpp"

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace ferry::cli {

class Output;

struct UpgradeFlags {
  std::vector<std::string> values;
  std::vector<std::string> set;
  std::vector<std::string> set_file;
  bool reuse_values = false;
  std::string helm = "helm";
  std::string kubectl = "kubectl";
  std::string kubeconfig;
  std::string kube_context;
  bool plan = false;
  bool dry_run = false;
  bool atomic = false;
  bool pin_digests = false;
  bool create_pull_secrets = false;
};

// Adds the site value flags (--values, --set, --set-file, --reuse-values), the tool flags
// (--helm, --kubectl, --kubeconfig, --kube-context) and --plan, --dry-run, --atomic,
// --pin-digests, --create-pull-secrets. `dry_run_help` says what --dry-run does for this
// command.
void add_upgrade_flags(CLI::App& cmd, UpgradeFlags& flags, const char* dry_run_help);

// Copies the flags into `options` (site values, tools, modes).
void apply_upgrade_flags(const UpgradeFlags& flags, UnpackOptions& options);

// The values, check and upgrade parts of a result: text lines on `out`, or JSON members
// ("values", "check", "upgrade") added to `json`. No site value appears, except the site
// values of keys the image overlay overrides (image locations).
void print_stages(const UnpackResult& result, const UnpackOptions& options, Output& out);
void add_stages_json(const UnpackResult& result, nlohmann::json& json);

} // namespace ferry::cli

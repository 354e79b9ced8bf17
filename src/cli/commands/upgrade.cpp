// ferry upgrade (stage 4 of unpack, with the values it needs), and the flags and report it
// shares with ferry unpack.
// SPDX-License-Identifier: Apache-2.0
#include "check.hpp"
#include "unpack.hpp"

#include "cli/commands/commands.hpp"
#include "cli/commands/registry_flags.hpp"
#include "cli/commands/trust_flags.hpp"
#include "cli/commands/upgrade_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace ferry::cli {

namespace {

using nlohmann::json;

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

const char* status_name(ReleaseOutcome::Status status) {
  switch (status) {
  case ReleaseOutcome::Status::upgraded:
    return "upgraded";
  case ReleaseOutcome::Status::already_done:
    return "already-done";
  case ReleaseOutcome::Status::planned:
    return "planned";
  case ReleaseOutcome::Status::dry_run:
    return "dry-run";
  }
  return "unknown";
}

std::string site_summary(const ReleaseValuesReport& r) {
  std::vector<std::string> parts;
  if (!r.live_values.empty()) parts.push_back("live values " + r.live_values);
  for (const auto& f : r.site_files) parts.push_back("--values " + f);
  if (!r.set_keys.empty()) parts.push_back("--set " + joined(r.set_keys));
  if (!r.set_file_keys.empty()) parts.push_back("--set-file " + joined(r.set_file_keys));
  return joined(parts);
}

} // namespace

void add_upgrade_flags(CLI::App& cmd, UpgradeFlags& flags, const char* dry_run_help) {
  // One value per flag, as helm takes them (a later BUNDLE argument must not be swallowed).
  cmd.add_option("--values", flags.values,
                 "Site values file for a release: RELEASE=FILE (repeatable; later files win; used where it is)")
      ->allow_extra_args(false);
  cmd.add_option("--set", flags.set,
                 "Site value: RELEASE:KEY=VALUE[,KEY=VALUE] in helm's --set syntax (repeatable; visible in the process "
                 "list: give secrets with --set-file or --values)")
      ->allow_extra_args(false);
  cmd.add_option("--set-file", flags.set_file, "Site value from a file's content: RELEASE:KEY=FILE (repeatable)")
      ->allow_extra_args(false);
  cmd.add_flag("--reuse-values", flags.reuse_values,
               "Start from the live releases' values (helm get values), below --values and --set");
  cmd.add_option("--helm", flags.helm, "helm 3 to run (default: helm from $PATH)");
  cmd.add_option("--kubectl", flags.kubectl, "kubectl to run (default: kubectl from $PATH)");
  cmd.add_option("--kubeconfig", flags.kubeconfig, "kubeconfig for helm and kubectl (default: theirs)");
  cmd.add_option("--kube-context", flags.kube_context, "Context of the kubeconfig to use");
  cmd.add_flag("--plan", flags.plan, "Print what every stage would do and change nothing (runs no helm or kubectl)");
  cmd.add_flag("--dry-run", flags.dry_run, dry_run_help);
  cmd.add_flag("--atomic", flags.atomic, "helm --atomic for every release: roll a failed upgrade back at once");
  cmd.add_flag("--pin-digests", flags.pin_digests,
               "Pin images to their bundle digests where the values can hold a digest");
  cmd.add_flag("--create-pull-secrets", flags.create_pull_secrets,
               "Create missing image pull secrets the releases name, from --username/--password-stdin (the nodes "
               "pull with these credentials)");
}

void apply_upgrade_flags(const UpgradeFlags& flags, UnpackOptions& options) {
  options.site.values = flags.values;
  options.site.set = flags.set;
  options.site.set_file = flags.set_file;
  options.site.reuse_values = flags.reuse_values;
  options.tools.helm = flags.helm;
  options.tools.kubectl = flags.kubectl;
  options.tools.kubeconfig = flags.kubeconfig;
  options.tools.kube_context = flags.kube_context;
  options.plan = flags.plan;
  options.dry_run = flags.dry_run;
  options.atomic = flags.atomic;
  options.pin_digests = flags.pin_digests;
  options.create_pull_secrets = flags.create_pull_secrets;
}

void print_stages(const UnpackResult& result, const UnpackOptions& options, Output& out) {
  out.result(fmt::format("values     for {}", result.registry));
  for (const auto& r : result.values) {
    out.result(fmt::format("  {} (chart {}): {} value{} rewritten, {} skipped", r.name, r.chart, r.changes.size(),
                           r.changes.size() == 1 ? "" : "s", r.skipped.size()));
    if (const std::string site = site_summary(r); !site.empty()) out.result("    site values: " + site);
    if (!r.required.empty()) out.result("    required site keys: " + joined(r.required));
    for (const auto& c : r.changes) {
      out.result(fmt::format("    {}: {} -> {}  ({})", c.path, c.old_value.empty() ? "\"\"" : c.old_value, c.new_value,
                             c.detector));
    }
    for (const auto& o : r.overrides) {
      out.result(fmt::format("    overrides the site's {}: {} -> {}", o.key, o.site_value, o.overlay_value));
    }
    for (const auto& s : r.skipped) out.result(fmt::format("    skipped {}: {}  ({})", s.path, s.value, s.reason));
    for (const auto& b : r.by_rules) {
      out.result(fmt::format("    placed by rule {} ({} was its registry): {}", b.rule, b.path, b.image));
    }
    for (const auto& u : r.unplaced) out.result("    no value places " + u);
  }
  if (result.check) {
    for (const auto& r : result.check->releases) {
      out.result(fmt::format("check      {}: {} rendered image{} from the bundle under {}", r.name, r.images.size(),
                             r.images.size() == 1 ? "" : "s", result.registry));
    }
  } else if (!result.check_skipped.empty()) {
    out.result("check      skipped: " + result.check_skipped);
  }
  if (!result.upgrade) return;
  const UpgradeResult& u = *result.upgrade;
  out.result(std::string("upgrade    ") + (options.plan ? "plan (nothing was run; the values files named are temporary)"
                                          : options.dry_run ? "dry run (nothing was changed)"
                                                            : "done"));
  for (const auto& c : u.preflight_commands) out.result("  pre-flight: " + c);
  for (const auto& r : u.releases) {
    std::string line = "  " + r.name + ": " + status_name(r.status);
    if (r.revision > 0) line += ", revision " + std::to_string(r.revision);
    out.result(line);
    if (options.plan) {
      for (const auto& c : r.commands) out.result("    " + c);
    }
    if (!r.rollback.empty()) out.result("    rollback: " + r.rollback);
    for (const auto& image : r.foreign_images) out.result("    pod image not from " + result.registry + ": " + image);
  }
  if (!u.state_file.empty() && !options.plan && !options.dry_run) out.result("  state file: " + u.state_file.string());
}

void add_stages_json(const UnpackResult& result, json& doc) {
  json releases = json::array();
  for (const auto& r : result.values) {
    json overrides = json::array();
    for (const auto& o : r.overrides) {
      overrides.push_back({{"key", o.key}, {"site", o.site_value}, {"overlay", o.overlay_value}});
    }
    releases.push_back({{"name", r.name},
                        {"namespace", r.namespace_name},
                        {"chart", r.chart},
                        {"changes", changes_json(r.changes)},
                        {"skipped", skipped_json(r.skipped)},
                        {"unplaced", r.unplaced},
                        {"placedByRules", by_rules_json(r.by_rules)},
                        {"overrides", overrides},
                        {"required", r.required},
                        {"site",
                         {{"values", r.site_files},
                          {"setKeys", r.set_keys},
                          {"setFileKeys", r.set_file_keys},
                          {"liveValues", r.live_values.empty() ? json(nullptr) : json(r.live_values)}}}});
  }
  doc["values"] = releases;

  if (result.check) {
    json checked = json::array();
    for (const auto& r : result.check->releases) {
      checked.push_back({{"name", r.name}, {"images", r.images.size()}, {"ok", r.ok()}});
    }
    doc["check"] = {{"ran", true}, {"releases", checked}};
  } else {
    doc["check"] = {{"ran", false},
                    {"skipped", result.check_skipped.empty() ? json(nullptr) : json(result.check_skipped)}};
  }

  if (!result.upgrade) {
    doc["upgrade"] = nullptr;
    return;
  }
  json upgraded = json::array();
  for (const auto& r : result.upgrade->releases) {
    upgraded.push_back({{"name", r.name},
                        {"status", status_name(r.status)},
                        {"revision", r.revision},
                        {"commands", r.commands},
                        {"rollback", r.rollback},
                        {"foreignImages", r.foreign_images}});
  }
  doc["upgrade"] = {{"stateFile", result.upgrade->state_file.string()},
                    {"preflight", result.upgrade->preflight_commands},
                    {"releases", upgraded}};
}

namespace {

struct CommandFlags : TrustFlags {
  std::string bundle;
  std::string registry;
  std::string state_dir;
  std::string username;
  bool password_stdin = false;
  std::string password_file;
  UpgradeFlags upgrade;
};

void run(const CommandFlags& flags, Output& out) {
  UnpackOptions options;
  options.bundles = {flags.bundle}; // any volume of a split bundle will do: each carries the charts
  options.registry = flags.registry;
  options.trust = trust_options(flags);
  RegistryFlags credentials;
  credentials.username = flags.username;
  credentials.password_stdin = flags.password_stdin;
  credentials.password_file = flags.password_file;
  options.client = client_options(credentials);
  options.state_dir = flags.state_dir;
  options.verify = false; // ferry.json and the charts are checked against the signature as they are read
  options.push = false;
  options.check = false;
  apply_upgrade_flags(flags.upgrade, options);
  const UnpackResult r = unpack_bundle(options, out, out);
  out.finish_progress();
  if (out.json()) {
    json doc = {{"bundle", flags.bundle},
                {"bundleId", r.bundle_id},
                {"registry", r.registry},
                {"plan", options.plan},
                {"dryRun", options.dry_run}};
    add_stages_json(r, doc);
    print_json(out, doc);
    return;
  }
  out.result(fmt::format("{}: bundle {} for {}", flags.bundle, r.bundle_name, r.registry));
  print_stages(r, options, out);
}

} // namespace

void add_upgrade(CLI::App& app, CommandRun& run_command) {
  auto flags = std::make_shared<CommandFlags>();
  auto* cmd = app.add_subcommand("upgrade", "Upgrade the bundle's releases with helm, their images pointed at the "
                                            "internal registry (after ferry push)");
  cmd->add_option("bundle", flags->bundle, "Bundle file (.tar.zst), or any one volume of a split bundle")->required();
  cmd->add_option("--registry", flags->registry, "Internal registry the images were pushed to: HOST[:PORT][/PREFIX]")
      ->required();
  add_trust_flags(*cmd, *flags, "Trusted public key; repeat for several (any of them may have signed)");
  add_upgrade_flags(*cmd, flags->upgrade, "Run pre-flight and helm upgrade --dry-run; change nothing");
  cmd->add_option("--state-dir", flags->state_dir,
                  "Where the upgrade state is kept (default $XDG_STATE_HOME/ferry or ~/.local/state/ferry)");
  cmd->add_option("--username", flags->username, "Registry user name for --create-pull-secrets");
  cmd->add_flag("--password-stdin", flags->password_stdin,
                "Read the registry password for --create-pull-secrets from standard input");
  cmd->add_option("--password-file", flags->password_file,
                  "Read it from the first line of this file (mode 0600); without either, from $FERRY_PASSWORD");
  cmd->footer("Values, lowest precedence first: the bundle's, the live release's (--reuse-values), --values files,\n"
              "--set / --set-file, then the image overlay. Keys a release requires (set: KEY: \"\" in the manifest)\n"
              "must be given a value. Runs helm upgrade --install per release in order; a failure stops with the\n"
              "rollback command (exit 5); a re-run skips the releases already upgraded for this bundle.");
  cmd->callback([flags, &run_command] { run_command = [flags](Output& out) { run(*flags, out); }; });
}

} // namespace ferry::cli

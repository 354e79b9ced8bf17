// The upgrade stage (DESIGN §4 step 4): helm upgrade --install per release, in order, with
// pre-flight checks, CRDs, a state file for re-runs, and a report of the images the
// release's pods run. helm and kubectl are child processes (argv, never a shell).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/log.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

// How helm and kubectl are reached; the kube flags are passed through to both
// (helm --kubeconfig/--kube-context, kubectl --kubeconfig/--context).
struct KubeTools {
  std::string helm = "helm";       // a path, or a name looked up in $PATH
  std::string kubectl = "kubectl";
  std::string kubeconfig;          // empty: the tools' default ($KUBECONFIG, ~/.kube/config)
  std::string kube_context;
};

// One release, ready to run: everything on disk.
struct ReleasePlan {
  std::string name;
  std::string namespace_name;
  std::string chart_name;
  std::string chart_version;
  std::filesystem::path chart_archive; // the chart .tgz from the bundle
  // -f files in precedence order, lowest first: bundle values, live values (reuse), site
  // files, the --set file ferry wrote, the image overlay last.
  std::vector<std::filesystem::path> values_files;
  bool wait = true;
  std::string timeout = "5m"; // helm's --timeout (Go duration)
  bool atomic = false;
  bool create_namespace = false;
  bool upgrade_crds = false;  // apply the chart's crds/ with kubectl apply --server-side first
  std::vector<std::string> image_pull_secrets; // must exist in the namespace (pre-flight)
};

struct UpgradeOptions {
  KubeTools tools;
  std::vector<ReleasePlan> releases; // run in this order
  // Identifies what is being installed (the bundle's ferry.json digest): the state file
  // records each release done for it, and a re-run skips those.
  std::string bundle_id;
  std::filesystem::path state_dir;   // empty: default_state_dir() (image_push.hpp)
  bool plan = false;    // print every command it would run; run nothing (no cluster needed)
  bool dry_run = false; // pre-flight, then helm upgrade --dry-run; the state file is not touched
  // The internal registry (HOST[:PORT][/PREFIX]): after each release, images its pods run
  // that are not under it are reported.
  std::string registry;
  // Docker config JSON ({"auths":{...}}) to create missing image pull secrets from
  // (a kubernetes.io/dockerconfigjson Secret handed to `kubectl create -f -` on standard
  // input); empty: a missing secret is a pre-flight failure. Never in an argv, a log line,
  // an error message or the state file.
  std::string pull_secret_dockerconfigjson;
  // helm gets its --timeout (twice that with --atomic, whose rollback waits again) plus
  // this margin; a helm still running then is stopped (SIGTERM, SIGKILL 5 s later) and
  // the release fails.
  std::chrono::milliseconds helm_timeout_margin = std::chrono::minutes(2);
};

struct ReleaseOutcome {
  enum class Status { upgraded, already_done, planned, dry_run };
  std::string name;
  Status status = Status::planned;
  std::vector<std::string> commands;       // the argv of each command run or planned, shell-quoted for display
  std::vector<std::string> foreign_images; // images of the release's pods not under UpgradeOptions::registry
  std::string rollback;                    // the command that undoes this release's upgrade
  std::int64_t revision = 0;               // the release's revision after the upgrade (0: unknown or not run)
};

struct UpgradeResult {
  std::vector<ReleaseOutcome> releases;       // one per UpgradeOptions::releases, same order
  std::vector<std::string> preflight_commands; // shell-quoted, run or planned before any release
  std::filesystem::path state_file;            // empty when no bundle_id was given
};

// Runs the plan. Releases the state file lists as done for bundle_id are skipped
// (already_done), in every mode. Pre-flight first, for every remaining release before
// any upgrade: helm runs (helm version), the cluster answers (kubectl version), each
// namespace exists (or create_namespace), each image pull secret exists (or is created
// when pull_secret_dockerconfigjson is given); every problem found is listed in one
// core::Error with ExitCode::upgrade. Then, per release in order: the current revision
// (helm status, for the rollback command), CRDs if asked (kubectl apply --server-side),
// `helm upgrade --install NAME CHART -n NS -f … [--create-namespace] [--wait] --timeout T
// [--atomic] [--dry-run] -o json`, the state file updated (atomically), the images of
// the release's pods listed (kubectl get pods -l app.kubernetes.io/instance=NAME).
// helm's standard error goes to `log` line by line while it runs. The kube flags go to
// every helm and kubectl call.
// A failure stops the run: core::Error with ExitCode::upgrade naming the release, helm's
// output (its last lines) and, in the hint, the rollback command (helm rollback NAME
// REVISION -n NS for an upgrade, helm uninstall NAME -n NS for a first install); later
// releases are not run. plan runs no program and needs no cluster; plan and dry_run
// never write the state file. A bad release (empty name, unreadable chart or values
// file, bad timeout) is a UsageError before anything runs; missing helm/kubectl is a
// UsageError naming --helm/--kubectl.
UpgradeResult run_upgrade(const UpgradeOptions& options, core::LogSink& log);

// "helm upgrade --install 'my rel' …": argv as a copy-pasteable shell line.
std::string shell_quote(const std::vector<std::string>& argv);

} // namespace ferry

// ferry push (stage 2 of unpack) and ferry unpack (every isolated-side stage).
// SPDX-License-Identifier: Apache-2.0
#include "image_push.hpp"
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
#include <string>
#include <vector>

namespace ferry::cli {

namespace {

std::string joined(const std::vector<std::string>& files) {
  std::string out;
  for (const auto& f : files) out += (out.empty() ? "" : ", ") + f;
  return out;
}

struct PushFlags : TrustFlags {
  std::vector<std::string> bundles;
  std::string registry;
  bool dry_run = false;
  bool partial = false; // push only
  std::string state_dir;
  RegistryFlags connection;
};

// The flags push and unpack share; --dry-run is each command's own.
void add_target_flags(CLI::App& cmd, PushFlags& flags) {
  cmd.add_option("bundle", flags.bundles, "Bundle file (.tar.zst), or volumes of a split bundle (any order)")->required();
  cmd.add_option("--registry", flags.registry, "Target: HOST[:PORT][/PREFIX]")->required();
  add_trust_flags(cmd, flags, "Trusted public key; repeat for several (any of them may have signed)");
  cmd.get_option("--pubkey")->allow_extra_args(false); // one key per flag: the files follow
  add_registry_flags(cmd, flags.connection, "the target registry");
  cmd.add_option("--state-dir", flags.state_dir,
                 "Where the push journal (and unpack's upgrade state) is kept (default $XDG_STATE_HOME/ferry or "
                 "~/.local/state/ferry)");
}

registry::ClientOptions push_client_options(const RegistryFlags& connection) {
  registry::ClientOptions client = client_options(connection);
  // Up to 2 x -j uploads run at once (-j streaming, -j finishing), each holding one
  // chunk in memory to resume from: 8 MiB chunks keep that near 64 MiB at -j 4.
  if (connection.chunk_size.empty()) client.chunk_size = 8ull << 20;
  return client;
}

nlohmann::json push_json(const PushResult& r) {
  nlohmann::json artifacts = nlohmann::json::array();
  for (const auto& a : r.artifacts) {
    artifacts.push_back({{"kind", a.kind}, {"source", a.source}, {"target", a.target}, {"digest", a.digest.str()}});
  }
  nlohmann::json waiting = nlohmann::json::array();
  for (const auto& w : r.waiting) {
    waiting.push_back({{"kind", w.kind}, {"source", w.source}, {"target", w.target}, {"volumes", w.volumes},
                       {"volumeFiles", w.volume_names}});
  }
  return {{"dryRun", r.dry_run},
          {"signature", {{"keyId", r.signature.key_id},
                         {"verified", r.signature.status == bundle::SignatureCheck::Status::verified}}},
          {"blobs", {{"uploaded", r.blobs_uploaded}, {"uploadedBytes", r.bytes_uploaded},
                     {"present", r.blobs_present}, {"presentBytes", r.bytes_present},
                     {"mounted", r.blobs_mounted}}},
          {"manifests", {{"pushed", r.manifests_pushed}, {"present", r.manifests_present}}},
          {"journal", r.journal.string()},
          {"readWholeBundle", r.read_whole_bundle},
          {"journalEntriesBefore", r.journal_entries},
          {"artifacts", artifacts},
          {"waiting", waiting},
          {"volumes", given_files_json(r.files)},
          {"staging", {{"dir", r.staging.string()}, {"stagedBytes", r.staged_bytes}, {"joinedBlobs", r.joined_blobs}}},
          {"omitted", {{"blobs", r.omitted_blobs}, {"mounted", r.omitted_mounted}}},
          {"requests", r.transfer.requests},
          {"retries", r.transfer.retries}};
}

void print_push(const PushResult& r, const std::string& bundle, const std::string& target, Output& out) {
  const char* verb = r.dry_run ? "would push" : "pushed";
  out.result(fmt::format("{}: {} {}", bundle, r.dry_run ? "dry run, nothing pushed to" : "pushed to", target));
  out.result(fmt::format("signature  {}", signature_text(r.signature)));
  out.result(fmt::format("blobs      {} {} ({}), {} already there ({}), {} mounted", verb, r.blobs_uploaded,
                         human_bytes(r.bytes_uploaded), r.blobs_present, human_bytes(r.bytes_present), r.blobs_mounted));
  out.result(fmt::format("manifests  {} {}, {} already there", verb, r.manifests_pushed, r.manifests_present));
  if (r.transfer.retries > 0) {
    out.result(fmt::format("retries    {} of {} requests to the target were sent again", r.transfer.retries,
                           r.transfer.requests));
  }
  if (r.omitted_blobs > 0) {
    out.result(fmt::format("omitted    {} blob{} the base has: all in the target ({} {} from other repositories)",
                           r.omitted_blobs, r.omitted_blobs == 1 ? "" : "s", r.omitted_mounted,
                           r.dry_run ? "would be mounted" : "mounted"));
  }
  for (const auto& a : r.artifacts) out.result(fmt::format("  {:<6} {}", a.kind, a.target));
  print_given_files(out, r.files, "read");
  if (r.joined_blobs > 0) {
    out.result(fmt::format("pieces     {} blob{} larger than a volume pushed from staged pieces", r.joined_blobs,
                           r.joined_blobs == 1 ? "" : "s"));
  }
  if (r.waiting.empty()) return;
  out.result(fmt::format("waiting    {} (--partial): their blobs come with volumes not given yet", r.waiting.size()));
  for (const auto& w : r.waiting) {
    std::string volumes;
    for (const auto& v : w.volume_names) volumes += (volumes.empty() ? "" : ", ") + v;
    out.result(fmt::format("  {:<6} {}  needs {}", w.kind, w.target, volumes));
  }
}

void run_push(const PushFlags& flags, Output& out) {
  PushOptions options;
  options.bundles = {flags.bundles.begin(), flags.bundles.end()};
  options.target = PushTarget::parse(flags.registry);
  options.trust = trust_options(flags);
  options.client = push_client_options(flags.connection);
  options.dry_run = flags.dry_run;
  options.state_dir = flags.state_dir;
  options.jobs = flags.connection.jobs;
  options.partial = flags.partial;
  const PushResult r = push_bundle(options, out, out);
  out.finish_progress();
  if (out.json()) {
    nlohmann::json doc = push_json(r);
    doc["bundle"] = flags.bundles.front();
    doc["bundleFiles"] = flags.bundles;
    doc["registry"] = options.target.str();
    print_json(out, doc);
    return;
  }
  print_push(r, joined(flags.bundles), options.target.str(), out);
}

struct UnpackFlags : PushFlags {
  bool skip_push = false;
  bool skip_check = false;
  bool skip_upgrade = false;
  UpgradeFlags upgrade;
};

void run_unpack(const UnpackFlags& flags, Output& out) {
  UnpackOptions options;
  options.bundles = {flags.bundles.begin(), flags.bundles.end()};
  options.registry = flags.registry;
  options.trust = trust_options(flags);
  options.client = push_client_options(flags.connection);
  options.jobs = flags.connection.jobs;
  options.state_dir = flags.state_dir;
  options.push = !flags.skip_push;
  options.check = !flags.skip_check;
  options.upgrade = !flags.skip_upgrade;
  apply_upgrade_flags(flags.upgrade, options);
  const UnpackResult r = unpack_bundle(options, out, out);
  out.finish_progress();
  if (out.json()) {
    nlohmann::json doc = {{"bundle", flags.bundles.front()},
                          {"bundleFiles", flags.bundles},
                          {"bundleId", r.bundle_id},
                          {"registry", r.registry},
                          {"plan", options.plan},
                          {"dryRun", options.dry_run},
                          {"push", r.push ? push_json(*r.push) : nlohmann::json(nullptr)},
                          {"verified", r.verify.has_value() || r.push != nullptr}};
    add_stages_json(r, doc);
    print_json(out, doc);
    return;
  }
  if (r.push) {
    print_push(*r.push, joined(flags.bundles), r.registry, out);
  } else {
    out.result(fmt::format("{}: bundle {}, push skipped{}", joined(flags.bundles), r.bundle_name,
                           r.verify ? "; verified, signature " + signature_text(r.verify->signature) : std::string()));
  }
  print_stages(r, options, out);
}

} // namespace

void add_push(CLI::App& app, CommandRun& run) {
  auto flags = std::make_shared<PushFlags>();
  auto* cmd = app.add_subcommand("push", "Verify a bundle and push its images and charts to a registry");
  add_target_flags(*cmd, *flags);
  cmd->add_flag("--dry-run", flags->dry_run, "Verify the bundle and show what would be pushed; push nothing");
  cmd->add_flag("--partial", flags->partial,
                "Volumes of a split bundle: push what the given volumes complete and list the images still waiting for "
                "other volumes, instead of failing (push the rest later, volume by volume)");
  cmd->footer("Images go to HOST/PREFIX/<source path without host> by digest and tag; charts to HOST/PREFIX/charts/NAME.\n"
              "Interrupted? Run the same command again: what the registry already has is skipped.\n"
              "Split bundles: give the volumes in any order, all at once or a few at a time (with --partial).");
  cmd->callback([flags, &run] { run = [flags](Output& out) { run_push(*flags, out); }; });
}

void add_unpack(CLI::App& app, CommandRun& run) {
  auto flags = std::make_shared<UnpackFlags>();
  auto* cmd = app.add_subcommand("unpack", "Run every isolated-side stage: verify, push, values, check, upgrade");
  add_target_flags(*cmd, *flags);
  add_upgrade_flags(*cmd, flags->upgrade,
                    "Change nothing: push --dry-run, then pre-flight and helm upgrade --dry-run");
  cmd->add_flag("--skip-push", flags->skip_push,
                "The images are already in the registry: verify the bundle, push nothing");
  cmd->add_flag("--skip-check", flags->skip_check,
                "Do not render the releases with helm template to check their images");
  cmd->add_flag("--skip-upgrade", flags->skip_upgrade, "Stop after the values (and check): run no helm upgrade");
  cmd->footer("Required site keys (set: KEY: \"\" in the manifest) are checked before anything is pushed.\n"
              "check runs when helm is found (else it is skipped with a warning). --username/--password-stdin are\n"
              "the target registry's credentials, and with --create-pull-secrets the image pull secrets' too.\n"
              "Interrupted or failed? Run the same command again: pushed blobs and upgraded releases are skipped.");
  cmd->callback([flags, &run] { run = [flags](Output& out) { run_unpack(*flags, out); }; });
}

} // namespace ferry::cli

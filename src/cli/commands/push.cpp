// ferry push (stage 2 of unpack) and ferry unpack (the stages ferry has so far).
// SPDX-License-Identifier: Apache-2.0
#include "image_push.hpp"

#include "cli/commands/commands.hpp"
#include "cli/commands/registry_flags.hpp"
#include "cli/commands/trust_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace ferry::cli {

namespace {

struct PushFlags : TrustFlags {
  std::string bundle;
  std::string registry;
  bool dry_run = false;
  std::string state_dir;
  RegistryFlags connection;
};

void add_push_flags(CLI::App& cmd, PushFlags& flags) {
  cmd.add_option("bundle", flags.bundle, "Bundle file (.tar.zst)")->required();
  cmd.add_option("--registry", flags.registry, "Target: HOST[:PORT][/PREFIX]")->required();
  add_trust_flags(cmd, flags, "Trusted public key; repeat for several (any of them may have signed)");
  add_registry_flags(cmd, flags.connection, "the target registry");
  cmd.add_flag("--dry-run", flags.dry_run, "Verify the bundle and show what would be pushed; push nothing");
  cmd.add_option("--state-dir", flags.state_dir,
                 "Where the push journal is kept (default $XDG_STATE_HOME/ferry or ~/.local/state/ferry)");
}

void run_push(const PushFlags& flags, Output& out) {
  PushOptions options;
  options.bundle = flags.bundle;
  options.target = PushTarget::parse(flags.registry);
  options.trust = trust_options(flags);
  options.client = client_options(flags.connection);
  // Up to 2 x -j uploads run at once (-j streaming, -j finishing), each holding one
  // chunk in memory to resume from: 8 MiB chunks keep that near 64 MiB at -j 4.
  if (flags.connection.chunk_size.empty()) options.client.chunk_size = 8ull << 20;
  options.dry_run = flags.dry_run;
  options.state_dir = flags.state_dir;
  options.jobs = flags.connection.jobs;
  const PushResult r = push_bundle(options, out, out);
  out.finish_progress();
  if (out.json()) {
    nlohmann::json artifacts = nlohmann::json::array();
    for (const auto& a : r.artifacts) {
      artifacts.push_back({{"kind", a.kind}, {"source", a.source}, {"target", a.target}, {"digest", a.digest.str()}});
    }
    print_json(out, {{"bundle", flags.bundle},
                     {"registry", options.target.str()},
                     {"dryRun", r.dry_run},
                     {"signature", {{"keyId", r.signature.key_id}, {"verified", r.signature.status ==
                                                                                   bundle::SignatureCheck::Status::verified}}},
                     {"blobs", {{"uploaded", r.blobs_uploaded}, {"uploadedBytes", r.bytes_uploaded},
                                {"present", r.blobs_present}, {"presentBytes", r.bytes_present},
                                {"mounted", r.blobs_mounted}}},
                     {"manifests", {{"pushed", r.manifests_pushed}, {"present", r.manifests_present}}},
                     {"journal", r.journal.string()},
                     {"readWholeBundle", r.read_whole_bundle},
                     {"journalEntriesBefore", r.journal_entries},
                     {"artifacts", artifacts}});
    return;
  }
  const char* verb = r.dry_run ? "would push" : "pushed";
  out.result(fmt::format("{}: {} {}", flags.bundle, r.dry_run ? "dry run, nothing pushed to" : "pushed to",
                         options.target.str()));
  out.result(fmt::format("signature  {}", signature_text(r.signature)));
  out.result(fmt::format("blobs      {} {} ({}), {} already there ({}), {} mounted", verb, r.blobs_uploaded,
                         human_bytes(r.bytes_uploaded), r.blobs_present, human_bytes(r.bytes_present), r.blobs_mounted));
  out.result(fmt::format("manifests  {} {}, {} already there", verb, r.manifests_pushed, r.manifests_present));
  for (const auto& a : r.artifacts) out.result(fmt::format("  {:<6} {}", a.kind, a.target));
}

} // namespace

void add_push(CLI::App& app, CommandRun& run) {
  auto flags = std::make_shared<PushFlags>();
  auto* cmd = app.add_subcommand("push", "Verify a bundle and push its images and charts to a registry");
  add_push_flags(*cmd, *flags);
  cmd->footer("Images go to HOST/PREFIX/<source path without host> by digest and tag; charts to HOST/PREFIX/charts/NAME.\n"
              "Interrupted? Run the same command again: what the registry already has is skipped.");
  cmd->callback([flags, &run] { run = [flags](Output& out) { run_push(*flags, out); }; });
}

void add_unpack(CLI::App& app, CommandRun& run) {
  auto flags = std::make_shared<PushFlags>();
  auto* cmd = app.add_subcommand("unpack", "Run the isolated-side stages: verify and push (values and upgrade come later)");
  add_push_flags(*cmd, *flags);
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      out.log(core::LogLevel::info, "stage verify + push (values rewriting and helm upgrade are not in this version)");
      run_push(*flags, out);
    };
  });
}

} // namespace ferry::cli

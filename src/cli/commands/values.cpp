// ferry values: an overlay values file pointing a chart's images at the internal registry.
// SPDX-License-Identifier: Apache-2.0
#include "image_push.hpp"
#include "isolated.hpp"
#include "mirror_config.hpp"
#include "values/rewrite.hpp"

#include "cli/commands/commands.hpp"
#include "cli/commands/trust_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace ferry::cli {

namespace {

struct ValuesFlags : TrustFlags {
  std::string bundle;
  std::string chart;
  std::vector<std::string> values;
  std::string registry;
  bool pin_digests = false;
  std::string out;
  std::vector<std::string> mirror_configs;
  std::string mirror_ca;
  bool plain_http = false;
};

struct WrittenMirrorConfig {
  MirrorKind kind;
  std::vector<std::filesystem::path> files;
};

// --mirror-config: each runtime's files under DIR, written atomically.
std::vector<WrittenMirrorConfig> write_mirror_configs(const ValuesFlags& flags, const ValuesOptions& options,
                                                      const ValuesResult& r) {
  std::vector<WrittenMirrorConfig> written;
  const std::vector<std::string> registries = source_registries(r.descriptor);
  MirrorConfigOptions mirror{options.target, flags.plain_http, flags.mirror_ca,
                             r.descriptor.name + " " + r.descriptor.version};
  for (const auto& name : flags.mirror_configs) {
    WrittenMirrorConfig w{parse_mirror_kind(name), {}};
    for (const MirrorFile& file : mirror_config(w.kind, registries, mirror)) {
      const std::filesystem::path target = std::filesystem::path(flags.out) / file.path;
      std::filesystem::create_directories(target.parent_path());
      core::write_file_atomic(target, file.content);
      w.files.push_back(target);
    }
    written.push_back(std::move(w));
  }
  return written;
}

// BUNDLE mode: one overlay per release, written to DIR/RELEASE.yaml; the report on stdout.
void run_bundle_values(const ValuesFlags& flags, Output& out) {
  if (flags.out.empty()) {
    throw core::UsageError("ferry values BUNDLE needs -o DIR", "give the directory for the overlays: -o DIR "
                                                                "(one RELEASE.yaml per release)");
  }
  if (!flags.values.empty()) {
    throw core::UsageError("-f/--values is for --chart only",
                           "the bundle carries each release's values files; site values go to `ferry upgrade`");
  }
  ValuesOptions options;
  options.bundle = flags.bundle;
  options.target = PushTarget::parse(flags.registry);
  options.trust = trust_options(flags);
  options.out_dir = flags.out;
  options.pin_digests = flags.pin_digests;
  for (const auto& name : flags.mirror_configs) (void)parse_mirror_kind(name); // before anything is written
  const ValuesResult r = write_release_overlays(options, out);
  const std::vector<WrittenMirrorConfig> mirrors = write_mirror_configs(flags, options, r);

  if (out.json()) {
    nlohmann::json mirrors_json = nlohmann::json::array();
    for (const auto& m : mirrors) {
      nlohmann::json files = nlohmann::json::array();
      for (const auto& f : m.files) files.push_back(f.string());
      mirrors_json.push_back({{"runtime", to_string(m.kind)}, {"registries", source_registries(r.descriptor)},
                              {"files", files}});
    }
    nlohmann::json releases = nlohmann::json::array();
    for (const auto& rv : r.releases) {
      releases.push_back({{"name", rv.name},
                          {"namespace", rv.namespace_name},
                          {"chart", rv.chart},
                          {"overlayFile", rv.overlay_file.string()},
                          {"overlay", rv.result.overlay_yaml},
                          {"changes", changes_json(rv.result.changes)},
                          {"skipped", skipped_json(rv.result.skipped)},
                          {"unplaced", rv.result.unplaced},
                          {"placedByRules", by_rules_json(rv.result.by_rules)}});
    }
    print_json(out, {{"bundle", flags.bundle},
                     {"registry", options.target.str()},
                     {"pinDigests", flags.pin_digests},
                     {"outputDir", flags.out},
                     {"signature", signature_text(r.signature)},
                     {"releases", releases},
                     {"mirrorConfigs", mirrors_json}});
    return;
  }
  for (const auto& m : mirrors) {
    std::string files;
    for (const auto& f : m.files) files += (files.empty() ? "" : ", ") + f.string();
    out.result(fmt::format("mirror configuration for {} ({} source registr{} to {}): {}", to_string(m.kind),
                           source_registries(r.descriptor).size(),
                           source_registries(r.descriptor).size() == 1 ? "y" : "ies", options.target.str(), files));
  }
  if (r.releases.empty()) out.result("the bundle has no releases: no overlay written");
  for (const auto& rv : r.releases) {
    const auto& res = rv.result;
    out.result(fmt::format("{} (chart {}): {} value{} rewritten for {}, {} skipped, {} image{} not placed; overlay "
                           "written to {}",
                           rv.name, rv.chart, res.changes.size(), res.changes.size() == 1 ? "" : "s",
                           options.target.str(), res.skipped.size(), res.unplaced.size(),
                           res.unplaced.size() == 1 ? "" : "s", rv.overlay_file.string()));
    for (const auto& c : res.changes) {
      out.result(fmt::format("  {}: {} -> {}  ({})", c.path, c.old_value.empty() ? "\"\"" : c.old_value, c.new_value,
                             c.detector));
    }
    for (const auto& s : res.skipped) out.result(fmt::format("  skipped {}: {}  ({})", s.path, s.value, s.reason));
    for (const auto& b : res.by_rules) {
      out.result(fmt::format("  placed by rule {} ({} was its registry; `ferry check` confirms): {}", b.rule, b.path,
                             b.image));
    }
    for (const auto& image : res.unplaced) {
      out.result(fmt::format("  not placed: {} (no value names it; `ferry check` shows where the chart takes it from)",
                             image));
    }
  }
}

void run_values(const ValuesFlags& flags, Output& out) {
  if (flags.bundle.empty() == flags.chart.empty()) {
    throw core::UsageError(flags.bundle.empty() ? "ferry values needs a BUNDLE or --chart"
                                                : "ferry values takes a BUNDLE or --chart, not both",
                           "ferry values BUNDLE --registry R --pubkey KEY.pub -o DIR, or ferry values --chart CHART "
                           "--registry R [-f VALUES] [-o FILE]");
  }
  if (!flags.bundle.empty()) {
    run_bundle_values(flags, out);
    return;
  }
  if (!flags.pubkeys.empty() || flags.skip) {
    throw core::UsageError("--pubkey and --insecure-skip-signature are for a BUNDLE, not --chart");
  }
  if (!flags.mirror_configs.empty()) {
    throw core::UsageError("--mirror-config is for a BUNDLE, not --chart",
                           "the mirror configuration maps the source registries of a bundle's images");
  }
  const PushTarget target = PushTarget::parse(flags.registry);
  values::Options options;
  options.target = {target.host, target.prefix};
  options.pin_digests = flags.pin_digests;
  values::ChartInput input;
  input.chart = flags.chart;
  input.values_files.assign(flags.values.begin(), flags.values.end());
  const values::Result r = values::rewrite_chart(input, options);
  if (!flags.out.empty()) core::write_file_atomic(flags.out, r.overlay_yaml);

  if (out.json()) {
    print_json(out, {{"chart", flags.chart},
                     {"registry", target.str()},
                     {"pinDigests", flags.pin_digests},
                     {"changes", changes_json(r.changes)},
                     {"skipped", skipped_json(r.skipped)},
                     {"overlay", r.overlay_yaml},
                     {"overlayFile", flags.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(flags.out)}});
    return;
  }

  // With -o the report is the result (stdout); without, stdout carries the overlay alone
  // (so `ferry values … > overlay.yaml` works) and the report goes to stderr.
  const bool to_file = !flags.out.empty();
  auto report = [&](const std::string& line) { to_file ? out.result(line) : out.info(line); };
  auto warn = [&](const std::string& line) { to_file ? out.result(line) : out.warning(line); };
  report(fmt::format("{}: {} value{} rewritten for {}, {} skipped{}", flags.chart, r.changes.size(),
                     r.changes.size() == 1 ? "" : "s", target.str(), r.skipped.size(),
                     to_file ? "; overlay written to " + flags.out : ""));
  for (const auto& c : r.changes) {
    report(fmt::format("  {}: {} -> {}  ({})", c.path, c.old_value.empty() ? "\"\"" : c.old_value, c.new_value,
                       c.detector));
  }
  for (const auto& s : r.skipped) warn(fmt::format("skipped {}: {}  ({})", s.path, s.value, s.reason));
  if (!to_file) {
    std::string overlay = r.overlay_yaml;
    if (!overlay.empty() && overlay.back() == '\n') overlay.pop_back();
    out.result(overlay);
  }
}

} // namespace

void add_values(CLI::App& app, CommandRun& run) {
  auto flags = std::make_shared<ValuesFlags>();
  auto* cmd = app.add_subcommand("values", "Write values overlays that point a bundle's (or a chart's) images at the "
                                          "internal registry");
  cmd->add_option("bundle", flags->bundle, "Bundle file (.tar.zst): one overlay per release, in -o DIR");
  cmd->add_option("--chart", flags->chart, "Chart directory or .tgz (instead of a bundle)");
  // One file per -f, as helm takes them (a later BUNDLE argument must not be swallowed).
  cmd->add_option("-f,--values", flags->values, "Values file of the release (repeatable; later files win)")
      ->allow_extra_args(false);
  cmd->add_option("--registry", flags->registry, "Internal registry: HOST[:PORT][/PREFIX]")->required();
  cmd->add_flag("--pin-digests", flags->pin_digests,
                "Also pin images to their digests where values can hold one (needs a bundle to know them)");
  cmd->add_option("-o,--out", flags->out,
                  "BUNDLE: the directory for RELEASE.yaml overlays (created if missing). --chart: write the overlay to "
                  "this file (atomically); default: standard output");
  cmd->add_option("--mirror-config", flags->mirror_configs,
                  "BUNDLE: also write node mirror configuration mapping every source registry of the bundle to "
                  "--registry, for containerd (certs.d/REGISTRY/hosts.toml), k3s or rke2 (registries.yaml) or cri-o "
                  "(registries.conf.d/50-ferry-mirrors.conf), in -o DIR; repeatable")
      ->type_name("RUNTIME:{containerd,k3s,rke2,cri-o}")
      ->allow_extra_args(false);
  cmd->add_option("--mirror-ca", flags->mirror_ca,
                  "Path of the internal registry's CA certificate on the nodes, for the mirror configuration");
  cmd->add_flag("--plain-http", flags->plain_http, "The internal registry speaks plain HTTP (mirror configuration)");
  add_trust_flags(*cmd, *flags, "Trusted public key for a BUNDLE; repeat for several");
  cmd->footer("With a BUNDLE only values naming the bundle's images are rewritten, to where `ferry push`\n"
              "puts them (HOST[:PORT]/PREFIX/<source path>, Docker Hub short names as library/NAME), using\n"
              "each release's values files and rules from the bundle; images no value places are reported.\n"
              "Your own values files are never modified: use the overlays as the last -f.\n"
              "With --chart every image-looking value is rewritten.\n"
              "Images hard-coded in templates cannot be reached through values: `ferry check` renders the\n"
              "charts and names them.");
  cmd->callback([flags, &run] { run = [flags](Output& out) { run_values(*flags, out); }; });
}

} // namespace ferry::cli

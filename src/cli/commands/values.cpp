// ferry values: an overlay values file pointing a chart's images at the internal registry.
// SPDX-License-Identifier: Apache-2.0
#include "image_push.hpp"
#include "values/rewrite.hpp"

#include "cli/commands/commands.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"
#include "core/fs.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace ferry::cli {

namespace {

struct ValuesFlags {
  std::string chart;
  std::vector<std::string> values;
  std::string registry;
  bool pin_digests = false;
  std::string out;
};

void run_values(const ValuesFlags& flags, Output& out) {
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
    nlohmann::json changes = nlohmann::json::array();
    for (const auto& c : r.changes) {
      changes.push_back(
          {{"path", c.path}, {"old", c.old_value}, {"new", c.new_value}, {"detector", c.detector}, {"image", c.image}});
    }
    nlohmann::json skipped = nlohmann::json::array();
    for (const auto& s : r.skipped) skipped.push_back({{"path", s.path}, {"value", s.value}, {"reason", s.reason}});
    print_json(out, {{"chart", flags.chart},
                     {"registry", target.str()},
                     {"pinDigests", flags.pin_digests},
                     {"changes", changes},
                     {"skipped", skipped},
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
  auto* cmd = app.add_subcommand("values", "Write a values overlay that points a chart's images at the internal registry");
  cmd->add_option("--chart", flags->chart, "Chart directory or .tgz")->required();
  // One file per -f, as helm takes them (a later BUNDLE argument must not be swallowed).
  cmd->add_option("-f,--values", flags->values, "Values file of the release (repeatable; later files win)")
      ->allow_extra_args(false);
  cmd->add_option("--registry", flags->registry, "Internal registry: HOST[:PORT][/PREFIX]")->required();
  cmd->add_flag("--pin-digests", flags->pin_digests,
                "Also pin images to their digests where values can hold one (needs a bundle to know them)");
  cmd->add_option("-o,--out", flags->out, "Write the overlay to this file (atomically); default: standard output");
  cmd->footer("Without a bundle every image-looking value is rewritten to HOST[:PORT]/PREFIX/<source path>\n"
              "(Docker Hub short names as library/NAME). Only --chart is accepted for now; a BUNDLE\n"
              "argument (rewrite only the bundle's images, pin their digests) comes later.\n"
              "Images hard-coded in templates cannot be reached through values: check the rendered\n"
              "chart (`helm template CHART -f OVERLAY`).");
  cmd->callback([flags, &run] { run = [flags](Output& out) { run_values(*flags, out); }; });
}

} // namespace ferry::cli

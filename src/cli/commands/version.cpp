// ferry version.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/descriptor.hpp"
#include "cli/commands/commands.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace ferry::cli {

void add_version(CLI::App& app, CommandRun& run) {
  auto* cmd = app.add_subcommand("version", "Show the version of ferry and of the bundle format it writes");
  cmd->callback([&run] {
    run = [](Output& out) {
      if (out.json()) {
        print_json(out, {{"version", ferry_version()}, {"bundleFormat", bundle::k_format_version}});
        return;
      }
      out.result(fmt::format("ferry {} (bundle format {})", ferry_version(), bundle::k_format_version));
    };
  });
}

} // namespace ferry::cli

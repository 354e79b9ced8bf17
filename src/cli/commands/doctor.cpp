// ferry doctor: registry pre-flight with a fix for each failure.
// SPDX-License-Identifier: Apache-2.0
#include "doctor.hpp"

#include "cli/commands/commands.hpp"
#include "cli/commands/registry_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace ferry::cli {

namespace {

const char* status_text(DoctorCheck::Status s) {
  switch (s) {
  case DoctorCheck::Status::ok: return "ok";
  case DoctorCheck::Status::warning: return "warning";
  case DoctorCheck::Status::failed: return "FAILED";
  case DoctorCheck::Status::skipped: return "skipped";
  }
  return "?";
}

} // namespace

void add_doctor(CLI::App& app, CommandRun& run) {
  struct Flags {
    std::string registry;
    std::string state_dir;
    RegistryFlags connection;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("doctor", "Check a registry before pushing: DNS, TCP, TLS, credentials, push rights, "
                                           "body-size limits, mounts, free disk");
  cmd->add_option("--registry", flags->registry, "Registry to check: HOST[:PORT][/PREFIX]")->required();
  cmd->add_option("--state-dir", flags->state_dir, "Where push keeps its journal (free space is checked there)");
  add_registry_flags(*cmd, flags->connection, "the registry");
  cmd->footer("Writes one unreferenced probe blob into PREFIX/ferry-doctor (garbage collection removes it); no tags.");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      DoctorOptions options;
      options.target = PushTarget::parse(flags->registry);
      options.client = client_options(flags->connection);
      options.state_dir = flags->state_dir;
      const std::vector<DoctorCheck> checks = run_doctor(options, out);
      bool failed = false;
      nlohmann::json list = nlohmann::json::array();
      for (const auto& c : checks) {
        failed = failed || c.status == DoctorCheck::Status::failed;
        list.push_back({{"check", c.name}, {"status", status_text(c.status)}, {"detail", c.detail}, {"fix", c.fix}});
      }
      if (out.json()) {
        print_json(out, {{"registry", options.target.str()}, {"ok", !failed}, {"checks", list}});
      } else {
        for (const auto& c : checks) {
          out.result(fmt::format("{:<10} {:<8} {}", c.name, status_text(c.status), c.detail));
          const bool show_fix = c.status == DoctorCheck::Status::failed || c.status == DoctorCheck::Status::warning;
          if (show_fix && !c.fix.empty()) out.result(fmt::format("{:<19} fix: {}", "", c.fix));
        }
      }
      if (failed) {
        throw core::RegistryError("registry " + options.target.str() + " failed the checks above",
                                  "apply the fixes shown, then run ferry doctor again");
      }
    };
  });
}

} // namespace ferry::cli

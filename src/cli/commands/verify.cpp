// ferry verify: check a bundle in one pass.
// SPDX-License-Identifier: Apache-2.0
#include "unpack.hpp"

#include "cli/commands/commands.hpp"
#include "cli/commands/trust_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace ferry::cli {

void add_verify(CLI::App& app, CommandRun& run) {
  struct Flags : TrustFlags {
    std::string bundle;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("verify", "Check a bundle's signature and every entry in one pass");
  cmd->add_option("bundle", flags->bundle, "Bundle file (.tar.zst)")->required();
  add_trust_flags(*cmd, *flags, "Trusted public key; repeat for several (any of them may have signed)");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      const VerifyResult r = verify_bundle(flags->bundle, trust_options(*flags), out, out);
      out.finish_progress();
      if (out.json()) {
        nlohmann::json j = bundle_json(r.descriptor, r.signature, r.bundle_size);
        j["bundle"] = flags->bundle;
        j["verified"] = {{"entries", r.stats.entries}, {"bytes", r.stats.bytes}};
        print_json(out, j);
        return;
      }
      out.result(fmt::format("{}: OK", flags->bundle));
      out.result(fmt::format("signature  {}", signature_text(r.signature)));
      out.result(fmt::format("entries    {} checked, {} ({} images, {} charts, {} files)", r.stats.entries,
                             human_bytes(r.stats.bytes), r.descriptor.images.size(), r.descriptor.charts.size(),
                             r.descriptor.files.size()));
    };
  });
}

} // namespace ferry::cli

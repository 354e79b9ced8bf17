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
#include <string>
#include <vector>

namespace ferry::cli {

void add_verify(CLI::App& app, CommandRun& run) {
  struct Flags : TrustFlags {
    std::vector<std::string> bundles;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("verify", "Check a bundle's signature and every entry in one pass");
  cmd->add_option("bundle", flags->bundles, "Bundle file (.tar.zst), or any volumes of a split bundle")->required();
  add_trust_flags(*cmd, *flags, "Trusted public key; repeat for several (any of them may have signed)");
  cmd->get_option("--pubkey")->allow_extra_args(false); // one key per flag: the files follow
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      const VerifyResult r =
          verify_bundle({flags->bundles.begin(), flags->bundles.end()}, trust_options(*flags), out, out);
      out.finish_progress();
      if (out.json()) {
        nlohmann::json j = bundle_json(r.descriptor, r.signature, r.bundle_size);
        j["bundle"] = flags->bundles.front();
        j["bundleFiles"] = flags->bundles;
        j["verified"] = {{"entries", r.stats.entries}, {"bytes", r.stats.bytes}};
        j["volumes"] = given_files_json(r.files);
        print_json(out, j);
        return;
      }
      std::string files;
      for (const auto& f : r.files.given) files += (files.empty() ? "" : ", ") + f.path.string();
      out.result(fmt::format("{}: OK", files));
      print_given_files(out, r.files, "verified");
      out.result(fmt::format("signature  {}", signature_text(r.signature)));
      out.result(fmt::format("entries    {} checked, {} ({} images, {} charts, {} files)", r.stats.entries,
                             human_bytes(r.stats.bytes), r.descriptor.images.size(), r.descriptor.charts.size(),
                             r.descriptor.files.size()));
      if (r.descriptor.differential()) {
        out.result(fmt::format("omitted    {} blobs ({}) not in the bundle: its base has them, `ferry push` checks the "
                               "target does",
                               r.descriptor.omitted_blobs(), human_bytes(r.descriptor.omitted_bytes())));
      }
    };
  });
}

} // namespace ferry::cli

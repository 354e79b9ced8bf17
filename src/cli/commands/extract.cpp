// ferry extract: a verified OCI layout on disk.
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

void add_extract(CLI::App& app, CommandRun& run) {
  struct Flags : TrustFlags {
    std::vector<std::string> bundles;
    std::string out;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("extract", "Verify a bundle and write it out as an OCI image layout");
  cmd->add_option("bundle", flags->bundles, "Bundle file (.tar.zst), or every volume of a split bundle")->required();
  cmd->add_option("-o,--out", flags->out, "Directory to create (must not exist, or be empty)")->required();
  add_trust_flags(*cmd, *flags, "Trusted public key; repeat for several (any of them may have signed)");
  cmd->get_option("--pubkey")->allow_extra_args(false); // one key per flag: the files follow
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      const ExtractResult r = extract_bundle({flags->bundles.begin(), flags->bundles.end()}, flags->out,
                                             trust_options(*flags), out, out);
      out.finish_progress();
      if (out.json()) {
        nlohmann::json j = bundle_json(r.verify.descriptor, r.verify.signature, r.verify.bundle_size);
        j["bundle"] = flags->bundles.front();
        j["bundleFiles"] = flags->bundles;
        j["volumes"] = given_files_json(r.verify.files);
        j["directory"] = r.directory.string();
        j["verified"] = {{"entries", r.verify.stats.entries}, {"bytes", r.verify.stats.bytes}};
        print_json(out, j);
        return;
      }
      out.result(fmt::format("{}: OK, extracted to {}", flags->bundles.front(), r.directory.string()));
      print_given_files(out, r.verify.files, "verified");
      out.result(fmt::format("signature  {}", signature_text(r.verify.signature)));
      out.result(fmt::format("entries    {} checked, {}", r.verify.stats.entries, human_bytes(r.verify.stats.bytes)));
      for (const auto& i : r.verify.descriptor.images) out.result(fmt::format("  oci:{}:{}", r.directory.string(), i.ref));
    };
  });
}

} // namespace ferry::cli

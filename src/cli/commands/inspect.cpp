// ferry inspect: what a bundle holds, from its head.
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

void add_inspect(CLI::App& app, CommandRun& run) {
  struct Flags : TrustFlags {
    std::vector<std::string> bundles;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("inspect", "Show what a bundle holds (reads only its head)");
  cmd->add_option("bundle", flags->bundles, "Bundle file (.tar.zst), or any volumes of a split bundle")->required();
  add_trust_flags(*cmd, *flags, "Trusted public key: check the signature of the head too (repeatable)");
  cmd->get_option("--pubkey")->allow_extra_args(false); // one key per flag: the files follow
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      const InspectResult r = inspect_bundle({flags->bundles.begin(), flags->bundles.end()}, trust_options(*flags), out);
      if (out.json()) {
        nlohmann::json j = bundle_json(r.descriptor, r.signature, r.bundle_size);
        j["bundle"] = flags->bundles.front();
        j["bundleFiles"] = flags->bundles;
        j["volumes"] = given_files_json(r.files);
        print_json(out, j);
        return;
      }
      print_bundle(out, r.descriptor, r.signature, r.bundle_size);
      print_given_files(out, r.files, "given");
      if (r.signature.status != bundle::SignatureCheck::Status::verified) {
        out.result("(signature not checked: pass --pubkey KEY.pub; blobs are checked by `ferry verify`)");
      }
    };
  });
}

} // namespace ferry::cli

// ferry verify / inspect / extract: the read side of a bundle.
// SPDX-License-Identifier: Apache-2.0
#include "unpack.hpp"

#include "cli/commands/commands.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace ferry::cli {

namespace {

struct TrustFlags {
  std::vector<std::string> pubkeys;
  bool skip = false;
};

void add_trust_flags(CLI::App& cmd, TrustFlags& flags, const char* pubkey_help) {
  cmd.add_option("--pubkey", flags.pubkeys, pubkey_help);
  cmd.add_flag("--insecure-skip-signature", flags.skip,
               "Do not check the signature (the bundle may have been rewritten by anyone); says so loudly");
}

TrustOptions trust_options(const TrustFlags& flags) {
  TrustOptions t;
  for (const auto& p : flags.pubkeys) t.pubkeys.emplace_back(p);
  t.insecure_skip_signature = flags.skip;
  return t;
}

} // namespace

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

void add_inspect(CLI::App& app, CommandRun& run) {
  struct Flags : TrustFlags {
    std::string bundle;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("inspect", "Show what a bundle holds (reads only its head)");
  cmd->add_option("bundle", flags->bundle, "Bundle file (.tar.zst)")->required();
  add_trust_flags(*cmd, *flags, "Trusted public key: check the signature of the head too (repeatable)");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      const InspectResult r = inspect_bundle(flags->bundle, trust_options(*flags), out);
      if (out.json()) {
        nlohmann::json j = bundle_json(r.descriptor, r.signature, r.bundle_size);
        j["bundle"] = flags->bundle;
        print_json(out, j);
        return;
      }
      print_bundle(out, r.descriptor, r.signature, r.bundle_size);
      if (r.signature.status != bundle::SignatureCheck::Status::verified) {
        out.result("(signature not checked: pass --pubkey KEY.pub; blobs are checked by `ferry verify`)");
      }
    };
  });
}

void add_extract(CLI::App& app, CommandRun& run) {
  struct Flags : TrustFlags {
    std::string bundle;
    std::string out;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("extract", "Verify a bundle and write it out as an OCI image layout");
  cmd->add_option("bundle", flags->bundle, "Bundle file (.tar.zst)")->required();
  cmd->add_option("-o,--out", flags->out, "Directory to create (must not exist, or be empty)")->required();
  add_trust_flags(*cmd, *flags, "Trusted public key; repeat for several (any of them may have signed)");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      const ExtractResult r = extract_bundle(flags->bundle, flags->out, trust_options(*flags), out, out);
      out.finish_progress();
      if (out.json()) {
        nlohmann::json j = bundle_json(r.verify.descriptor, r.verify.signature, r.verify.bundle_size);
        j["bundle"] = flags->bundle;
        j["directory"] = r.directory.string();
        j["verified"] = {{"entries", r.verify.stats.entries}, {"bytes", r.verify.stats.bytes}};
        print_json(out, j);
        return;
      }
      out.result(fmt::format("{}: OK, extracted to {}", flags->bundle, r.directory.string()));
      out.result(fmt::format("signature  {}", signature_text(r.verify.signature)));
      out.result(fmt::format("entries    {} checked, {}", r.verify.stats.entries, human_bytes(r.verify.stats.bytes)));
      for (const auto& i : r.verify.descriptor.images) out.result(fmt::format("  oci:{}:{}", r.directory.string(), i.ref));
    };
  });
}

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

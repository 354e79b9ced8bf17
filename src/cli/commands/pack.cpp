// ferry pack: bundle manifest -> signed bundle.
// SPDX-License-Identifier: Apache-2.0
#include "pack.hpp"

#include "cli/commands/commands.hpp"
#include "cli/commands/registry_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <memory>

namespace ferry::cli {

namespace {

std::int64_t source_date_epoch() {
  const char* text = std::getenv("SOURCE_DATE_EPOCH");
  if (!text || !*text) return 0;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0) {
    throw core::UsageError(std::string("SOURCE_DATE_EPOCH='") + text + "' is not a number of seconds since 1970",
                           "set it to a whole number such as $(git log -1 --format=%ct), or unset it");
  }
  return value;
}

} // namespace

void add_pack(CLI::App& app, CommandRun& run) {
  struct Flags {
    std::string manifest;
    std::string output;
    std::string key;
    std::string passphrase_file;
    int level = 3;
    RegistryFlags registry;
    std::vector<std::string> mirrors;
    std::vector<std::string> platforms;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("pack", "Build a signed bundle from a bundle manifest");
  cmd->add_option("-f,--file", flags->manifest, "Bundle manifest (YAML, see manifests/) or a plain image list")->required();
  cmd->add_option("-o,--out", flags->output, "Bundle to write, NAME.tar.zst (NAME.sha256 is written beside it)")->required();
  cmd->add_option("--key", flags->key, "Private signing key (from `ferry keygen`)")->required();
  cmd->add_option("--passphrase-file", flags->passphrase_file,
                  "File holding the key's passphrase (or set FERRY_KEY_PASSPHRASE)");
  cmd->add_option("--compression-level", flags->level, "zstd level for compressible entries, 1-19 (default 3)");
  add_registry_flags(*cmd, flags->registry, "source registries and chart repositories");
  cmd->add_option("--mirror", flags->mirrors,
                  "Pull REGISTRY's images through a mirror: REGISTRY=HOST[:PORT][/PREFIX] (repeatable; the bundle keeps "
                  "the original references)");
  cmd->add_option("--platform", flags->platforms,
                  "Keep only this platform of multi-platform images, os/arch[/variant] (repeatable; replaces the "
                  "manifest's default platforms:)");
  cmd->footer("Timestamps come from SOURCE_DATE_EPOCH (default 0): the same inputs give the same bundle bytes.");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      PackOptions options{.manifest = flags->manifest,
                          .output = flags->output,
                          .key = flags->key,
                          .passphrase = read_passphrase(flags->passphrase_file),
                          .compression_level = flags->level,
                          .source_date_epoch = source_date_epoch(),
                          .tool_version = ferry_version(),
                          .pull = {},
                          .platforms = {}};
      options.pull.client = client_options(flags->registry);
      options.pull.jobs = flags->registry.jobs;
      for (const auto& m : flags->mirrors) options.pull.mirrors.push_back(Mirror::parse(m));
      for (const auto& p : flags->platforms) options.platforms.push_back(oci::Platform::parse(p));
      const PackResult r = pack(options, out, out);
      out.finish_progress();
      const auto& d = r.descriptor;
      if (out.json()) {
        nlohmann::json j = bundle_json(d, bundle::SignatureCheck{bundle::SignatureCheck::Status::verified,
                                                                 d.signer->key_id, d.signer->algorithm, flags->key, true},
                                       r.bundle_size);
        j["bundle"] = r.bundle_path.string();
        j["checksumFile"] = r.checksum_path.string();
        j["sha256"] = std::string(r.bundle_digest->hex());
        print_json(out, j);
        return;
      }
      out.result(fmt::format("wrote {} ({}, sha256 {})", r.bundle_path.string(), human_bytes(r.bundle_size),
                             r.bundle_digest->hex()));
      out.result(fmt::format("wrote {}", r.checksum_path.string()));
      out.result(fmt::format("{} images, {} charts, {} files; {} blobs, {} of content{}; signed by {} key {}",
                             d.images.size(), d.charts.size(), d.files.size(), d.blobs.size(), human_bytes(d.blob_bytes()),
                             d.unshared_bytes() > d.blob_bytes()
                                 ? fmt::format(" ({} saved by sharing)", human_bytes(d.unshared_bytes() - d.blob_bytes()))
                                 : std::string(),
                             d.signer->algorithm, d.signer->key_id));
    };
  });
}

} // namespace ferry::cli

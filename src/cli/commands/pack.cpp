// ferry pack: bundle manifest -> signed bundle.
// SPDX-License-Identifier: Apache-2.0
#include "pack.hpp"
#include "pack_cache.hpp"

#include "bundle/bundle_manifest.hpp"
#include "bundle/volumes.hpp"
#include "cli/commands/commands.hpp"
#include "cli/commands/registry_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/secret.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string_view>

namespace ferry::cli {

namespace {

std::string found_by_text(const bundle::DiscoveryRecord& f) {
  return fmt::format("{} in chart {}{}: {}", f.method, f.chart, f.release.empty() ? "" : ", release " + f.release, f.where);
}

nlohmann::json found_by_json(const std::vector<bundle::DiscoveryRecord>& found_by) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : found_by) {
    nlohmann::json o = {{"chart", f.chart}, {"method", f.method}, {"where", f.where}};
    if (!f.release.empty()) o["release"] = f.release;
    out.push_back(std::move(o));
  }
  return out;
}

nlohmann::json discovery_json(const std::vector<ChartDiscoveryReport>& reports) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : reports) {
    nlohmann::json unresolved = nlohmann::json::array();
    for (const auto& u : r.unresolved) {
      nlohmann::json o = {{"text", u.text},
                          {"method", std::string(values::to_string(u.found.method))},
                          {"where", u.found.where},
                          {"reason", u.reason}};
      if (!u.found.release.empty()) o["release"] = u.found.release;
      unresolved.push_back(std::move(o));
    }
    out.push_back({{"chart", r.chart}, {"methods", r.methods}, {"unresolved", unresolved}, {"warnings", r.warnings}});
  }
  return out;
}

// The plan of `pack --dry-run`: what the bundle would hold, and where each image comes from.
void print_plan(Output& out, const PackResult& r) {
  const auto& d = r.descriptor;
  if (out.json()) {
    nlohmann::json images = nlohmann::json::array();
    for (const auto& i : d.images) {
      nlohmann::json o = {{"ref", i.ref},           {"source", i.source},       {"digest", i.digest.str()},
                          {"mediaType", i.media_type}, {"platforms", i.platforms}, {"size", i.size}};
      if (i.source_digest) o["sourceDigest"] = i.source_digest->str();
      if (!i.found_by.empty()) o["foundBy"] = found_by_json(i.found_by);
      o["listed"] = static_cast<std::size_t>(&i - d.images.data()) < r.listed_images; // in the manifest's images:
      images.push_back(std::move(o));
    }
    nlohmann::json charts = nlohmann::json::array();
    for (const auto& c : d.charts) {
      nlohmann::json o = {{"name", c.name},     {"version", c.version},         {"source", c.source},
                          {"ref", c.ref},       {"digest", c.digest.str()},     {"archiveDigest", c.archive_digest.str()},
                          {"size", c.size},     {"images", c.images}};
      if (!c.source_url.empty()) o["sourceUrl"] = c.source_url;
      charts.push_back(std::move(o));
    }
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : d.files) {
      files.push_back({{"path", f.path}, {"source", f.source}, {"contentDigest", f.content_digest.str()}, {"size", f.size}});
    }
    print_json(out, {{"dryRun", true},
                     {"name", d.name},
                     {"version", d.version},
                     {"images", images},
                     {"charts", charts},
                     {"files", files},
                     {"discovery", discovery_json(r.discovery)},
                     {"blobs", d.blobs.size() - d.omitted_blobs()},
                     {"contentSize", d.blob_bytes()},
                     {"omittedBlobs", d.omitted_blobs()},
                     {"omittedBytes", d.omitted_bytes()}});
    return;
  }
  out.result(fmt::format("plan for {} {} (dry run: no layer downloaded, nothing written)", d.name, d.version));
  for (const auto& c : d.charts) {
    out.result(fmt::format("chart {} {} from {} ({}, {})", c.name, c.version, c.source_url.empty() ? c.source : c.source_url,
                           c.digest.str(), human_bytes(c.size)));
    const auto report = std::find_if(r.discovery.begin(), r.discovery.end(), [&](const auto& x) { return x.chart == c.name; });
    if (report != r.discovery.end()) {
      std::string methods;
      for (const auto& m : report->methods) methods += (methods.empty() ? "" : ", ") + m;
      out.result(fmt::format("  images: auto (from {}): {}", methods, c.images.size()));
    } else if (!c.images.empty()) {
      out.result(fmt::format("  images: {}", c.images.size()));
    }
    for (const auto& image : c.images) out.result("    " + image);
  }
  for (std::size_t n = 0; n < d.images.size(); ++n) {
    const auto& i = d.images[n];
    std::string platforms;
    for (const auto& p : i.platforms) platforms += (platforms.empty() ? "" : ", ") + p;
    out.result(fmt::format("image {} {}{}, {}", i.ref, i.digest.str(), platforms.empty() ? "" : " " + platforms,
                           human_bytes(i.size)));
    if (n < r.listed_images) out.result("  listed in the manifest as " + i.source);
    for (const auto& f : i.found_by) out.result("  found by " + found_by_text(f));
  }
  for (const auto& f : d.files) out.result(fmt::format("file {} from {}, {}", f.path, f.source, human_bytes(f.size)));
  for (const auto& report : r.discovery) {
    for (const auto& u : report.unresolved) {
      out.result(fmt::format("not packed (chart {}): {}{} at {}{}: {}", report.chart, u.text.empty() ? "" : "'" + u.text + "' ",
                             values::to_string(u.found.method), u.found.where,
                             u.found.release.empty() ? "" : " (release " + u.found.release + ")", u.reason));
    }
  }
  out.result(fmt::format("{} images, {} charts, {} files; {} blobs, {} of content", d.images.size(), d.charts.size(),
                         d.files.size(), d.blobs.size() - d.omitted_blobs(), human_bytes(d.blob_bytes())));
  if (d.differential()) {
    out.result(fmt::format("differential: {} blobs ({}) would be left out, the base has them", d.omitted_blobs(),
                           human_bytes(d.omitted_bytes())));
  }
}

// The manifest of a one-off bundle (--image, --chart): written as STEM.manifest.yaml
// beside the bundle -o names (or in `scratch` for a --dry-run without -o), so the bundle
// can be packed again with -f. An existing file of that name is used only when it holds
// exactly this manifest: anything else there is the user's and stays untouched.
std::filesystem::path one_off_manifest_file(const std::vector<std::string>& images,
                                            const std::vector<std::string>& charts, std::string name,
                                            const std::string& version, const std::string& output,
                                            std::optional<core::TempDir>& scratch, Output& out) {
  namespace fs = std::filesystem;
  if (images.empty() && charts.empty()) {
    throw core::UsageError("pack needs a manifest (-f FILE) or what to pack (--image, --chart)",
                           "e.g. ferry pack --image docker.io/library/busybox:1.36 -o quick-1.tar.zst --key release.key");
  }
  fs::path dir;
  std::string stem;
  if (!output.empty()) {
    stem = fs::path(output).filename().string();
    for (const std::string_view ext : {".tar.zst", ".zst"}) {
      if (stem.size() > ext.size() && stem.compare(stem.size() - ext.size(), ext.size(), ext) == 0) {
        stem.resize(stem.size() - ext.size());
        break;
      }
    }
    dir = fs::path(output).parent_path();
    if (dir.empty()) dir = ".";
  } else {
    scratch.emplace();
    dir = scratch->path();
    stem = name.empty() ? "one-off" : name;
  }
  if (name.empty()) name = stem;
  const std::string text = bundle::one_off_manifest({.name = name, .version = version, .images = images, .charts = charts});
  const fs::path file = dir / (stem + ".manifest.yaml");
  std::error_code ec;
  if (fs::exists(file, ec)) {
    if (core::read_file(file, 1u << 20) != text) {
      throw core::UsageError(core::display(file) + " exists and is not the manifest these --image/--chart flags make",
                             "pack it with -f " + core::display(file) + ", or move it away");
    }
  } else {
    core::write_file_atomic(file, text);
  }
  if (!scratch) out.info("wrote " + core::display(file) + ": this bundle's manifest (`ferry pack -f` packs it again)");
  return file;
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
    bool dry_run = false;
    std::string helm;
    std::string cache;
    bool no_cache = false;
    std::string split;
    bool locked = false;
    std::string lock_file;
    bool no_lock = false;
    std::vector<std::string> bases;
    std::vector<std::string> base_pubkeys;
    std::vector<std::string> images; // one-off bundle: --image, --chart, --name, --bundle-version
    std::vector<std::string> charts;
    std::string name;
    std::string bundle_version = "0";
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("pack", "Build a signed bundle from a bundle manifest");
  auto* file = cmd->add_option(
      "-f,--file", flags->manifest,
      "Bundle manifest (YAML, see manifests/), a Hauler manifest (kinds Images, Charts, Files) or a plain image list");
  auto* image = cmd->add_option("--image", flags->images,
                                "One-off bundle without a manifest: an image to pack, as in `images:` (repeatable)");
  auto* chart = cmd->add_option("--chart", flags->charts,
                                "One-off bundle: a chart, oci://HOST/PATH/NAME:VERSION or https://REPO_URL/NAME:VERSION "
                                "(VERSION exact or a constraint), with its images found (`images: auto`; repeatable)");
  file->excludes(image)->excludes(chart);
  cmd->add_option("--name", flags->name, "One-off bundle: its name (default: the stem of -o)")->excludes(file);
  cmd->add_option("--bundle-version", flags->bundle_version, "One-off bundle: its version (default 0)")->excludes(file);
  cmd->add_option("-o,--out", flags->output,
                  "Bundle to write, NAME.tar.zst (NAME.sha256 is written beside it); required unless --dry-run");
  cmd->add_option("--key", flags->key, "Private signing key (from `ferry keygen`); required unless --dry-run");
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
  cmd->add_flag("--dry-run", flags->dry_run,
                "Resolve everything (tags to digests, chart versions, `images: auto`) and print the plan with where each "
                "image comes from; no layer is downloaded and nothing is written");
  cmd->add_option("--helm", flags->helm,
                  "helm used to render charts with `images: auto` (default: helm from $PATH; without it, images are "
                  "discovered from annotations and values only, with a warning)");
  auto* cache = cmd->add_option(
      "--cache", flags->cache,
      "Content cache of registry blobs: each blob is kept there once verified and not downloaded again by later packs "
      "(default: $XDG_CACHE_HOME/ferry or ~/.cache/ferry; it only grows: delete it to clear it)");
  cmd->add_flag("--no-cache", flags->no_cache,
                "Use no cache: registry blobs go to a temporary directory beside the output and are removed once written")
      ->excludes(cache);
  cmd->add_option("--split", flags->split,
                  "Write volumes NAME.000.tar.zst, NAME.001.tar.zst, ... of at most SIZE bytes each (K/M/G/T suffixes, "
                  "powers of 1024) or a preset: fat32, dvd, dvd-dl, bd, bd-dl; each volume verifies and pushes alone "
                  "(docs/volumes.md)");
  auto* locked = cmd->add_flag("--locked", flags->locked,
                               "Pack exactly what the lock file records (charts and dependencies at its versions); fail, "
                               "naming each, when an image, chart archive or file differs from it (a tag moved upstream)");
  cmd->add_option("--lock-file", flags->lock_file,
                  "The lock file to write (or, with --locked, to read); default MANIFEST.lock.json beside the manifest "
                  "(NAME.lock.json for NAME.yaml)");
  cmd->add_flag("--no-lock", flags->no_lock, "Write no lock file")->excludes(locked);
  cmd->add_option("--base", flags->bases,
                  "Differential bundle: leave out every config and layer this base says the isolated side has: a "
                  "RECEIPT.json from `ferry inventory`, an earlier lock file, or an earlier bundle (.tar.zst or one "
                  "volume); repeatable, the bases are united (docs/differential.md)")
      ->allow_extra_args(false);
  cmd->add_option("--base-pubkey", flags->base_pubkeys,
                  "Receipts and bundles given with --base must be signed by this key (repeatable)")
      ->allow_extra_args(false);
  cmd->footer("Timestamps come from SOURCE_DATE_EPOCH (default 0): the same inputs give the same bundle bytes.\n"
              "With --image/--chart instead of -f, pack writes the equivalent manifest as NAME.manifest.yaml beside\n"
              "the bundle (and its lock file beside that), so `ferry pack -f NAME.manifest.yaml` packs it again.\n"
              "pack writes the lock file (every tag's digest, every chart's version and digest, every file's digest);\n"
              "`ferry pack --locked` packs exactly that again, to the byte.");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      if (!flags->dry_run && (flags->output.empty() || flags->key.empty())) {
        throw core::UsageError(std::string("pack needs ") +
                                   (flags->output.empty() && flags->key.empty() ? "--out and --key"
                                    : flags->output.empty()                     ? "--out"
                                                                                : "--key"),
                               "give the bundle to write with -o NAME.tar.zst and the signing key with --key, or use "
                               "--dry-run to see the plan");
      }
      std::optional<core::TempDir> scratch;
      const std::filesystem::path manifest =
          flags->manifest.empty() ? one_off_manifest_file(flags->images, flags->charts, flags->name,
                                                          flags->bundle_version, flags->output, scratch, out)
                                  : std::filesystem::path(flags->manifest);
      PackOptions options{.manifest = manifest,
                          .output = flags->output,
                          .key = flags->key,
                          .passphrase = read_passphrase(flags->passphrase_file),
                          .compression_level = flags->level,
                          .source_date_epoch = source_date_epoch_env().value_or(0),
                          .tool_version = ferry_version(),
                          .pull = {},
                          .platforms = {},
                          .dry_run = flags->dry_run,
                          .helm = flags->helm,
                          .cache = flags->no_cache        ? std::filesystem::path()
                                   : flags->cache.empty() ? default_cache_dir()
                                                          : std::filesystem::path(flags->cache)};
      const core::WipeOnExit wipe_passphrase(options.passphrase);
      if (options.cache.empty() && !flags->no_cache && !flags->dry_run) {
        out.warning("packing without a cache: neither $XDG_CACHE_HOME nor $HOME names a directory (give --cache DIR)");
      }
      if (!flags->split.empty()) options.split = bundle::parse_split_size(flags->split);
      options.locked = flags->locked;
      options.lock_file = flags->lock_file;
      options.write_lock = !flags->no_lock;
      options.bases = {flags->bases.begin(), flags->bases.end()};
      options.base_pubkeys = {flags->base_pubkeys.begin(), flags->base_pubkeys.end()};
      if (options.bases.empty() && !options.base_pubkeys.empty()) {
        throw core::UsageError("--base-pubkey without --base", "give the receipt, lock or bundle to pack against with --base");
      }
      options.pull.client = client_options(flags->registry);
      options.pull.jobs = flags->registry.jobs;
      for (const auto& m : flags->mirrors) options.pull.mirrors.push_back(Mirror::parse(m));
      for (const auto& p : flags->platforms) options.platforms.push_back(oci::Platform::parse(p));
      const PackResult r = pack(options, out, out);
      out.finish_progress();
      if (r.dry_run) {
        print_plan(out, r);
        return;
      }
      const auto& d = r.descriptor;
      if (out.json()) {
        nlohmann::json j = bundle_json(d, bundle::SignatureCheck{bundle::SignatureCheck::Status::verified,
                                                                 d.signer->key_id, d.signer->algorithm, flags->key, true},
                                       r.bundle_size);
        j["bundle"] = r.bundle_path.string();
        j["checksumFile"] = r.checksum_path.string();
        j["lockFile"] = r.lock_path.empty() ? nlohmann::json() : nlohmann::json(r.lock_path.string());
        j["locked"] = flags->locked;
        if (r.volumes.empty()) {
          j["sha256"] = std::string(r.bundle_digest->hex());
        } else {
          nlohmann::json volumes = nlohmann::json::array();
          for (const auto& v : r.volumes) {
            volumes.push_back({{"file", v.path.string()}, {"size", v.size}, {"sha256", std::string(v.digest.hex())}});
          }
          j["volumes"] = {{"limit", *options.split}, {"files", volumes}, {"piecedBlobs", r.pieced_blobs}};
        }
        // How `images: auto` found each image (ferry.json `foundBy`), in the same order.
        for (std::size_t i = 0; i < d.images.size() && i < j["images"].size(); ++i) {
          if (!d.images[i].found_by.empty()) j["images"][i]["foundBy"] = found_by_json(d.images[i].found_by);
        }
        if (!r.discovery.empty()) j["discovery"] = discovery_json(r.discovery);
        j["registryBlobs"] = {{"downloaded", r.registry_blobs.fetched_blobs},
                              {"downloadedBytes", r.registry_blobs.fetched_bytes},
                              {"fromCache", r.registry_blobs.reused_blobs},
                              {"fromCacheBytes", r.registry_blobs.reused_bytes},
                              {"cache", r.cache.empty() ? nlohmann::json() : nlohmann::json(r.cache.string())}};
        nlohmann::json removed = nlohmann::json::array();
        for (const auto& l : r.removed_leftovers) removed.push_back(l.path.string());
        j["removedLeftovers"] = removed;
        print_json(out, j);
        return;
      }
      if (r.volumes.empty()) {
        out.result(fmt::format("wrote {} ({}, sha256 {})", r.bundle_path.string(), human_bytes(r.bundle_size),
                               r.bundle_digest->hex()));
      } else {
        out.result(fmt::format("wrote {} volumes of at most {} ({} in all; {} blob{} in pieces)", r.volumes.size(),
                               human_bytes(*options.split), human_bytes(r.bundle_size), r.pieced_blobs,
                               r.pieced_blobs == 1 ? "" : "s"));
        for (const auto& v : r.volumes) {
          out.result(fmt::format("  {} ({}, sha256 {})", v.path.string(), human_bytes(v.size), v.digest.hex()));
        }
      }
      out.result(fmt::format("wrote {}", r.checksum_path.string()));
      if (!r.lock_path.empty()) out.result(fmt::format("wrote {}", r.lock_path.string()));
      if (flags->locked) out.result("packed as locked: every image, chart and file as the lock file records");
      if (d.differential()) {
        for (const auto& b : d.bases) out.result("base: " + bundle::base_text(b));
        out.result(fmt::format("differential: {} blobs ({}) left out, the base has them; push checks that the target does",
                               d.omitted_blobs(), human_bytes(d.omitted_bytes())));
      }
      const PullStats& pulled = r.registry_blobs;
      if (pulled.fetched_blobs + pulled.reused_blobs > 0) {
        out.result(fmt::format("registry blobs: {} downloaded ({}){}", pulled.fetched_blobs,
                               human_bytes(pulled.fetched_bytes),
                               r.cache.empty() ? std::string(", no cache")
                                               : fmt::format(", {} from the cache {} ({})", pulled.reused_blobs,
                                                             r.cache.string(), human_bytes(pulled.reused_bytes))));
      }
      out.result(fmt::format("{} images, {} charts, {} files; {} blobs, {} of content{}; signed by {} key {}",
                             d.images.size(), d.charts.size(), d.files.size(), d.blobs.size() - d.omitted_blobs(),
                             human_bytes(d.blob_bytes()),
                             d.unshared_bytes() > d.blob_bytes() + d.omitted_bytes()
                                 ? fmt::format(" ({} saved by sharing)",
                                               human_bytes(d.unshared_bytes() - d.blob_bytes() - d.omitted_bytes()))
                                 : std::string(),
                             d.signer->algorithm, d.signer->key_id));
    };
  });
}

} // namespace ferry::cli

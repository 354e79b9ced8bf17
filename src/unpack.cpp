// Verify, inspect and extract: compose the bundle reader with files on disk; and the
// isolated-side pipeline: verify, push, values, check, upgrade.
// SPDX-License-Identifier: Apache-2.0
#include "unpack.hpp"

#include "bundle/signing.hpp"
#include "bundle/volume_set.hpp"
#include "bundle/volumes.hpp"
#include "check.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/process.hpp"
#include "core/secret.hpp"
#include "image_push.hpp"
#include "isolated.hpp"
#include "releases.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <set>
#include <fcntl.h>
#include <unistd.h>

namespace ferry {

namespace fs = std::filesystem;

namespace {


std::uint64_t size_or_zero(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// Writes one verified entry below the extraction directory.
class FileEntrySink final : public bundle::EntrySink {
public:
  FileEntrySink(const fs::path& path) : m_path(path) {
    fs::create_directories(path.parent_path());
    core::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot create " + core::display(path) + ": " + core::errno_text(err));
    }
    m_sink.emplace(std::move(fd), core::display(path));
  }
  void write(const char* data, std::size_t size) override { m_sink->write(data, size); }
  // The whole directory is synced once before it is renamed into place.
  void commit() override { m_sink.reset(); }

private:
  fs::path m_path;
  std::optional<core::FdSink> m_sink;
};

void sync_directory_tree(const fs::path& dir) {
  core::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::syncfs(fd.get()) != 0) {
    const int err = errno;
    throw core::Error(core::ExitCode::failure, "cannot flush " + core::display(dir) + " to disk: " + core::errno_text(err));
  }
}

} // namespace

static constexpr std::string_view k_skip_warning =
    "--insecure-skip-signature: the signature of this bundle is NOT checked. Its contents are checked only against "
    "its own ferry.json, which anyone who could change the bundle could also have rewritten";

bundle::SignaturePolicy load_trust(const TrustOptions& trust, bundle::TrustedKeys& keys, core::LogSink& log,
                                   bool keys_required) {
  for (const auto& path : trust.pubkeys) keys.add(bundle::PublicKey::load(path));
  if (trust.insecure_skip_signature) {
    log.warning(k_skip_warning);
    return bundle::SignaturePolicy::skip;
  }
  if (keys.empty()) {
    if (!keys_required) return bundle::SignaturePolicy::skip;
    throw core::UsageError("no trusted public key given",
                           "pass the release engineer's key with --pubkey KEY.pub (repeatable); only to accept an "
                           "unverified bundle, pass --insecure-skip-signature");
  }
  return bundle::SignaturePolicy::require;
}

GivenFiles given_files(const bundle::VolumeSet& set) {
  GivenFiles files;
  files.split = set.split;
  files.count = set.count;
  files.limit = set.split ? set.descriptor.volumes->limit : 0;
  for (const auto& g : set.given) files.given.push_back(GivenFile{g.path, g.volume, size_or_zero(g.path), {}});
  files.missing = set.missing;
  for (const std::uint32_t k : set.missing) files.missing_names.push_back(set.name_of(k));
  return files;
}

namespace {

std::string file_label(const bundle::VolumeSet& set, const bundle::GivenVolume& g) {
  return set.split ? "volume " + std::to_string(g.volume) + " (" + core::display(g.path) + ")" : core::display(g.path);
}

// Writes a piece at its offset in the blob's one file (opened without O_EXCL: the other
// pieces, from other volumes, land in the same file).
class PieceEntrySink final : public bundle::EntrySink {
public:
  PieceEntrySink(const fs::path& path, std::uint64_t offset) : m_path(path), m_offset(offset) {
    fs::create_directories(path.parent_path());
    m_fd = core::UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!m_fd) {
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot open " + core::display(path) + ": " + core::errno_text(err));
    }
  }
  void write(const char* data, std::size_t size) override {
    while (size > 0) {
      const ssize_t n = ::pwrite(m_fd.get(), data, size, static_cast<off_t>(m_offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        throw core::Error(core::ExitCode::failure, "cannot write " + core::display(m_path) + ": " + core::errno_text(err));
      }
      data += n;
      size -= static_cast<std::size_t>(n);
      m_offset += static_cast<std::uint64_t>(n);
    }
  }
  void commit() override { m_fd = core::UniqueFd(); }

private:
  fs::path m_path;
  std::uint64_t m_offset;
  core::UniqueFd m_fd;
};

// A blob extracted from its pieces: its one file must hold exactly the blob.
void check_joined_blob(const fs::path& file, const bundle::BlobRecord& blob) {
  core::FileSource in(file);
  core::HashingSource hashing(in);
  core::NullSink discard;
  core::copy(hashing, discard);
  const core::Digest actual = hashing.finish();
  if (hashing.count() != blob.size || actual != blob.digest) {
    throw core::IntegrityError("blob " + blob.digest.str() + " joined from its " + std::to_string(blob.pieces.size()) +
                                   " pieces is " + std::to_string(hashing.count()) + " bytes with digest " + actual.str() +
                                   ", expected " + std::to_string(blob.size) + " bytes with that digest",
                               "verify each volume with `ferry verify`, then copy the bad ones again");
  }
}

} // namespace

VerifyResult verify_bundle(const std::vector<fs::path>& bundles, const TrustOptions& trust, core::LogSink& log,
                           core::ProgressSink& progress) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(trust, keys, log, true);
  const bundle::VolumeSet set = bundle::open_volume_set(bundles, keys, policy);
  VerifyResult result;
  result.descriptor = set.descriptor;
  result.signature = set.signature;
  result.files = given_files(set);
  for (std::size_t i = 0; i < set.given.size(); ++i) {
    const bundle::GivenVolume& g = set.given[i];
    GivenFile& report = result.files.given[i];
    core::with_context("verifying " + file_label(set, g), [&] {
      core::FileSource in(g.path);
      bundle::BundleReader reader(in, core::display(g.path));
      bundle::reopen_volume(set, g, reader, keys, policy);
      report.stats = reader.read_entries(nullptr, progress);
    });
    result.stats.entries += report.stats.entries;
    result.stats.bytes += report.stats.bytes;
    result.bundle_size += report.size;
    if (set.split) log.info("volume " + std::to_string(g.volume) + " (" + core::display(g.path) + "): OK");
  }
  return result;
}

InspectResult inspect_bundle(const std::vector<fs::path>& bundles, const TrustOptions& trust, core::LogSink& log) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(trust, keys, log, false);
  return core::with_context("inspecting " + core::display(bundles.empty() ? fs::path() : bundles.front()), [&] {
    const bundle::VolumeSet set = bundle::open_volume_set(bundles, keys, policy);
    InspectResult result{set.descriptor, set.signature, 0, given_files(set)};
    for (const auto& f : result.files.given) result.bundle_size += f.size;
    return result;
  });
}

ExtractResult extract_bundle(const std::vector<fs::path>& bundles, const fs::path& directory, const TrustOptions& trust,
                             core::LogSink& log, core::ProgressSink& progress) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(trust, keys, log, true);
  std::error_code ec;
  if (fs::exists(fs::symlink_status(directory))) {
    if (!fs::is_directory(fs::symlink_status(directory)) || !fs::is_empty(directory, ec)) {
      throw core::UsageError(core::display(directory) + " already exists and is not an empty directory",
                             "choose a new output directory with -o");
    }
  }
  const fs::path parent = directory.has_parent_path() ? directory.parent_path() : fs::path(".");
  if (!fs::is_directory(parent)) {
    throw core::UsageError("output directory " + core::display(parent) + " does not exist", "create it first");
  }
  const bundle::VolumeSet set = bundle::open_volume_set(bundles, keys, policy);
  if (set.descriptor.differential()) {
    // A layout without the omitted blobs would look complete and fail whoever reads it.
    std::string bases;
    for (const auto& b : set.descriptor.bases) bases += (bases.empty() ? "" : "; ") + bundle::base_text(b);
    throw core::UsageError("bundle " + set.bundle_text() + " is differential: it leaves out " +
                               std::to_string(set.descriptor.omitted_blobs()) + " blobs its base has (" + bases +
                               "), so it cannot be extracted to a complete OCI layout",
                           "push it to the registry that holds the base (`ferry push`), or ask for a full bundle "
                           "(`ferry pack` without --base)");
  }
  bundle::require_every_volume(set, "extract");
  return core::with_context("extracting " + core::display(set.given.front().path) + " to " + core::display(directory), [&] {
    core::TempDir staging(directory, "extract");
    ExtractResult result;
    result.verify.descriptor = set.descriptor;
    result.verify.signature = set.signature;
    result.verify.files = given_files(set);
    std::set<std::string> written; // entries every volume repeats are written once
    for (std::size_t i = 0; i < set.given.size(); ++i) {
      const bundle::GivenVolume& g = set.given[i];
      GivenFile& report = result.verify.files.given[i];
      core::with_context("reading " + file_label(set, g), [&] {
        core::FileSource in(g.path);
        bundle::BundleReader reader(in, core::display(g.path));
        bundle::reopen_volume(set, g, reader, keys, policy);
        report.stats = reader.read_entries(
            [&](const bundle::StreamEntry& entry) -> std::unique_ptr<bundle::EntrySink> {
              if (entry.piece) {
                return std::make_unique<PieceEntrySink>(staging.path() / bundle::blob_entry_path(entry.piece->blob),
                                                        entry.piece->offset);
              }
              if (!written.insert(entry.path).second) return nullptr;
              return std::make_unique<FileEntrySink>(staging.path() / entry.path);
            },
            progress);
      });
      result.verify.stats.entries += report.stats.entries;
      result.verify.stats.bytes += report.stats.bytes;
      result.verify.bundle_size += report.size;
    }
    for (const auto& b : set.descriptor.blobs) {
      if (b.pieces.empty()) continue;
      core::with_context("joining the pieces of blob " + b.digest.str(), [&] {
        check_joined_blob(staging.path() / bundle::blob_entry_path(b.digest), b);
      });
    }
    // The signed descriptor travels with the layout so the directory can be re-checked
    // with openssl and sha256sum later (docs/bundle-format.md).
    core::write_file_atomic(staging.path() / bundle::k_descriptor_path, set.descriptor_bytes);
    if (!set.signature_text.empty()) {
      core::write_file_atomic(staging.path() / bundle::k_signature_path, set.signature_text);
    }
    sync_directory_tree(staging.path());
    if (::rename(staging.path().c_str(), directory.c_str()) != 0) {
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot rename " + core::display(staging.path()) + " to " +
                                                     core::display(directory) + ": " + core::errno_text(err));
    }
    staging.keep();
    result.directory = directory;
    return result;
  });
}

std::string pull_secret_config(const std::string& host, const std::optional<registry::Credentials>& credentials) {
  if (!credentials || credentials->username.empty() || credentials->password.empty()) {
    throw core::UsageError("--create-pull-secrets needs the registry's user name and password",
                           "echo \"$PASSWORD\" | ferry ... --create-pull-secrets --username USER --password-stdin");
  }
  const std::string& user = credentials->username;
  const std::string& password = credentials->password;
  const nlohmann::json config = {
      {"auths",
       {{host, {{"username", user}, {"password", password}, {"auth", core::base64_encode(user + ":" + password)}}}}}};
  return config.dump();
}

namespace {

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The values stage of one release: the overlay over the bundle's values and the site's,
// and a report holding no site value but those the overlay overrides.
ReleaseValuesReport release_values(const ReleaseInputs& inputs, const SiteValues& site, const PushTarget& target,
                                   const std::vector<values::KnownImage>& images, bool pin_digests,
                                   bool reuse_values, values::Result& overlay) {
  overlay = core::with_context("computing the image overlay of release " + inputs.release.name, [&] {
    return release_overlay(inputs, target, images, pin_digests, site.documents(), site.names());
  });
  ReleaseValuesReport report;
  report.name = inputs.release.name;
  report.namespace_name = inputs.release.namespace_name;
  report.chart = inputs.chart.name + " " + inputs.chart.version;
  report.overrides = overlay_overrides(site, overlay);
  const std::set<std::string> from_site = site_paths(site);
  report.changes = overlay.changes;
  for (auto& change : report.changes) {
    const bool overridden = std::any_of(report.overrides.begin(), report.overrides.end(),
                                        [&](const OverlayOverride& o) { return o.key == change.path; });
    // The old value of a key the site set is shown only as an override (then it is an
    // image location the overlay replaces).
    if (!overridden && from_site.count(change.path) != 0) change.old_value = "(site value)";
  }
  report.skipped = overlay.skipped;
  for (auto& skipped : report.skipped) {
    if (from_site.count(skipped.path) != 0) skipped.value = "(site value)";
  }
  report.unplaced = overlay.unplaced;
  report.by_rules = overlay.by_rules;
  report.set_keys = site.set_keys;
  report.set_file_keys = site.set_file_keys;
  for (const auto& f : site.files) report.site_files.push_back(core::display(f));
  report.required = site.required;
  if (site.live_skipped) {
    report.live_values = "not read (--plan)";
  } else if (site.live_yaml) {
    report.live_values = "read";
  } else if (reuse_values) {
    report.live_values = "none (not installed)";
  }
  return report;
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

} // namespace

UnpackResult unpack_bundle(const UnpackOptions& options, core::LogSink& log, core::ProgressSink& progress) {
  const PushTarget target = PushTarget::parse(options.registry);
  if (options.trust.pubkeys.empty() && !options.trust.insecure_skip_signature) {
    throw core::UsageError("no trusted public key given",
                           "pass the release engineer's key with --pubkey KEY.pub (repeatable); only to accept an "
                           "unverified bundle, pass --insecure-skip-signature");
  }
  std::string pull_secrets; // the registry password, in JSON: wiped when unpack ends
  const core::WipeOnExit wipe_pull_secrets(pull_secrets);
  if (options.create_pull_secrets && options.upgrade) {
    pull_secrets = pull_secret_config(target.host, options.client.credentials);
  }
  UnpackResult result;
  result.registry = target.str();

  // 0. The releases (from the signed ferry.json alone) and the site's values for them:
  // every mistake in the site's flags, and every missing required key, is found before
  // anything is pushed.
  if (options.bundles.empty()) throw core::UsageError("no bundle file given", "name the bundle, or all its volumes");
  const InspectResult head = inspect_bundle(options.bundles, options.trust, log);
  // Pushing or verifying a split bundle here needs all of it: refused before anything is
  // pushed (`ferry push --partial` takes volumes one at a time).
  if ((options.push || options.verify) && !head.files.missing.empty()) {
    std::string names;
    for (const auto& n : head.files.missing_names) names += (names.empty() ? "" : ", ") + n;
    throw core::IntegrityError("unpack needs every volume of bundle " + head.descriptor.name + " " +
                                   head.descriptor.version + ": " + std::to_string(head.files.missing.size()) + " of " +
                                   std::to_string(head.files.count) + " not given: " + names,
                               "give all " + std::to_string(head.files.count) +
                                   " volumes (a shell glob such as NAME.*.tar.zst will do), or push them one at a time "
                                   "with `ferry push --partial` and then run `ferry upgrade`");
  }
  // Every volume carries ferry.json and the chart archives: the later stages read the first.
  const fs::path& first = head.files.given.front().path;
  const std::string shown = core::display(first) + (head.files.given.size() > 1
                                                        ? " and " + std::to_string(head.files.given.size() - 1) + " more volumes"
                                                        : std::string());
  result.bundle_name = head.descriptor.name + " " + head.descriptor.version;
  const std::vector<BundleRelease> releases = bundle_releases(head.descriptor);
  const std::vector<SiteValues> sites =
      resolve_site_values(releases, options.site, options.tools, options.plan ? LiveValues::skip : LiveValues::read,
                          "bundle " + result.bundle_name, log);
  if (options.upgrade) {
    require_site_values(sites, log);
  } else {
    for (const auto& s : sites) {
      if (!s.missing.empty()) {
        log.warning(s.release + ": required site " + (s.missing.size() == 1 ? "key " : "keys ") +
                    join_names(s.missing) + " not given (needed for the upgrade)");
      }
    }
  }

  // 1.+2. verify and push.
  if (options.push) {
    log.info(std::string("stage push") + (options.plan || options.dry_run ? " (dry run)" : "") + ": " +
             shown + " -> " + target.str());
    PushOptions push;
    push.bundles = options.bundles;
    push.target = target;
    push.trust = options.trust;
    push.client = options.client;
    push.dry_run = options.plan || options.dry_run;
    push.jobs = options.jobs;
    push.state_dir = options.state_dir;
    auto pushed = std::make_shared<PushResult>(push_bundle(push, log, progress));
    log.info("push: " + plural(pushed->blobs_uploaded, "blob", "blobs") +
             (push.dry_run ? " to upload, " : " uploaded, ") + std::to_string(pushed->blobs_present) + " already there; " +
             plural(pushed->manifests_pushed, "manifest", "manifests") + (push.dry_run ? " to push" : " pushed"));
    result.push = std::move(pushed);
  } else if (options.verify) {
    log.info("stage verify: " + shown + " (push skipped)");
    result.verify = verify_bundle(options.bundles, options.trust, log, progress);
  }

  // 3. values.
  log.info("stage values: overlays for " + target.str());
  const LoadedBundle loaded = load_bundle_releases(first, options.trust, log);
  result.bundle_id = loaded.descriptor_digest;
  if (loaded.releases.size() != sites.size()) {
    throw core::Error(core::ExitCode::failure, "bundle " + core::display(first) + " changed while it was read",
                      "make sure nothing writes to the bundle, and run again");
  }
  const std::vector<values::KnownImage> images = bundle_images(loaded.descriptor);
  std::vector<values::Result> overlays;
  for (std::size_t k = 0; k < loaded.releases.size(); ++k) {
    values::Result overlay;
    result.values.push_back(
        release_values(loaded.releases[k], sites[k], target, images, options.pin_digests,
                       options.site.reuse_values, overlay));
    const ReleaseValuesReport& report = result.values.back();
    log.info(report.name + ": " + plural(report.changes.size(), "value", "values") + " rewritten, " +
             std::to_string(report.skipped.size()) + " skipped" +
             (report.unplaced.empty() ? std::string() : ", no value places " + join_names(report.unplaced)));
    for (const auto& o : report.overrides) {
      log.warning(report.name + ": the image overlay overrides the site's " + o.key + " (" + o.site_value + " -> " +
                  o.overlay_value + ")");
    }
    overlays.push_back(std::move(overlay));
  }

  // Everything written for helm lives here (0700; values files 0600) and goes with it.
  core::TempDir work({}, "ferry-unpack");

  // 4. check.
  if (options.check) {
    if (options.plan) {
      result.check_skipped = "--plan: check would render every release with helm template and its overlay";
      log.info("check: not run with --plan (it runs helm template)");
    } else if (!core::find_program(options.tools.helm)) {
      result.check_skipped = "helm not found ('" + options.tools.helm + "'); give its path with --helm";
      log.warning("check skipped: helm not found ('" + options.tools.helm +
                  "'), so the rendered images were not checked; give its path with --helm");
    } else {
      log.info("stage check: rendering every release with helm template");
      const fs::path dir = work.path() / "overlays";
      fs::create_directories(dir);
      for (std::size_t k = 0; k < overlays.size(); ++k) {
        core::write_file_atomic(dir / (loaded.releases[k].release.name + ".yaml"), overlays[k].overlay_yaml, 0600);
      }
      CheckOptions check;
      check.bundle = first;
      check.target = target;
      check.trust = options.trust;
      check.values_dir = dir;
      check.helm = options.tools.helm;
      check.sites = sites;
      auto checked = std::make_shared<CheckResult>(check_bundle(check, log));
      require_check_passed(*checked, target);
      result.check = std::move(checked);
    }
  }

  // 5. upgrade.
  if (options.upgrade) {
    log.info(std::string("stage upgrade") + (options.plan ? " (plan)" : options.dry_run ? " (dry run)" : ""));
    UpgradeOptions upgrade;
    upgrade.tools = options.tools;
    upgrade.bundle_id = result.bundle_id;
    upgrade.state_dir = options.state_dir;
    upgrade.plan = options.plan;
    upgrade.dry_run = options.dry_run;
    upgrade.registry = target.str();
    upgrade.pull_secret_dockerconfigjson = pull_secrets;
    const core::WipeOnExit wipe_upgrade_secret(upgrade.pull_secret_dockerconfigjson);
    for (std::size_t k = 0; k < loaded.releases.size(); ++k) {
      const ReleaseInputs& inputs = loaded.releases[k];
      const BundleRelease& r = inputs.release;
      const fs::path dir = work.path() / ("release-" + std::to_string(k));
      ReleasePlan plan;
      plan.name = r.name;
      plan.namespace_name = r.namespace_name;
      plan.chart_name = inputs.chart.name;
      plan.chart_version = inputs.chart.version;
      plan.values_files = write_release_values(r, sites[k], overlays[k].overlay_yaml, dir);
      plan.chart_archive = dir / (inputs.chart.name + "-" + inputs.chart.version + ".tgz");
      core::write_file_atomic(plan.chart_archive, inputs.chart_archive, 0600);
      plan.wait = r.wait;
      if (!r.timeout.empty()) plan.timeout = r.timeout;
      plan.atomic = r.atomic || options.atomic;
      plan.create_namespace = r.create_namespace;
      plan.upgrade_crds = r.upgrade_crds;
      plan.image_pull_secrets = r.image_pull_secrets;
      upgrade.releases.push_back(std::move(plan));
    }
    result.upgrade = run_upgrade(upgrade, log);
  }
  return result;
}

} // namespace ferry

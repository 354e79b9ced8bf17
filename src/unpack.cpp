// Verify, inspect and extract: compose the bundle reader with files on disk; and the
// isolated-side pipeline: verify, push, values, check, upgrade.
// SPDX-License-Identifier: Apache-2.0
#include "unpack.hpp"

#include "bundle/signing.hpp"
#include "check.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/process.hpp"
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

VerifyResult verify_bundle(const fs::path& path, const TrustOptions& trust, core::LogSink& log,
                           core::ProgressSink& progress) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(trust, keys, log, true);
  return core::with_context("verifying " + core::display(path), [&] {
    core::FileSource in(path);
    bundle::BundleReader reader(in, core::display(path));
    reader.open(keys, policy);
    VerifyResult result;
    result.stats = reader.read_entries(nullptr, progress);
    result.descriptor = reader.descriptor();
    result.signature = reader.signature();
    result.bundle_size = size_or_zero(path);
    return result;
  });
}

InspectResult inspect_bundle(const fs::path& path, const TrustOptions& trust, core::LogSink& log) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(trust, keys, log, false);
  return core::with_context("inspecting " + core::display(path), [&] {
    core::FileSource in(path);
    bundle::BundleReader reader(in, core::display(path));
    reader.open(keys, policy);
    return InspectResult{reader.descriptor(), reader.signature(), size_or_zero(path)};
  });
}

ExtractResult extract_bundle(const fs::path& path, const fs::path& directory, const TrustOptions& trust,
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
  return core::with_context("extracting " + core::display(path) + " to " + core::display(directory), [&] {
    core::TempDir staging(directory, "extract");
    core::FileSource in(path);
    bundle::BundleReader reader(in, core::display(path));
    reader.open(keys, policy);
    ExtractResult result;
    result.verify.stats = reader.read_entries(
        [&](const bundle::StreamEntry& entry) { return std::make_unique<FileEntrySink>(staging.path() / entry.path); },
        progress);
    result.verify.descriptor = reader.descriptor();
    result.verify.signature = reader.signature();
    result.verify.bundle_size = size_or_zero(path);
    // The signed descriptor travels with the layout so the directory can be re-checked
    // with openssl and sha256sum later (docs/bundle-format.md).
    core::write_file_atomic(staging.path() / bundle::k_descriptor_path, reader.descriptor_bytes());
    if (!reader.signature_text().empty()) {
      core::write_file_atomic(staging.path() / bundle::k_signature_path, reader.signature_text());
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
  std::string pull_secrets;
  if (options.create_pull_secrets && options.upgrade) {
    pull_secrets = pull_secret_config(target.host, options.client.credentials);
  }
  UnpackResult result;
  result.registry = target.str();

  // 0. The releases (from the signed ferry.json alone) and the site's values for them:
  // every mistake in the site's flags, and every missing required key, is found before
  // anything is pushed.
  const InspectResult head = inspect_bundle(options.bundle, options.trust, log);
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
             core::display(options.bundle) + " -> " + target.str());
    PushOptions push;
    push.bundle = options.bundle;
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
    log.info("stage verify: " + core::display(options.bundle) + " (push skipped)");
    result.verify = verify_bundle(options.bundle, options.trust, log, progress);
  }

  // 3. values.
  log.info("stage values: overlays for " + target.str());
  const LoadedBundle loaded = load_bundle_releases(options.bundle, options.trust, log);
  result.bundle_id = loaded.descriptor_digest;
  if (loaded.releases.size() != sites.size()) {
    throw core::Error(core::ExitCode::failure, "bundle " + core::display(options.bundle) + " changed while it was read",
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
      check.bundle = options.bundle;
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

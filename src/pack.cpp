// The pack pipeline: composes the manifest parser, the local sources, the chart reader,
// the signer and the tar writer; it holds no format knowledge of its own.
// SPDX-License-Identifier: Apache-2.0
#include "pack.hpp"

#include "bundle/bundle_manifest.hpp"
#include "bundle/signing.hpp"
#include "bundle/tar_writer.hpp"
#include "chart/chart_archive.hpp"
#include "chart_pull.hpp"
#include "differential.hpp"
#include "pack_cache.hpp"
#include "pack_space.hpp"
#include "releases.hpp"
#include "core/background_sink.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/process.hpp"
#include "oci/blob_store.hpp"
#include "oci/docker_archive.hpp"
#include "oci/layout_reader.hpp"
#include "oci/manifest.hpp"
#include "oci/media_types.hpp"
#include "oci/reference.hpp"
#include "values/discover.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <unistd.h>

namespace ferry {

namespace fs = std::filesystem;

std::filesystem::path checksum_path_for(const fs::path& bundle) {
  std::string name = bundle.filename().string();
  constexpr std::string_view suffix = ".tar.zst";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    name.resize(name.size() - suffix.size());
  }
  return bundle.parent_path() / (name + ".sha256");
}

namespace {

struct PlannedBlob {
  oci::BlobRef ref;
  std::string origin; // what it came from, for messages
};

// Everything that goes into the bundle's layout, deduplicated by digest.
class Plan {
public:
  void add(const oci::BlobRef& ref, const std::string& origin) {
    auto [it, inserted] = m_blobs.emplace(ref.descriptor.digest, PlannedBlob{ref, origin});
    if (inserted) return;
    PlannedBlob& have = it->second;
    if (have.ref.descriptor.size != ref.descriptor.size) {
      throw core::IntegrityError("blob " + ref.descriptor.digest.str() + " is " + std::to_string(ref.descriptor.size) +
                                 " bytes in " + origin + " but " + std::to_string(have.ref.descriptor.size) + " bytes in " +
                                 have.origin);
    }
    // A copy ferry already checked is cheaper to write than one that must be hashed.
    if (have.ref.checked == oci::Checked::no && ref.checked == oci::Checked::yes) have = PlannedBlob{ref, origin};
  }
  void add_stored(oci::BlobStore& store, const oci::StoredBlob& stored, std::string media_type, const std::string& origin) {
    add(oci::BlobRef{oci::Descriptor{std::move(media_type), stored.digest, stored.size, {}, {}, {}, {}},
                     store.path(stored.digest), 0, oci::Checked::yes},
        origin);
  }
  void add_root(oci::Descriptor root, const std::string& ref_name) {
    if (!m_ref_names.insert(ref_name).second) {
      throw core::UsageError("two entries of the manifest are both named " + ref_name,
                             "give each image a distinct `name:` (or remove the duplicate)");
    }
    // Only the name ferry gives it: a source's own names (io.containerd.image.name,
    // its ref.name) would contradict a `name:` from the manifest.
    root.annotations = {{std::string(oci::k_annotation_ref_name), ref_name}};
    m_roots.push_back(std::move(root));
  }

  // Manifests and indexes first (by digest), so a reader knows which blob belongs to
  // which image before the bulk arrives; then everything else, largest first (ties by
  // digest): pack downloads and push uploads follow the stream, and the long transfers
  // should start early while small ones fill the gaps.
  std::vector<const PlannedBlob*> ordered() const {
    std::vector<const PlannedBlob*> out;
    for (const auto& [digest, blob] : m_blobs) out.push_back(&blob); // by digest
    std::stable_sort(out.begin(), out.end(), [](const PlannedBlob* a, const PlannedBlob* b) {
      const bool ma = is_metadata(*a), mb = is_metadata(*b);
      if (ma != mb) return ma;
      if (ma) return false;
      return a->ref.descriptor.size > b->ref.descriptor.size;
    });
    return out;
  }
  const std::vector<oci::Descriptor>& roots() const noexcept { return m_roots; }

  static bool is_metadata(const PlannedBlob& b) {
    return oci::media_type::is_index(b.ref.descriptor.media_type) || oci::media_type::is_manifest(b.ref.descriptor.media_type);
  }

private:
  std::map<core::Digest, PlannedBlob> m_blobs;
  std::vector<oci::Descriptor> m_roots;
  std::set<std::string> m_ref_names;
};

oci::PlatformFilter filter_for(const bundle::BundleManifest& manifest, const bundle::ManifestImage& image,
                               const std::vector<oci::Platform>& override_default) {
  if (!image.platforms.empty()) return oci::PlatformFilter(image.platforms);
  return oci::PlatformFilter(override_default.empty() ? manifest.platforms : override_default);
}

// The full reference an image is known by: `name:` if given, else the name its source
// records. A bare tag ("latest", as umoci and skopeo write into ref.name) is no name.
std::string image_ref_name(const bundle::ManifestImage& image, const oci::ResolvedImage& resolved, const std::string& where) {
  std::string name = image.name.empty() ? resolved.ref_name : image.name;
  const bool bare_tag = name.find('/') == std::string::npos && name.find(':') == std::string::npos;
  if (name.empty() || bare_tag) {
    throw core::UsageError(where + ": image " + image.ref + " records no repository name" +
                               (name.empty() ? "" : " (only the tag '" + name + "')"),
                           "add `name: REPOSITORY:TAG` to this image in the manifest");
  }
  return oci::Reference::parse(name).str();
}

std::uint64_t sum_sizes(const std::vector<oci::BlobRef>& blobs) {
  std::uint64_t total = 0;
  for (const auto& b : blobs) total += b.descriptor.size;
  return total;
}

// A resolved image into the plan and ferry.json, under `ref_name`.
// Image source -> each platform's manifest digest, for the lock.
using PlatformDigests = std::vector<std::pair<std::string, std::vector<std::pair<std::string, core::Digest>>>>;

void add_image(Plan& plan, bundle::BundleDescriptor& descriptor, const oci::ResolvedImage& resolved,
               const std::string& ref_name, const std::string& source, core::LogSink& log, PlatformDigests& platform_digests) {
  std::vector<std::pair<std::string, core::Digest>> per_platform;
  for (const auto& blob : resolved.blobs) {
    if (blob.descriptor.platform && oci::media_type::is_manifest(blob.descriptor.media_type)) {
      per_platform.emplace_back(blob.descriptor.platform->str(), blob.descriptor.digest);
    }
  }
  platform_digests.emplace_back(source, std::move(per_platform));
  for (const auto& blob : resolved.blobs) plan.add(blob, source);
  plan.add_root(resolved.root, ref_name);
  descriptor.images.push_back(bundle::ImageRecord{ref_name, source, resolved.root.digest, resolved.source_digest,
                                                  resolved.root.media_type, resolved.platforms,
                                                  sum_sizes(resolved.blobs)});
  std::string platforms;
  for (const auto& p : resolved.platforms) platforms += (platforms.empty() ? "" : ", ") + p;
  log.info("image " + ref_name + (source == ref_name ? std::string() : " from " + source) + ": " +
           std::to_string(resolved.blobs.size()) + " blobs, " +
           std::to_string(sum_sizes(resolved.blobs)) + " bytes" + (platforms.empty() ? "" : ", " + platforms));
}

std::string oci_tag(std::string version) {
  // Helm stores a chart version's '+' as '_' in OCI tags (tags cannot hold '+').
  std::replace(version.begin(), version.end(), '+', '_');
  return version;
}

std::string mode_text(unsigned mode) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "%04o", mode & 07777);
  return buffer;
}

// --- images: auto ----------------------------------------------------------------------

// A `helm template` that takes longer than this is not waited for (its images are then
// discovered from annotations and values only).
constexpr std::chrono::seconds k_render_timeout{120};

// What the site supplies (`set:` keys left empty) is filled with this for the render, so
// that templates using `required` render.
constexpr std::string_view k_site_placeholder = "ferry-site-supplied";

// An image `images: auto` found, with how (for every chart that needs it).
struct FoundImage {
  std::string ref; // normalised
  std::vector<bundle::DiscoveryRecord> found_by;
  std::string bundle_ref; // the name it has in the bundle (set when images are packed)
};

// A chart pulled, stored, and waiting for its index entry (images come first in index.json).
struct PreparedChart {
  bundle::ChartRecord record;
  oci::Descriptor root;
  std::vector<std::size_t> found; // indexes into the found images
};

// helm for `images: auto` renders.
struct Helm {
  std::optional<fs::path> program;
  std::string missing; // why there is none, for the warning
};

Helm find_helm(const std::string& given) {
  Helm helm;
  const std::string name = given.empty() ? "helm" : given;
  helm.program = core::find_program(name);
  if (helm.program) return helm;
  if (!given.empty()) {
    const bool is_path = given.find('/') != std::string::npos;
    const std::string why = is_path ? given + " is not an executable file" : "'" + given + "' is not in $PATH";
    throw core::UsageError("helm not found: " + why,
                           "give the path of helm 3 with --helm, or leave --helm out to discover images without rendering");
  }
  helm.missing = "helm is not in $PATH";
  return helm;
}

// helm's --set syntax reads ',' as a separator and '\' as an escape.
std::string set_escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == ',') out += '\\';
    out += c;
  }
  return out;
}

// The first lines of a tool's complaint, for a warning.
std::string first_lines(const std::string& text, std::size_t count) {
  std::istringstream in(text);
  std::string line;
  std::string out;
  while (count > 0 && std::getline(in, line)) {
    if (line.empty()) continue;
    out += (out.empty() ? "" : " / ") + line;
    --count;
  }
  return out;
}

// A Helm release name (DNS-1123 label, at most 53 characters) for a chart no release uses.
std::string default_release_name(const std::string& chart) {
  auto label_char = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; };
  const bool valid = !chart.empty() && chart.size() <= 53 && chart.front() != '-' && chart.back() != '-' &&
                     std::all_of(chart.begin(), chart.end(), label_char);
  return valid ? chart : "release";
}

// `helm template` of one release into its manifests; nullopt and `problem` when helm fails.
std::optional<std::string> render_release(const fs::path& helm, const fs::path& chart_file, const fs::path& dir,
                                          const BundleRelease& release, std::string& problem) {
  std::vector<std::string> argv = {helm.string(), "template", release.name, chart_file.string()};
  if (!release.namespace_name.empty()) argv.insert(argv.end(), {"--namespace", release.namespace_name});
  for (std::size_t i = 0; i < release.values.size(); ++i) {
    const fs::path file = dir / (release.name + "-values-" + std::to_string(i) + ".yaml");
    core::write_file_atomic(file, release.values[i].content, 0600);
    argv.insert(argv.end(), {"-f", file.string()});
  }
  for (const auto& [key, value] : release.set) {
    argv.insert(argv.end(), {"--set-string", key + "=" + set_escape(value.empty() ? std::string(k_site_placeholder) : value)});
  }
  core::ProcessOptions process;
  process.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(k_render_timeout);
  const core::ProcessResult r = core::run_process(argv, process);
  if (r.exit_code == 0 && !r.out_truncated) return r.out;
  if (r.timed_out) {
    problem = "did not finish within " + std::to_string(k_render_timeout.count()) + " s";
  } else if (r.out_truncated) {
    problem = "printed more than ferry reads";
  } else {
    problem = "exited with " + std::to_string(r.exit_code) + (r.err.empty() ? "" : ": " + first_lines(r.err, 3));
  }
  return std::nullopt;
}

// Discovers the images of `chart` (pulled as `archive`) for `images: auto`.
ChartDiscoveryReport discover_chart_images(const bundle::ManifestChart& chart, const std::string& archive,
                                           const std::vector<BundleRelease>& all_releases, const Helm& helm,
                                           const fs::path& work, std::size_t index, core::LogSink& log,
                                           values::Discovery& discovery) {
  ChartDiscoveryReport report;
  report.chart = chart.name;
  const std::string what = "chart " + chart.name;
  auto warn = [&](const std::string& text) {
    log.warning(text);
    report.warnings.push_back(text);
  };

  std::vector<BundleRelease> releases;
  for (const BundleRelease& r : all_releases) {
    if (r.chart == chart.name) releases.push_back(r);
  }
  // A chart no release uses: read with its defaults (findings name no release).
  const bool defaults_only = releases.empty();
  if (defaults_only) {
    BundleRelease r;
    r.name = default_release_name(chart.name);
    r.namespace_name = "default";
    releases.push_back(std::move(r));
  }
  auto finding_release = [&](const BundleRelease& r) { return defaults_only ? std::string() : r.name; };

  values::discover_from_annotations(archive, what, discovery);
  report.methods.push_back("annotation");
  for (const BundleRelease& r : releases) {
    std::vector<values::NamedValues> files;
    for (const CarriedValues& v : r.values) files.push_back({v.file, v.content});
    core::with_context("discovering the images of " + what + " from the values of release '" + r.name + "'",
                       [&] { values::discover_from_values(archive, files, finding_release(r), what, discovery); });
  }
  report.methods.push_back("values");

  if (!helm.program) {
    warn(what + ": " + helm.missing + ", so images are discovered from annotations and values only and images "
                "hard-coded in templates are not found; install helm 3 or give it with --helm");
  } else {
    const fs::path dir = work / ("render-" + std::to_string(index));
    fs::create_directories(dir);
    const fs::path chart_file = dir / "chart.tgz";
    core::write_file_atomic(chart_file, archive);
    std::size_t rendered = 0;
    for (const BundleRelease& r : releases) {
      std::string problem;
      const std::optional<std::string> manifests = render_release(*helm.program, chart_file, dir, r, problem);
      if (!manifests) {
        warn(what + ": `helm template` of release '" + r.name + "' " + problem +
             "; its rendered images are not discovered (annotations and values still are)");
        continue;
      }
      try {
        values::discover_from_render(*manifests, finding_release(r), "helm template " + r.name, discovery);
        ++rendered;
      } catch (const core::UsageError& e) {
        warn(what + ": " + e.what() + "; its rendered images are not discovered");
      }
    }
    if (rendered > 0) report.methods.push_back("render");
    // Tags guessed from appVersion give way to what the templates render, once every
    // release rendered.
    if (rendered == releases.size()) discovery.drop_unconfirmed_guesses();
  }
  for (const values::Unresolved& u : discovery.unresolved()) {
    report.unresolved.push_back(u);
    log.warning(what + ": not packed: " + (u.text.empty() ? std::string() : "'" + u.text + "' ") + "found by " +
                std::string(values::to_string(u.found.method)) + " at " + u.found.where +
                (u.found.release.empty() ? "" : " (release " + u.found.release + ")") + ": " + u.reason);
  }
  return report;
}

// The disk-space pre-flight (pack_space.hpp), before any layer is downloaded: the bundle
// (these entries, then every blob) in the output's directory, the blobs still to
// download in the store they go to.
void check_pack_space(const PackOptions& options, const std::vector<const PlannedBlob*>& blobs,
                      std::vector<std::uint64_t> entries, const ImagePuller* puller, const oci::BlobStore& download_store,
                      const oci::BlobStore* cache) {
  for (const PlannedBlob* b : blobs) entries.push_back(b->ref.descriptor.size);
  const ImagePuller::Queued queued = puller ? puller->queued() : ImagePuller::Queued{};
  const PackSpace space{.output_dir = options.output.has_parent_path() ? options.output.parent_path() : fs::path("."),
                        .entry_sizes = std::move(entries),
                        .download_dir = download_store.root(),
                        .download_store = cache ? DownloadStore::cache : DownloadStore::work,
                        .download_blobs = queued.blobs,
                        .download_bytes = queued.bytes,
                        .largest_download = queued.largest,
                        .window = options.pull.download_ahead};
  check_free_space(pack_space_needs(space), core::file_system_space);
}

void log_registry_blobs(const ImagePuller& puller, const oci::BlobStore* cache, core::LogSink& log) {
  const ImagePuller::Queued queued = puller.queued();
  std::string line = "downloading " + std::to_string(queued.blobs) + " blobs from registries, " + size_text(queued.bytes);
  if (cache) {
    const PullStats stats = puller.stats();
    line += "; " + std::to_string(stats.reused_blobs) + " blobs come from the cache " + core::display(cache->root()) +
            ", " + size_text(stats.reused_bytes);
  }
  log.info(line);
}


// --- differential packs (--base) ---------------------------------------------------------

// The blobs of the plan a base has: configs and layers only (manifests and indexes, which
// push needs to write, and every blob of a chart or file artifact are always carried).
// A base that lists a digest with another size is not believed for that blob.
std::map<core::Digest, bundle::OmittedRecord> choose_omitted(const std::vector<const PlannedBlob*>& ordered,
                                                             const LoadedBases& bases,
                                                             const std::set<core::Digest>& never_omit, core::LogSink& log) {
  std::map<core::Digest, bundle::OmittedRecord> out;
  if (bases.records.empty()) return out;
  std::uint64_t bytes = 0;
  std::uint64_t total = 0;
  for (const PlannedBlob* b : ordered) {
    const oci::Descriptor& d = b->ref.descriptor;
    total += d.size;
    if (Plan::is_metadata(*b) || never_omit.count(d.digest)) continue;
    const auto it = bases.blobs.find(d.digest);
    if (it == bases.blobs.end()) continue;
    if (it->second.size != d.size) {
      log.warning("base lists blob " + d.digest.str() + " as " + std::to_string(it->second.size) + " bytes, but " +
                  b->origin + " has it as " + std::to_string(d.size) + ": it is carried");
      continue;
    }
    out.emplace(d.digest, bundle::OmittedRecord{{it->second.bases.begin(), it->second.bases.end()},
                                                {it->second.repositories.begin(), it->second.repositories.end()}});
    bytes += d.size;
  }
  log.info("differential: " + std::to_string(out.size()) + " blobs (" + size_text(bytes) + " of " + size_text(total) +
           ") are left out: the base" + (bases.records.size() == 1 ? " has" : "s have") + " them");
  return out;
}

// --- the lock (--locked) -----------------------------------------------------------------

using PinnedDependencies = std::map<std::pair<std::string, std::string>, std::string>;

// The lock's vendored dependency versions, by chart and dependency name.
PinnedDependencies pinned_dependencies(const LockFile& lock) {
  PinnedDependencies out;
  for (const auto& c : lock.charts) {
    for (const auto& d : c.dependencies) out[{c.name, d.name}] = d.version;
  }
  return out;
}

// The exact version the lock has for chart `name`.
std::string locked_chart_version(const LockFile& lock, const std::string& name, const PackOptions& options) {
  const LockedChart* chart = lock.chart(name);
  if (!chart) {
    throw core::UsageError("chart " + name + " is not in the lock file",
                           "the manifest changed since the lock was written: write it again with `ferry lock -f " +
                               core::display(options.manifest) + "`");
  }
  return chart->version;
}

// Stops a --locked pack, before any layer is downloaded, when the sources no longer give
// what the lock records.
void require_as_locked(const LockFile& lock, const LockFile& now, const PackOptions& options) {
  const std::vector<std::string> differences = lock_differences(lock, now);
  if (differences.empty()) return;
  std::string lines;
  for (const auto& d : differences) lines += "\n  " + d;
  throw core::Error(core::ExitCode::failure,
                    std::to_string(differences.size()) + " source" + (differences.size() == 1 ? " differs" : "s differ") +
                        " from the lock (--locked):" + lines,
                    "a tag moved or a file changed upstream: pack exactly by digest elsewhere, or accept the new content "
                    "with `ferry lock -f " + core::display(options.manifest) + "` and review the lock's diff");
}

} // namespace

// pack() without writing the lock file.
PackResult pack_bundle(const PackOptions& options, const std::optional<LockFile>& locked, core::LogSink& log,
                       core::ProgressSink& progress) {
  const bundle::BundleManifest manifest = bundle::load_bundle_manifest(options.manifest);
  PlatformDigests platform_digests;
  std::optional<bundle::PrivateKey> key;
  if (!options.dry_run) {
    key = core::with_context("loading signing key " + core::display(options.key), [&] {
      return bundle::PrivateKey::load(options.key, options.passphrase);
    });
  }
  if (options.compression_level < 1 || options.compression_level > 19) {
    throw core::UsageError("compression level " + std::to_string(options.compression_level) + " is out of range",
                           "use a level from 1 to 19 (3 is the default)");
  }
  if (!options.dry_run) {
    const fs::path output_dir = options.output.has_parent_path() ? options.output.parent_path() : fs::path(".");
    if (!fs::is_directory(output_dir)) {
      throw core::UsageError("output directory " + core::display(output_dir) + " does not exist", "create it first");
    }
  }
  const bool discovering = std::any_of(manifest.charts.begin(), manifest.charts.end(),
                                       [](const bundle::ManifestChart& c) { return c.images_auto; });
  const Helm helm = discovering ? find_helm(options.helm) : Helm{};

  // The release plan with its values files embedded: read (and checked) before anything
  // is downloaded.
  const std::string releases_json = releases_for_bundle(manifest);
  PackResult result;
  result.dry_run = options.dry_run;
  // What killed packs of this output left is removed first; a dry run writes nothing
  // beside the output (its work directory is a temporary one) and uses no cache.
  if (!options.dry_run) result.removed_leftovers = remove_pack_leftovers(options.output, log);
  core::TempDir work(options.dry_run ? fs::path() : options.output, "pack");
  oci::BlobStore store(work.path());
  const std::unique_ptr<oci::BlobStore> cache =
      options.dry_run ? nullptr : open_cache(options.cache, log, result.removed_leftovers);
  if (cache) result.cache = options.cache;
  // Registry blobs go to the cache and stay there; without one, to the work store.
  oci::BlobStore& download_store = cache ? *cache : store;
  Plan plan;
  bundle::BundleDescriptor descriptor;
  const std::string manifest_name = core::display(options.manifest);

  // Registry images: resolved now (tags -> digests, manifests read), blobs fetched in
  // parallel once every image is known.
  // One bar on the terminal: "pack" (what reached the bundle) also shows the downloads
  // it waits on. Declared first: the download threads outlive everything after it.
  core::NullProgress no_pull_bar;
  std::unique_ptr<ImagePuller> registry_puller;
  auto pull_options = [&] {
    PullOptions pull = options.pull;
    for (const auto& m : manifest.mirrors) {
      const Mirror mirror = Mirror::from(m.registry, m.mirror);
      const bool given = std::any_of(pull.mirrors.begin(), pull.mirrors.end(),
                                     [&](const Mirror& x) { return x.registry == mirror.registry; });
      if (!given) pull.mirrors.push_back(mirror); // --mirror on the command line wins
    }
    return pull;
  };
  auto puller = [&]() -> ImagePuller& {
    if (!registry_puller) registry_puller = std::make_unique<ImagePuller>(pull_options(), download_store, log);
    return *registry_puller;
  };

  // --base: read before anything is pulled, so that a bad base stops the pack at once.
  const LoadedBases bases =
      options.bases.empty()
          ? LoadedBases{}
          : load_bases({.files = options.bases, .pubkeys = options.base_pubkeys, .pull = pull_options()}, download_store, log);
  std::set<core::Digest> never_omit; // the blobs of charts and files

  // Charts, from repositories or the disk (dependencies vendored), stored as Helm OCI
  // artifacts. Chart repositories are reached with the same TLS options and credentials
  // as the source registries. Pulled before the images: `images: auto` adds to them.
  std::vector<BundleRelease> releases;
  if (discovering) {
    bundle::BundleDescriptor plan_only;
    plan_only.releases_json = releases_json;
    releases = bundle_releases(plan_only);
  }
  std::vector<FoundImage> found_images;
  std::vector<PreparedChart> prepared;
  std::unique_ptr<ChartPuller> chart_puller;
  for (const auto& chart : manifest.charts) {
    const std::string where = manifest_name + ":" + std::to_string(chart.line);
    core::with_context("packing chart " + chart.name + " (" + where + ")", [&] {
      if (!chart_puller) {
        chart_puller = std::make_unique<ChartPuller>(
            ChartPullOptions{.client = options.pull.client,
                             .include_prereleases = false,
                             .mtime = options.source_date_epoch,
                             .pinned_dependencies = locked ? pinned_dependencies(*locked) : PinnedDependencies{}},
            log);
      }
      const std::string version = locked ? locked_chart_version(*locked, chart.name, options) : chart.version;
      const PulledChart pulled = chart.path.empty() ? chart_puller->pull(chart.repo, chart.name, version)
                                                    : chart_puller->load(manifest.resolve(chart.path), version);
      const chart::PackagedChart& packaged = pulled.chart;
      const auto& meta = packaged.metadata;
      if (meta.name != chart.name) {
        throw core::UsageError("chart at " + chart.path + " is named " + meta.name + " in its Chart.yaml, but the manifest calls it " +
                                   chart.name,
                               "use `name: " + meta.name + "` in the manifest");
      }
      PreparedChart p;
      if (chart.images_auto) {
        values::Discovery discovery;
        result.discovery.push_back(discover_chart_images(chart, packaged.archive, releases, helm, work.path(),
                                                         prepared.size(), log, discovery));
        for (const values::DiscoveredImage& image : discovery.images()) {
          auto same = std::find_if(found_images.begin(), found_images.end(),
                                   [&](const FoundImage& f) { return values::same_image(f.ref, image.ref); });
          if (same == found_images.end()) {
            found_images.push_back(FoundImage{image.ref, {}, {}});
            same = std::prev(found_images.end());
          } else if (oci::Reference::parse(image.ref).digest() && !oci::Reference::parse(same->ref).digest()) {
            same->ref = image.ref; // the more precise reference
          }
          for (const values::Finding& f : image.found_by) {
            same->found_by.push_back(bundle::DiscoveryRecord{chart.name, std::string(values::to_string(f.method)), f.where,
                                                             f.release});
          }
          const auto index = static_cast<std::size_t>(same - found_images.begin());
          if (std::find(p.found.begin(), p.found.end(), index) == p.found.end()) p.found.push_back(index);
        }
        log.info("chart " + chart.name + ": images: auto found " + std::to_string(discovery.images().size()) + " images" +
                 (discovery.unresolved().empty() ? std::string()
                                                 : ", " + std::to_string(discovery.unresolved().size()) + " not packable"));
      }
      const oci::StoredBlob config = store.put_bytes(meta.config_json);
      const oci::StoredBlob archive = store.put_bytes(packaged.archive);
      oci::ImageManifest m;
      m.media_type = std::string(oci::media_type::oci_manifest);
      m.config = oci::Descriptor{std::string(oci::media_type::helm_config), config.digest, config.size, {}, {}, {}, {}};
      m.layers.push_back(oci::Descriptor{std::string(oci::media_type::helm_chart), archive.digest, archive.size, {}, {}, {}, {}});
      m.annotations = {{"org.opencontainers.image.title", meta.name}, {"org.opencontainers.image.version", meta.version}};
      const std::string manifest_json = oci::to_json(m);
      const oci::StoredBlob stored_manifest = store.put_bytes(manifest_json);
      const std::string source = chart.path.empty() ? chart.repo : chart.path;
      const std::string origin = "chart " + pulled.origin.source;
      plan.add_stored(store, config, std::string(oci::media_type::helm_config), origin);
      plan.add_stored(store, archive, std::string(oci::media_type::helm_chart), origin);
      never_omit.insert({config.digest, archive.digest});
      plan.add_stored(store, stored_manifest, std::string(oci::media_type::oci_manifest), origin);
      const std::string ref = "charts/" + meta.name + ":" + oci_tag(meta.version);
      p.root = oci::Descriptor{std::string(oci::media_type::oci_manifest), stored_manifest.digest, stored_manifest.size,
                               {}, {}, {}, {}};
      bundle::ChartRecord& record = p.record;
      record.name = meta.name;
      record.version = meta.version;
      record.source = source;
      record.ref = ref;
      record.digest = stored_manifest.digest;
      record.archive_digest = archive.digest;
      record.size = config.size + archive.size + stored_manifest.size;
      record.images = chart.images;
      if (chart.path.empty()) record.source_url = pulled.origin.source;
      record.upstream_digest = core::Digest::try_parse(pulled.origin.upstream_digest);
      for (const auto& dep : pulled.dependencies) {
        record.dependencies.push_back(bundle::ChartDependencyRecord{dep.name, dep.version, dep.source,
                                                                    core::Digest::parse(dep.upstream_digest)});
      }
      prepared.push_back(std::move(p));
      log.info("chart " + ref + " from " + (chart.path.empty() ? pulled.origin.source : chart.path) + ": " +
               std::to_string(archive.size) + " bytes" +
               (pulled.dependencies.empty() ? std::string()
                                            : ", " + std::to_string(pulled.dependencies.size()) + " dependencies vendored"));
    });
  }

  // Images.
  std::vector<std::string> packed_refs; // descriptor.images[i].ref, for matching discovered images
  for (const auto& image : manifest.images) {
    const std::string where = manifest_name + ":" + std::to_string(image.line);
    core::with_context("resolving image " + image.ref + " (" + where + ")", [&] {
      const oci::ImageSource source = oci::ImageSource::parse(image.ref);
      const oci::PlatformFilter filter = filter_for(manifest, image, options.platforms);
      oci::ResolvedImage resolved;
      switch (source.kind) {
      case oci::ImageSource::Kind::registry:
        resolved = puller().resolve(oci::Reference::parse(source.location), filter);
        break;
      case oci::ImageSource::Kind::oci_layout:
        resolved = oci::load_layout_image(manifest.resolve(source.location), source.ref, filter, store, log);
        break;
      case oci::ImageSource::Kind::docker_archive:
        resolved = oci::load_docker_archive_image(manifest.resolve(source.location), source.ref, filter, store, log);
        break;
      }
      const std::string ref_name = image_ref_name(image, resolved, where);
      add_image(plan, descriptor, resolved, ref_name, image.ref, log, platform_digests);
      packed_refs.push_back(ref_name);
    });
  }
  result.listed_images = descriptor.images.size();
  // Then the images `images: auto` found that the manifest does not list (the same image
  // listed there gains the record of how it was found).
  for (FoundImage& found : found_images) {
    const auto listed = std::find_if(packed_refs.begin(), packed_refs.end(),
                                     [&](const std::string& ref) { return values::same_image(ref, found.ref); });
    if (listed != packed_refs.end()) {
      bundle::ImageRecord& record = descriptor.images[static_cast<std::size_t>(listed - packed_refs.begin())];
      record.found_by.insert(record.found_by.end(), found.found_by.begin(), found.found_by.end());
      found.bundle_ref = *listed;
      continue;
    }
    const bundle::DiscoveryRecord& first = found.found_by.front();
    core::with_context("resolving image " + found.ref + " (found by " + first.method + " in chart " + first.chart + ": " +
                           first.where + ")",
                       [&] {
                         const oci::PlatformFilter filter(options.platforms.empty() ? manifest.platforms : options.platforms);
                         const oci::ResolvedImage resolved = puller().resolve(oci::Reference::parse(found.ref), filter);
                         add_image(plan, descriptor, resolved, found.ref, found.ref, log, platform_digests);
                         descriptor.images.back().found_by = found.found_by;
                         packed_refs.push_back(found.ref);
                         found.bundle_ref = found.ref;
                       });
  }
  // The charts' index entries, after the images as before; a chart's images are the ones
  // it declares and those found for it, by the names they have in the bundle.
  for (PreparedChart& p : prepared) {
    for (const std::size_t i : p.found) {
      const std::string& ref = found_images[i].bundle_ref;
      if (std::find(p.record.images.begin(), p.record.images.end(), ref) == p.record.images.end()) {
        p.record.images.push_back(ref);
      }
    }
    plan.add_root(p.root, p.record.ref);
    descriptor.charts.push_back(std::move(p.record));
  }

  // Files, stored as OCI artifacts with an empty config.
  if (!manifest.files.empty()) {
    const oci::StoredBlob empty = store.put_bytes("{}");
    for (const auto& file : manifest.files) {
      const std::string where = manifest_name + ":" + std::to_string(file.line);
      core::with_context("adding file " + file.path + " (" + where + ")", [&] {
        core::FileSource source(manifest.resolve(file.source));
        const oci::StoredBlob content = store.put(source, "file " + file.source);
        oci::ImageManifest m;
        m.media_type = std::string(oci::media_type::oci_manifest);
        m.artifact_type = std::string(oci::media_type::ferry_file_artifact);
        m.config = oci::Descriptor{std::string(oci::media_type::oci_empty), empty.digest, empty.size, {}, {}, {}, {}};
        m.layers.push_back(oci::Descriptor{std::string(oci::media_type::ferry_file), content.digest, content.size, {},
                                           {{std::string(oci::k_annotation_title), file.path},
                                            {"io.ferry.file.mode", mode_text(file.mode)}},
                                           {}, {}});
        const oci::StoredBlob stored_manifest = store.put_bytes(oci::to_json(m));
        const std::string origin = "file " + file.source;
        plan.add_stored(store, empty, std::string(oci::media_type::oci_empty), origin);
        plan.add_stored(store, content, std::string(oci::media_type::ferry_file), origin);
        never_omit.insert({empty.digest, content.digest});
        plan.add_stored(store, stored_manifest, std::string(oci::media_type::oci_manifest), origin);
        const std::string ref = "files/" + file.path;
        plan.add_root(oci::Descriptor{std::string(oci::media_type::oci_manifest), stored_manifest.digest,
                                      stored_manifest.size, {}, {}, std::string(oci::media_type::ferry_file_artifact), {}},
                      ref);
        descriptor.files.push_back(bundle::FileRecord{file.path, file.source, ref, stored_manifest.digest, content.digest,
                                                      content.size, file.mode});
        log.info("file " + file.path + " from " + file.source + ": " + std::to_string(content.size) + " bytes");
      });
    }
  }

  // The layout's own entries.
  const std::string layout_marker = "{\"imageLayoutVersion\":\"1.0.0\"}";
  oci::ImageIndex index;
  index.media_type = std::string(oci::media_type::oci_index);
  index.manifests = plan.roots();
  const std::string index_json = oci::to_json(index);

  descriptor.name = manifest.name;
  descriptor.version = manifest.version;
  descriptor.created = bundle::rfc3339_utc(options.source_date_epoch);
  descriptor.tool_version = options.tool_version;
  if (key) descriptor.signer = bundle::SignerRecord{key->key_id(), std::string(bundle::to_string(key->type()))};
  descriptor.manifest_json = manifest.source_json;
  descriptor.releases_json = releases_json;
  descriptor.layout = {
      {std::string(bundle::k_layout_marker_path), core::sha256_of(layout_marker), layout_marker.size()},
      {std::string(bundle::k_index_path), core::sha256_of(index_json), index_json.size()},
  };
  const auto ordered = plan.ordered();
  // A differential pack: the blobs a base has stay out of the stream (and are not
  // downloaded), listed in the table as omitted.
  const std::map<core::Digest, bundle::OmittedRecord> omitted = choose_omitted(ordered, bases, never_omit, log);
  descriptor.bases = bases.records;
  std::vector<const PlannedBlob*> carried;
  for (const PlannedBlob* b : ordered) {
    bundle::BlobRecord record{b->ref.descriptor.digest, b->ref.descriptor.size, b->ref.descriptor.media_type};
    if (const auto it = omitted.find(b->ref.descriptor.digest); it != omitted.end()) {
      record.omitted = it->second;
    } else {
      carried.push_back(b);
    }
    descriptor.blobs.push_back(std::move(record));
  }
  if (registry_puller && !omitted.empty()) {
    std::set<core::Digest> skipped;
    for (const auto& [digest, record] : omitted) skipped.insert(digest);
    registry_puller->skip(skipped);
  }
  {
    std::vector<std::string> platforms;
    for (const auto& p : options.platforms.empty() ? manifest.platforms : options.platforms) platforms.push_back(p.str());
    std::vector<std::pair<std::string, std::string>> constraints;
    for (const auto& c : manifest.charts) constraints.emplace_back(c.name, c.version);
    result.lock = lock_from_descriptor(descriptor, platforms, platform_digests, constraints);
    if (locked) require_as_locked(*locked, result.lock, options);
  }
  if (options.dry_run) {
    // The plan is complete: every image resolved, every chart chosen. No layer was
    // downloaded (the puller never started) and the work directory goes with `work`.
    result.descriptor = std::move(descriptor);
    return result;
  }
  // A blob of the work store is not read again once written: removed at once, its pages
  // never need writing back (the store would otherwise compete with the output for the
  // disk). The cache keeps its blobs for the next pack.
  auto drop_written = [&](const fs::path& file, const core::Digest& digest) {
    if (file != store.path(digest)) return;
    std::error_code ignored;
    fs::remove(file, ignored);
  };
  if (options.split) {
    // Volumes: the plan is signed inside ferry.json before the first byte is written and
    // needs the bytes of blobs larger than a volume (their pieces are hashed), so every
    // download finishes first: no download window (it waits for a consumer that only
    // starts once all are in).
    PackOptions unwindowed = options;
    unwindowed.pull.download_ahead = std::numeric_limits<std::uint64_t>::max();
    check_pack_space(unwindowed, carried, {layout_marker.size(), index_json.size()}, registry_puller.get(),
                     download_store, cache.get());
    if (registry_puller) {
      result.registry_blobs = registry_puller->stats();
      log_registry_blobs(*registry_puller, cache.get(), log);
      registry_puller->fetch_all(progress);
    }
    std::map<core::Digest, bundle::BlobSource> sources;
    for (const PlannedBlob* b : carried) {
      sources.emplace(b->ref.descriptor.digest, bundle::BlobSource{b->ref.file, b->ref.offset,
                                                                   b->ref.checked == oci::Checked::yes, b->origin});
    }
    result.checksum_path = checksum_path_for(options.output);
    const bundle::VolumeWriteResult written = bundle::write_volumes(
        descriptor, sources,
        {.output = options.output,
         .checksums = result.checksum_path,
         .limit = *options.split,
         .level = options.compression_level,
         .mtime = options.source_date_epoch,
         .layout_marker = layout_marker,
         .index_json = index_json},
        [&](std::string_view json) { return core::base64_encode(key->sign(json)); },
        [&](const core::Digest& digest) {
          const auto it = sources.find(digest);
          if (it != sources.end()) drop_written(it->second.file, digest);
        },
        log, progress);
    result.volumes = written.volumes;
    result.pieced_blobs = written.pieced_blobs;
    result.bundle_path = written.volumes.front().path;
    for (const auto& v : written.volumes) result.bundle_size += v.size;
    result.descriptor = std::move(descriptor);
    return result;
  }
  const std::string descriptor_json = bundle::to_json(descriptor);
  const std::string signature = core::base64_encode(key->sign(descriptor_json));

  check_pack_space(options, carried, {descriptor_json.size(), signature.size(), layout_marker.size(), index_json.size()},
                   registry_puller.get(), download_store, cache.get());

  // Registry blobs download in the order the stream takes them, so writing starts with
  // the first and overlaps the rest: the output's disk writes hide behind the network.
  if (registry_puller) {
    result.registry_blobs = registry_puller->stats();
    log_registry_blobs(*registry_puller, cache.get(), log);
    std::vector<core::Digest> order;
    for (const PlannedBlob* b : carried) order.push_back(b->ref.descriptor.digest);
    registry_puller->start(no_pull_bar, order);
  }

  // Write the stream: ferry.json, its signature, the layout, then every blob once.
  result.bundle_path = options.output;
  result.checksum_path = checksum_path_for(options.output);
  core::AtomicFile out(options.output);
  core::HashingSink hashed(out.sink());
  {
    // Compressing (this thread) and hashing + writing the output (the background
    // thread) overlap: on two cores that hides most of the write cost.
    core::BackgroundSink background(hashed);
    bundle::TarWriter tar(background, {.level = options.compression_level, .mtime = options.source_date_epoch});
    auto add_bytes = [&](std::string_view path, const std::string& bytes) {
      tar.add({.path = std::string(path), .size = bytes.size(), .mode = 0644, .compression = bundle::Compression::normal},
              bytes);
    };
    add_bytes(bundle::k_descriptor_path, descriptor_json);
    add_bytes(bundle::k_signature_path, signature);
    add_bytes(bundle::k_layout_marker_path, layout_marker);
    add_bytes(bundle::k_index_path, index_json);

    const std::uint64_t total = descriptor.blob_bytes();
    std::uint64_t done = 0;
    for (const PlannedBlob* b : carried) {
      const oci::Descriptor& d = b->ref.descriptor;
      const std::string path = "blobs/sha256/" + std::string(d.digest.hex());
      if (registry_puller) registry_puller->wait_for(d.digest);
      core::with_context("writing blob " + d.digest.str() + " from " + b->origin, [&] {
        core::FileSource file(b->ref.file);
        if (b->ref.offset != 0) file.seek(b->ref.offset);
        core::ExactSource exact(file, d.size, "blob " + d.digest.str() + " in " + core::display(b->ref.file));
        const bundle::EntryHeader header{.path = path,
                                         .size = d.size,
                                         .mode = 0644,
                                         .compression = oci::media_type::is_compressed(d.media_type)
                                                            ? bundle::Compression::fastest
                                                            : bundle::Compression::normal};
        if (b->ref.checked == oci::Checked::yes) {
          tar.add(header, exact);
        } else {
          // The source's bytes are hashed as they stream into the bundle: one read.
          core::HashingSource hashing(exact);
          tar.add(header, hashing);
          const core::Digest actual = hashing.finish();
          if (actual != d.digest) {
            throw core::IntegrityError("blob " + d.digest.str() + " of " + b->origin + " has digest " + actual.str() +
                                           " (" + core::display(b->ref.file) + ")",
                                       damaged_blob_hint(b->ref.file, cache.get()));
          }
        }
      });
      drop_written(b->ref.file, d.digest);
      done += d.size;
      progress.progress({"pack", d.digest.str(), done, total});
    }
    tar.finish();
    background.finish();
    if (registry_puller) registry_puller->finish();
    result.bundle_size = hashed.count();
  }
  result.bundle_digest = hashed.finish();
  remove_old_checksum(result.checksum_path);
  out.commit();

  const std::string checksum_line =
      std::string(result.bundle_digest->hex()) + "  " + options.output.filename().string() + "\n";
  core::write_file_atomic(result.checksum_path, checksum_line);
  result.descriptor = std::move(descriptor);
  return result;
}

PackResult pack(const PackOptions& options, core::LogSink& log, core::ProgressSink& progress) {
  const fs::path lock_path = options.lock_file.empty() ? lock_path_for(options.manifest) : options.lock_file;
  std::optional<LockFile> locked;
  if (options.locked) {
    if (!fs::exists(lock_path)) {
      throw core::UsageError("no lock file " + core::display(lock_path) + " for --locked",
                             "write it with `ferry lock -f " + core::display(options.manifest) +
                                 "` (or a pack without --locked), or name it with --lock-file");
    }
    locked = parse_lock(core::read_file(lock_path), core::display(lock_path));
  } else if (options.write_lock && !options.dry_run) {
    // Checked before the work: a pack whose lock cannot be written would be wasted.
    const fs::path dir = lock_path.has_parent_path() ? lock_path.parent_path() : fs::path(".");
    if (::access(dir.c_str(), W_OK) != 0) {
      throw core::UsageError("cannot write the lock file " + core::display(lock_path) + " (directory not writable)",
                             "name another place with --lock-file, or leave it out with --no-lock");
    }
  }
  PackResult result = pack_bundle(options, locked, log, progress);
  if (!options.locked && options.write_lock && !options.dry_run) {
    core::write_file_atomic(lock_path, to_json(result.lock));
    result.lock_path = lock_path;
  }
  return result;
}

} // namespace ferry

// Charts for pack from Helm HTTP repositories, OCI registries and the local disk, with
// the dependencies Chart.yaml (or requirements.yaml) declares vendored into charts/ as
// `helm dependency build` does.
// SPDX-License-Identifier: Apache-2.0
#include "chart_pull.hpp"

#include "chart/chart_lock.hpp"
#include "chart/repo_index.hpp"
#include "chart/semver.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "oci/manifest.hpp"
#include "oci/media_types.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <utility>

namespace ferry {

namespace fs = std::filesystem;
using core::UsageError;

namespace {

// Public indexes reach tens of MB (a few hundred charts with every version ever made).
constexpr std::size_t k_max_index_size = 256u << 20;
// Versions an error message lists before it says "and N more".
constexpr std::size_t k_listed_versions = 10;
// Helm's chart layer media type before Helm 3.7 wrote the one in oci/media_types.hpp;
// `helm pull` still accepts it.
constexpr std::string_view k_legacy_chart_layer = "application/tar+gzip";

// The scheme and host of a repository or chart URL.
struct UrlHost {
  std::string scheme; // "https", "http" or "oci"
  std::string host;   // "charts.example.com", "127.0.0.1:8080"
  std::string rest;   // everything after the host ("/charts/index.yaml"), may be empty
};

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Splits "SCHEME://HOST[/REST]". `what` names the URL in messages; credentials in the
// URL are refused without repeating them.
UrlHost split_url(const std::string& url, const std::string& what) {
  const auto colon = url.find("://");
  if (colon == std::string::npos) throw UsageError(what + " '" + url + "' is not a URL");
  UrlHost out;
  out.scheme = lower(url.substr(0, colon));
  const std::string after = url.substr(colon + 3);
  const auto end = after.find_first_of("/?#");
  out.host = after.substr(0, end);
  out.rest = end == std::string::npos ? std::string() : after.substr(end);
  if (out.host.find('@') != std::string::npos) {
    throw UsageError(what + " on " + out.host.substr(out.host.rfind('@') + 1) + " carries credentials in the URL",
                     "remove them from the URL and pass --username and --password-stdin");
  }
  if (out.host.empty()) throw UsageError(what + " '" + url + "' has no host");
  return out;
}

// Helm stores a version's '+' as '_' in OCI tags (tags cannot hold '+').
std::string tag_of(std::string version) {
  std::replace(version.begin(), version.end(), '+', '_');
  return version;
}

std::string version_of_tag(std::string tag) {
  std::replace(tag.begin(), tag.end(), '_', '+');
  return tag;
}

// Newest first (SemVer precedence; what is not a version last), at most k_listed_versions.
std::string list_versions(std::vector<std::string> versions) {
  std::stable_sort(versions.begin(), versions.end(), [](const std::string& a, const std::string& b) {
    const auto va = chart::Version::parse(a);
    const auto vb = chart::Version::parse(b);
    if (va && vb) return va->compare(*vb) > 0;
    return va.has_value() && !vb.has_value();
  });
  std::string out;
  for (std::size_t i = 0; i < versions.size() && i < k_listed_versions; ++i) out += (i ? ", " : "") + versions[i];
  if (versions.size() > k_listed_versions) {
    out += " and " + std::to_string(versions.size() - k_listed_versions) + " older";
  }
  return out;
}

// The version `constraint` picks among `versions` as Helm does for OCI tags
// (registry.GetTagMatchingVersionOrConstraint): an exact text match first, then the
// highest version the constraint allows. nullopt when none does.
std::optional<std::string> choose_version(const std::vector<std::string>& versions, const std::string& constraint,
                                          bool include_prereleases) {
  if (!constraint.empty()) {
    for (const auto& v : versions) {
      if (v == constraint) return v;
    }
  }
  const chart::Constraint wanted =
      chart::Constraint::parse(constraint.empty() ? std::string_view("*") : std::string_view(constraint));
  const auto best = chart::best_match(wanted, versions, include_prereleases);
  if (!best) return std::nullopt;
  return best->original;
}

// Whether `version` satisfies `constraint` (empty: any), as for a dependency found on
// disk: exact text, or the constraint allows it.
bool satisfies(const std::string& version, const std::string& constraint, bool include_prereleases) {
  if (constraint.empty() || version == constraint) return true;
  const auto v = chart::Version::parse(version);
  if (!v) return false;
  return chart::Constraint::parse(constraint).allows(*v, include_prereleases);
}

// The version the lock pins for each of `dependencies` (nullopt: none). `helm dependency
// update` writes one entry per dependency, in their order, so entries are matched by
// position first (two aliases of one chart may pin different versions), else by name and
// repository.
std::vector<std::optional<std::string>> locked_versions(const std::vector<chart::ChartDependency>& dependencies,
                                                        const std::optional<chart::ChartLock>& lock) {
  std::vector<std::optional<std::string>> out(dependencies.size());
  if (!lock) return out;
  const auto matches = [](const chart::ChartDependency& entry, const chart::ChartDependency& dep) {
    return entry.name == dep.name && entry.repository == dep.repository && !entry.version.empty();
  };
  for (std::size_t i = 0; i < dependencies.size(); ++i) {
    const auto& entries = lock->dependencies;
    if (i < entries.size() && matches(entries[i], dependencies[i])) {
      out[i] = entries[i].version;
      continue;
    }
    const auto it = std::find_if(entries.begin(), entries.end(),
                                 [&](const chart::ChartDependency& entry) { return matches(entry, dependencies[i]); });
    if (it != entries.end()) out[i] = it->version;
  }
  return out;
}

// A subchart found in charts/.
struct Vendored {
  std::string name;
  std::string version;
  std::string path; // in the chart ("charts/redis-17.0.0.tgz", "charts/common")
};

// The charts a chart carries in charts/, by their Chart.yaml, as Helm's loader finds
// them: charts/NAME.tgz archives and charts/DIR/ directories.
std::vector<Vendored> vendored_subcharts(const std::vector<chart::ArchiveFile>& files, const std::string& display) {
  std::vector<Vendored> out;
  for (const auto& file : files) {
    if (file.path.rfind("charts/", 0) != 0) continue;
    const std::string rest = file.path.substr(7);
    const auto slash = rest.find('/');
    if (slash == std::string::npos) {
      if (rest.size() > 4 && rest.compare(rest.size() - 4, 4, ".tgz") == 0) {
        const chart::PackagedChart sub = chart::read_chart_archive(file.data, display + ": " + file.path);
        out.push_back({sub.metadata.name, sub.metadata.version, file.path});
      }
    } else if (rest.substr(slash + 1) == "Chart.yaml") {
      const chart::ChartMetadata sub = chart::parse_chart_metadata(file.data, display + ": " + file.path);
      out.push_back({sub.name, sub.version, "charts/" + rest.substr(0, slash)});
    }
  }
  return out;
}

// What one fetch gave, before any vendoring.
struct Fetched {
  chart::PackagedChart chart;
  ChartOrigin origin;
};

} // namespace

struct ChartPuller::Impl {
  ChartPullOptions options;
  core::LogSink& log;
  // One client per scheme, host and whether the explicit credentials may go there.
  std::map<std::string, std::unique_ptr<registry::Client>> clients;
  std::map<std::string, chart::RepositoryIndex> indexes; // by index URL

  Impl(ChartPullOptions options_, core::LogSink& log_) : options(std::move(options_)), log(log_) {}

  enum class Credentials { explicit_ones, from_config_only };
  registry::Client& client(const UrlHost& where, Credentials credentials);
  const chart::RepositoryIndex& index(const std::string& repository);
  Fetched fetch_http(const std::string& repository, const std::string& name, const std::string& constraint);
  Fetched fetch_oci(const std::string& repository, const std::string& name, const std::string& constraint);
  Fetched fetch(const std::string& repository, const std::string& name, const std::string& constraint);
  // Vendors the dependencies `fetched` lacks; `base` is the directory file:// paths are
  // relative to (none for charts from repositories).
  PulledChart vendor(Fetched fetched, const std::optional<fs::path>& base);
  // Refuses a lock out of sync with the dependencies when some are to be fetched.
  void check_lock(const chart::ChartMetadata& meta, const chart::ChartLock& lock, const std::vector<Vendored>& present,
                  const std::string& display);
};

registry::Client& ChartPuller::Impl::client(const UrlHost& where, Credentials credentials) {
  const std::string key =
      where.scheme + "://" + where.host + (credentials == Credentials::explicit_ones ? "" : " (config credentials)");
  auto& slot = clients[key];
  if (!slot) {
    registry::ClientOptions client_options = options.client;
    // A Helm repository says by its URL whether it speaks TLS; --plain-http is for
    // oci:// registries (as for helm, whose --plain-http is an OCI flag).
    if (where.scheme == "http") client_options.tls.plain_http = true;
    if (where.scheme == "https") client_options.tls.plain_http = false;
    // Like helm (without --pass-credentials), credentials given for a repository do not
    // go to another host its index points at; that host's docker config entry still does.
    if (credentials == Credentials::from_config_only) client_options.credentials.reset();
    slot = std::make_unique<registry::Client>(where.host, std::move(client_options), log);
  }
  return *slot;
}

const chart::RepositoryIndex& ChartPuller::Impl::index(const std::string& repository) {
  const std::string url = chart::index_url(repository);
  if (const auto it = indexes.find(url); it != indexes.end()) return it->second;
  const UrlHost where = split_url(url, "chart repository");
  const std::string yaml =
      client(where, Credentials::explicit_ones)
          .get_url(url, k_max_index_size, "fetching the chart repository index " + url,
                   "is " + repository + " a Helm chart repository? `helm repo add` would read " + url + " too");
  log.debug("read " + url + ": " + std::to_string(yaml.size()) + " bytes");
  return indexes.emplace(url, chart::RepositoryIndex::parse(yaml, url)).first->second;
}

Fetched ChartPuller::Impl::fetch_http(const std::string& repository, const std::string& name,
                                      const std::string& constraint) {
  const UrlHost repo_host = split_url(repository, "chart repository");
  const chart::RepositoryIndex& repo_index = index(repository);
  const chart::IndexEntry& entry = repo_index.select(name, constraint, options.include_prereleases);
  const std::string url = chart::chart_url(repository, entry.urls.front());
  const UrlHost chart_host = split_url(url, "chart URL");
  if (chart_host.scheme != "https" && chart_host.scheme != "http") {
    throw UsageError("chart " + name + " " + entry.version + " in " + repo_index.display() + " has the URL " + url +
                         ", which is not an http:// or https:// URL",
                     "ask the repository's maintainers to list an https:// URL");
  }
  if (entry.deprecated) log.warning("chart " + name + " " + entry.version + " is marked deprecated in " + repository);
  const bool same_host = chart_host.scheme == repo_host.scheme && lower(chart_host.host) == lower(repo_host.host);
  std::string bytes = client(chart_host, same_host ? Credentials::explicit_ones : Credentials::from_config_only)
                          .get_url(url, chart::k_max_chart_size, "downloading chart " + name + " " + entry.version + " from " + url,
                                   "the repository index " + repo_index.display() +
                                       " lists this URL, but the server does not have it; the index may be stale");
  const core::Digest actual = core::sha256_of(bytes);
  if (!entry.digest.empty()) {
    std::string expected = lower(entry.digest);
    if (expected.rfind("sha256:", 0) == 0) expected.erase(0, 7);
    if (expected != actual.hex()) {
      throw core::IntegrityError("chart " + name + " " + entry.version + " from " + url + " has digest " + actual.str() +
                                     ", but the repository index " + repo_index.display() + " says sha256:" + expected,
                                 "the archive on the server is not the one the index lists (tampered with, or the "
                                 "repository is being updated); try again later, or ask the repository's maintainers");
    }
  } else {
    log.warning("the repository index " + repo_index.display() + " gives no digest for chart " + name + " " +
                entry.version + ": the download is not checked against the index");
  }
  Fetched out;
  out.chart = chart::read_chart_archive(std::move(bytes), url);
  const auto& meta = out.chart.metadata;
  if (meta.name != name || meta.version != entry.version) {
    throw core::IntegrityError("chart archive " + url + " holds chart " + meta.name + " " + meta.version + ", but " +
                                   repo_index.display() + " lists it as " + name + " " + entry.version,
                               "the repository's index does not match its archives; ask its maintainers");
  }
  out.origin = ChartOrigin{name, constraint, entry.version, url, actual.str()};
  return out;
}

Fetched ChartPuller::Impl::fetch_oci(const std::string& repository, const std::string& name,
                                     const std::string& constraint) {
  UrlHost where = split_url(repository, "OCI chart repository");
  std::string path = where.rest;
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.find_first_of("?#:@") != std::string::npos) {
    throw UsageError("OCI chart repository '" + repository + "' must be oci://HOST[:PORT]/PATH without a tag",
                     "give the chart's version in `version:` and its name in `name:`");
  }
  const std::string oci_repository = path.empty() ? name : path + "/" + name;
  const std::string shown = "oci://" + where.host + "/" + oci_repository;
  registry::Client& registry = client(where, Credentials::explicit_ones);

  // As helm's getOciURI: an exact version is the tag; anything else is matched against
  // the repository's tags.
  std::string version;
  if (!constraint.empty() && chart::Version::parse(constraint)) {
    version = constraint;
  } else {
    std::vector<std::string> versions;
    for (const auto& tag : registry.list_tags(oci_repository)) versions.push_back(version_of_tag(tag));
    if (versions.empty()) {
      throw UsageError("chart " + shown + " has no tags", "check the registry, the path in `repo:` and the chart name");
    }
    const auto chosen = core::with_context("choosing a version of chart " + shown, [&] {
      return choose_version(versions, constraint, options.include_prereleases);
    });
    if (!chosen) {
      throw UsageError("no version of chart " + shown + " satisfies \"" + (constraint.empty() ? "*" : constraint) +
                           "\"; it has " + list_versions(versions),
                       "choose one of these versions, or change `version:` in the manifest");
    }
    version = *chosen;
  }
  const std::string tag = tag_of(version);
  const std::string ref = shown + ":" + tag;
  const registry::ManifestData data = registry.get_manifest(oci_repository, tag);
  const oci::AnyManifest any = oci::parse_manifest(data.bytes, data.media_type, "manifest of " + ref);
  const auto* manifest = std::get_if<oci::ImageManifest>(&any);
  if (!manifest || manifest->config.media_type != oci::media_type::helm_config) {
    throw UsageError(ref + " is not a Helm chart (its manifest's config is not " + std::string(oci::media_type::helm_config) +
                         ")",
                     "`helm push` stores charts this way; an image cannot be packed as a chart");
  }
  const oci::Descriptor* layer = nullptr;
  for (const auto& l : manifest->layers) {
    if (l.media_type == oci::media_type::helm_chart || l.media_type == k_legacy_chart_layer) {
      if (layer) throw UsageError(ref + " has more than one chart layer");
      layer = &l;
    }
  }
  if (!layer) {
    throw UsageError(ref + " has no chart layer (" + std::string(oci::media_type::helm_chart) + ")",
                     "`helm push` stores charts this way; check the reference");
  }
  if (layer->size > chart::k_max_chart_size) {
    throw UsageError("chart " + ref + " is " + std::to_string(layer->size) + " bytes, more than the limit of " +
                     std::to_string(chart::k_max_chart_size >> 20) + " MiB");
  }
  core::StringSink sink;
  registry.get_blob(oci_repository, layer->digest, layer->size, sink); // checks the digest
  Fetched out;
  out.chart = chart::read_chart_archive(sink.take(), ref);
  const auto& meta = out.chart.metadata;
  if (meta.name != name || meta.version != version) {
    throw core::IntegrityError(ref + " holds chart " + meta.name + " " + meta.version + ", not " + name + " " + version,
                               "the registry's tag does not match the chart it holds; check how it was pushed");
  }
  out.origin = ChartOrigin{name, constraint, version, ref, layer->digest.str()};
  return out;
}

Fetched ChartPuller::Impl::fetch(const std::string& repository, const std::string& name, const std::string& constraint) {
  const auto colon = repository.find("://");
  const std::string scheme = colon == std::string::npos ? std::string() : lower(repository.substr(0, colon));
  if (scheme == "https" || scheme == "http") return fetch_http(repository, name, constraint);
  if (scheme == "oci") return fetch_oci(repository, name, constraint);
  throw UsageError("chart repository '" + repository + "' is not an https://, http:// or oci:// URL");
}

void ChartPuller::Impl::check_lock(const chart::ChartMetadata& meta, const chart::ChartLock& lock,
                                   const std::vector<Vendored>& present, const std::string& display) {
  const auto& dependencies = meta.dependencies;
  // Helm hashes @NAME and alias:NAME repositories as the URLs its local repository
  // configuration gives them, which ferry does not read; vendoring refuses those anyway
  // unless they are in charts/.
  if (std::any_of(dependencies.begin(), dependencies.end(), [](const chart::ChartDependency& d) {
        return !d.repository.empty() && (d.repository.front() == '@' || d.repository.rfind("alias:", 0) == 0);
      })) {
    log.debug("not checking " + lock.file + " of chart " + meta.name + " " + meta.version +
              ": a dependency names its repository by a local helm repository name");
    return;
  }
  if (chart::lock_in_sync(meta, lock)) return;
  const std::string problem = "the lock file " + lock.file + " of chart " + meta.name + " " + meta.version + " (" + display +
                              ") is out of sync with the dependencies in " + meta.dependencies_file + ": it has digest " +
                              (lock.digest.empty() ? std::string("none") : lock.digest) + ", the dependencies give " +
                              chart::lock_digest(dependencies, lock.dependencies);
  // helm install reads charts/ only, never the lock: a chart carrying every dependency
  // installs as it is.
  const bool all_vendored = std::all_of(dependencies.begin(), dependencies.end(), [&](const chart::ChartDependency& d) {
    return std::any_of(present.begin(), present.end(), [&](const Vendored& v) { return v.name == d.name; });
  });
  if (all_vendored) {
    log.warning(problem + "; every dependency is in charts/, so the lock is not used");
    return;
  }
  // As `helm dependency build`, which refuses such a lock rather than guess what it meant.
  throw UsageError(problem, "the chart's publisher must run `helm dependency update` on it, which writes a new " +
                                lock.file + ", or vendor its dependencies into charts/");
}

PulledChart ChartPuller::Impl::vendor(Fetched fetched, const std::optional<fs::path>& base) {
  PulledChart out;
  out.origin = std::move(fetched.origin);
  out.chart = std::move(fetched.chart);
  const chart::ChartMetadata& meta = out.chart.metadata;
  const std::string display = out.origin.source;
  const std::vector<chart::ChartDependency>& dependencies = meta.dependencies;
  if (dependencies.empty()) return out;

  std::vector<chart::ArchiveFile> files = chart::read_chart_files(out.chart.archive, display);
  const std::vector<Vendored> present = vendored_subcharts(files, display);
  const std::optional<chart::ChartLock> lock = chart::find_chart_lock(files, display);
  if (lock) check_lock(meta, *lock, present, display);
  const auto locked = locked_versions(dependencies, lock);
  std::set<std::pair<std::string, std::string>> added; // name, version
  for (std::size_t index = 0; index < dependencies.size(); ++index) {
    const chart::ChartDependency& dep = dependencies[index];
    const std::string what = "dependency " + dep.name + " of chart " + meta.name + " " + meta.version;
    const auto have = std::find_if(present.begin(), present.end(), [&](const Vendored& v) { return v.name == dep.name; });
    if (have != present.end()) {
      if (!satisfies(have->version, dep.version, options.include_prereleases)) {
        log.warning(what + ": " + have->path + " holds version " + have->version + ", which does not satisfy \"" +
                    dep.version + "\" of " + meta.dependencies_file + "; it is kept as it is");
      }
      continue;
    }
    core::with_context("vendoring " + what, [&] {
      const std::string& repo = dep.repository;
      if (repo.empty()) {
        throw UsageError(what + " is not in charts/ and " + meta.dependencies_file + " gives no repository for it",
                         "give its `repository:` in " + meta.dependencies_file +
                             ", or vendor it into charts/ (`helm dependency build`)");
      }
      if (repo.front() == '@' || repo.rfind("alias:", 0) == 0) {
        throw UsageError(what + " names its repository '" + repo +
                             "' by a local helm repository name, which ferry does not read",
                         "write the repository's URL (https://… or oci://…) in " + meta.dependencies_file +
                             ", or vendor the chart into charts/ (`helm dependency build`)");
      }
      Fetched dep_chart;
      if (repo.rfind("file://", 0) == 0) {
        if (!base) {
          throw UsageError(what + " is the local path " + repo + ", which a chart from " + display + " cannot refer to",
                           "the chart's publisher must vendor it into charts/");
        }
        const fs::path relative = repo.substr(7);
        const fs::path path = relative.is_absolute() ? relative : *base / relative;
        dep_chart.chart = chart::load_chart(path, options.mtime);
        if (dep_chart.chart.metadata.name != dep.name) {
          throw UsageError(what + " at " + core::display(path) + " is named " + dep_chart.chart.metadata.name +
                           " in its Chart.yaml");
        }
        const std::string& version = dep_chart.chart.metadata.version;
        if (!satisfies(version, dep.version, options.include_prereleases)) {
          throw UsageError(what + " at " + core::display(path) + " has version " + version + ", which does not satisfy \"" +
                           dep.version + "\"");
        }
        // Recorded as Chart.yaml writes it: no path of this machine goes into the bundle.
        dep_chart.origin = ChartOrigin{dep.name, dep.version, version, repo, core::sha256_of(dep_chart.chart.archive).str()};
      } else {
        const auto pinned = options.pinned_dependencies.find({meta.name, dep.name});
        const std::string constraint =
            pinned != options.pinned_dependencies.end() ? pinned->second : locked[index].value_or(dep.version);
        dep_chart = fetch(repo, dep.name, constraint);
        dep_chart.origin.constraint = dep.version;
      }
      const std::string& version = dep_chart.origin.version;
      if (!added.insert({dep.name, version}).second) return; // an alias of one already added
      const std::string path = "charts/" + dep.name + "-" + version + ".tgz";
      if (std::any_of(files.begin(), files.end(), [&](const chart::ArchiveFile& f) { return f.path == path; })) {
        throw UsageError(display + " already holds " + path + ", which is not chart " + dep.name);
      }
      if (!dep_chart.chart.metadata.dependencies.empty()) {
        const auto sub_present = vendored_subcharts(
            chart::read_chart_files(dep_chart.chart.archive, dep_chart.origin.source), dep_chart.origin.source);
        for (const auto& sub : dep_chart.chart.metadata.dependencies) {
          if (std::none_of(sub_present.begin(), sub_present.end(), [&](const Vendored& v) { return v.name == sub.name; })) {
            log.warning(what + " itself depends on " + sub.name + ", which it does not carry in charts/; `helm install` "
                        "will refuse it (ferry, like `helm dependency build`, vendors one level)");
          }
        }
      }
      log.info("vendored " + dep.name + " " + version + " from " + dep_chart.origin.source + " into " + meta.name + "/" +
               path);
      files.push_back(chart::ArchiveFile{.path = path, .data = std::move(dep_chart.chart.archive), .executable = false});
      out.dependencies.push_back(std::move(dep_chart.origin));
    });
  }
  if (out.dependencies.empty()) return out;
  // Rewritten the way ferry packages a chart directory (UsageError above k_max_chart_size).
  out.chart.archive = chart::write_chart_archive(meta.name, std::move(files), options.mtime, display);
  return out;
}

ChartPuller::ChartPuller(ChartPullOptions options, core::LogSink& log)
    : m_impl(std::make_unique<Impl>(std::move(options), log)) {}

ChartPuller::~ChartPuller() = default;

PulledChart ChartPuller::pull(const std::string& repo, const std::string& name, const std::string& constraint) {
  Impl& d = *m_impl;
  Fetched fetched = d.fetch(repo, name, constraint);
  d.log.info("chart " + name + " " + fetched.origin.version + " from " + fetched.origin.source +
             (constraint.empty() || constraint == fetched.origin.version ? "" : " (for \"" + constraint + "\")"));
  return d.vendor(std::move(fetched), std::nullopt);
}

PulledChart ChartPuller::load(const fs::path& path, const std::string& constraint) {
  Impl& d = *m_impl;
  Fetched fetched;
  fetched.chart = chart::load_chart(path, d.options.mtime);
  const auto& meta = fetched.chart.metadata;
  const bool ok = core::with_context("checking the version of chart " + core::display(path), [&] {
    return satisfies(meta.version, constraint, d.options.include_prereleases);
  });
  if (!ok) {
    throw UsageError("chart " + meta.name + " at " + core::display(path) + " has version " + meta.version +
                         ", the manifest asks for \"" + constraint + "\"",
                     "update `version:` in the manifest or use the chart it names");
  }
  fetched.origin = ChartOrigin{meta.name, constraint, meta.version, core::display(path),
                               core::sha256_of(fetched.chart.archive).str()};
  std::error_code ec;
  const fs::path base = fs::is_directory(path, ec) ? path : path.parent_path();
  return d.vendor(std::move(fetched), base.empty() ? fs::path(".") : base);
}

} // namespace ferry

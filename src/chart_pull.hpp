// Charts from where charts live, for pack: Helm HTTP repositories, OCI registries
// (oci://), local directories and archives; dependencies vendored as `helm dependency
// build` would.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "chart/chart_archive.hpp"
#include "core/digest.hpp"
#include "core/log.hpp"
#include "registry/client.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

struct ChartPullOptions {
  registry::ClientOptions client; // for chart repositories and OCI registries alike
  bool include_prereleases = false; // `helm --devel`
  std::int64_t mtime = 0;           // SOURCE_DATE_EPOCH for archives ferry (re)packages
  // `pack --locked`: the exact version of each dependency to vendor, by chart and
  // dependency name ({"studio", "redis"} -> "17.11.3"); they win over Chart.lock's pins
  // and Chart.yaml's constraints.
  std::map<std::pair<std::string, std::string>, std::string> pinned_dependencies = {};
};

// Where a chart (or one of its dependencies) came from, for ferry.json and the lock.
struct ChartOrigin {
  std::string name;
  std::string constraint; // as asked ("^5.2.0"; empty: any)
  std::string version;    // as chosen
  std::string source;     // the .tgz URL, "oci://host/path/name:version", or the local path
  std::string upstream_digest; // "sha256:…" of the archive as fetched (before vendoring)
};

struct PulledChart {
  chart::PackagedChart chart; // with every dependency vendored under charts/
  ChartOrigin origin;
  std::vector<ChartOrigin> dependencies; // those ferry vendored (not those already in charts/)
};

class ChartPuller {
public:
  ChartPuller(ChartPullOptions options, core::LogSink& log);
  ~ChartPuller();

  // `repo` is https://… or http://… (a Helm repository: index.yaml, the index's digest
  // checked against the archive) or oci://HOST/PATH (the chart is HOST/PATH/NAME with the
  // tag the constraint selects among the repository's tags; Helm's media types). UsageError
  // for a constraint nothing satisfies (listing what there is); IntegrityError for a digest
  // mismatch; RegistryError for transport failures. Dependencies are vendored.
  PulledChart pull(const std::string& repo, const std::string& name, const std::string& constraint);

  // A local directory or .tgz; dependencies not in charts/ are fetched (`repository:`
  // https://, oci://, or file://PATH relative to the chart) and vendored.
  PulledChart load(const std::filesystem::path& path, const std::string& constraint);

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace ferry

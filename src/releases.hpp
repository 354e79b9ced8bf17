// The release plan a bundle carries (ferry.json `releases`): written by pack with each
// release's values files embedded (so they are signed with ferry.json), read on the
// isolated side by values, check and upgrade.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/bundle_manifest.hpp"
#include "bundle/descriptor.hpp"
#include "values/rewrite.hpp"

#include <map>
#include <string>
#include <vector>

namespace ferry {

// A values file carried in the bundle.
struct CarriedValues {
  std::string file;    // as the manifest named it ("values/studio.yaml")
  std::string content; // its bytes
};

struct BundleRelease {
  std::string name;
  std::string namespace_name;
  std::string chart;                       // the chart's name in the bundle (ChartRecord::name)
  std::vector<CarriedValues> values;       // lowest precedence first
  std::map<std::string, std::string> set;  // keys the manifest sets; an empty value = the site must supply it
  std::vector<std::string> image_pull_secrets;
  std::vector<values::Rule> rules;
  bool wait = false;
  std::string timeout;                     // Go duration; empty: helm's default
  bool atomic = false;
  bool create_namespace = false;
  bool upgrade_crds = false;
};

// Values files larger than this are refused by pack (values are configuration, not data).
inline constexpr std::size_t k_max_values_file_size = 4u << 20;

// pack: the manifest's releases as ferry.json carries them, each `values:` file read
// (relative to the manifest) and embedded as {"file", "content"}. UsageError naming the
// file (and line, for YAML that does not parse; a values file must be a YAML map).
std::string releases_for_bundle(const bundle::BundleManifest& manifest);

// The isolated side: the releases of a bundle, in order. Bundles whose `values` entries
// are plain names (no content) are refused with a UsageError naming the release (pack
// them again with this ferry). `descriptor` must come from a verified ferry.json.
std::vector<BundleRelease> bundle_releases(const bundle::BundleDescriptor& descriptor);

} // namespace ferry

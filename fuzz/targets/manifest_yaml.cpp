// Fuzz target: the bundle manifest parser (pack's input, DESIGN §3): YAML `kind: Bundle`
// manifests and plain image lists.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_manifest.hpp"
#include "core/error.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const bundle::BundleManifest manifest = bundle::parse_bundle_manifest(text, "fuzz/manifest.yaml");
    // Both go into ferry.json as JSON: a manifest that parsed must give valid JSON.
    const auto releases = nlohmann::json::parse(manifest.releases_json, nullptr, false);
    const auto source = nlohmann::json::parse(manifest.source_json, nullptr, false);
    if (releases.is_discarded() || !releases.is_array() || source.is_discarded()) std::abort();
  } catch (const core::Error&) {
  }
  return 0;
}

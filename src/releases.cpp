// ferry.json `releases`: embedding values files (pack) and reading them back.
// SPDX-License-Identifier: Apache-2.0
#include "releases.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"

#include <nlohmann/json.hpp>

namespace ferry {

using nlohmann::json;

std::string releases_for_bundle(const bundle::BundleManifest& manifest) {
  json releases = json::parse(manifest.releases_json);
  for (auto& release : releases) {
    if (!release.contains("values")) continue;
    json carried = json::array();
    for (const auto& item : release["values"]) {
      const std::string file = item.get<std::string>();
      const auto path = manifest.resolve(file);
      const std::string where = "values file " + file + " of release '" + release["name"].get<std::string>() + "'";
      std::string content;
      core::with_context("reading " + where, [&] { content = core::read_file(path, k_max_values_file_size); });
      // A values file must parse and be a map: Helm would refuse it only on the cluster side.
      (void)values::coalesce("{}", {content}, {core::display(path)});
      carried.push_back({{"file", file}, {"content", content}});
    }
    release["values"] = std::move(carried);
  }
  return releases.dump();
}

std::vector<BundleRelease> bundle_releases(const bundle::BundleDescriptor& descriptor) {
  std::vector<BundleRelease> out;
  const json releases = json::parse(descriptor.releases_json);
  for (const auto& r : releases) {
    BundleRelease release;
    release.name = r.value("name", "");
    release.namespace_name = r.value("namespace", "");
    release.chart = r.value("chart", "");
    if (r.contains("values")) {
      for (const auto& v : r["values"]) {
        if (!v.is_object() || !v.contains("content")) {
          throw core::UsageError("release '" + release.name + "' of bundle " + descriptor.name + " " +
                                     descriptor.version + " names values files without their content",
                                 "the bundle was packed by an older ferry; pack it again with this version");
        }
        release.values.push_back({v.value("file", ""), v.value("content", "")});
      }
    }
    if (r.contains("set")) {
      for (const auto& [key, value] : r["set"].items()) release.set[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
    if (r.contains("imagePullSecrets")) release.image_pull_secrets = r["imagePullSecrets"].get<std::vector<std::string>>();
    if (r.contains("rules")) {
      for (const auto& rule : r["rules"]) release.rules.push_back({rule.value("path", ""), rule.value("set", "")});
    }
    release.wait = r.value("wait", false);
    release.timeout = r.value("timeout", "");
    release.atomic = r.value("atomic", false);
    release.create_namespace = r.value("createNamespace", false);
    release.upgrade_crds = r.value("upgradeCRDs", false);
    out.push_back(std::move(release));
  }
  return out;
}

} // namespace ferry

// ferry check (DESIGN §4 step 3): render each release of a bundle with helm and its image
// overlay, require every rendered image to be a bundle image under the internal registry,
// and find, with sentinels, the values path that feeds each rendered image.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "core/log.hpp"
#include "image_push.hpp"
#include "site_values.hpp"
#include "unpack.hpp"
#include "values/rewrite.hpp"

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry {

// ---- The pure parts (unit-tested) ----

// One image field of rendered manifests.
struct RenderedImage {
  std::string source;        // the template that rendered it, from helm's "# Source:" line ("" when none)
  std::size_t occurrence = 0; // which document of that source (0 = its first)
  std::string kind;          // "Deployment", "ObjectStore", …
  std::string name;          // metadata.name
  std::string container;     // the container's name; "" for an `image` field outside a container list
  std::string field;         // where in the document: "spec.template.spec.initContainers[0].image"
  std::string image;         // the value ("" when a container has none)

  // Identifies the field across renders of the same chart (names may change with the
  // values; the template, the document's rank in it and the field do not).
  std::string key() const;
  // "Deployment/rel-app container app", "ObjectStore/primary field spec.image".
  std::string label() const;
};

// Every image field of a `helm template` output (a multi-document YAML stream), in
// document order: the `image` of each item of `containers`, `initContainers` and
// `ephemeralContainers` lists anywhere (pod specs of Pods, Deployments, StatefulSets,
// DaemonSets, ReplicaSets, Jobs, CronJobs' jobTemplate, and any `spec.template.spec` of
// a custom resource), and any other string field named `image` anywhere. Error (exit 1)
// naming `what` and the document when the stream does not parse.
std::vector<RenderedImage> rendered_images(const std::string& manifests, const std::string& what);

// An image as push placed it: under the target, by tag (when the bundle's reference has
// one) and by digest.
struct PushedImage {
  std::string source;     // the bundle's reference
  std::string repository; // HOST[:PORT]/PREFIX/PATH
  std::string tag;        // "" when the bundle's reference has none
  std::string digest;     // the root digest in the bundle
};

std::vector<PushedImage> pushed_images(const std::vector<values::KnownImage>& images, const PushTarget& target);

// Why `image` is not one of `pushed` (nullopt when it is): not under TARGET/, a
// repository the bundle does not carry there, a tag or digest other than the bundle's.
// "REPO" with neither tag nor digest means REPO:latest, as the container runtime reads it.
std::optional<std::string> image_problem(const std::string& image, const PushTarget& target,
                                         const std::vector<PushedImage>& pushed);

// A string value of a values document, with its path as values::Change writes it.
struct ValueLeaf {
  std::string path;  // "backend.image.registry", "sidecars[0].image"
  std::string value;
};

// The values Helm reads as strings (quoted scalars, and plain ones that are not null,
// booleans or numbers), in document order. UsageError when `values_yaml` is not a map.
std::vector<ValueLeaf> string_leaves(const std::string& values_yaml);

// Which leaves to probe with sentinels (indices into `leaves`): non-empty values whose
// text occurs in a rendered image, and empty ones under a key naming a part of an image
// (image, registry, repository, tag, digest, hostname, prefix), which a template may
// fill with a default.
std::vector<std::size_t> sentinel_candidates(const std::vector<ValueLeaf>& leaves,
                                             const std::vector<RenderedImage>& images);

// The sentinel for leaf `n`: "sentinel.invalid/ferry-sentinel-N/sN", a valid image
// reference on its own and recognisable inside a longer one.
std::string sentinel(std::size_t n);
// The leaf numbers of the sentinels inside `text`, ascending.
std::set<std::size_t> sentinels_in(const std::string& text);

// `values_yaml` with each leaf whose path is in `replace` (path -> leaf number) holding
// its sentinel instead; every other value keeps its text, quoting and tag (so Helm reads
// it with the same type). UsageError when `values_yaml` is not a map.
std::string with_sentinels(const std::string& values_yaml, const std::map<std::string, std::size_t>& replace);

// What the sentinel renders found: which values paths feed which image fields.
class SentinelMap {
public:
  explicit SentinelMap(std::vector<ValueLeaf> leaves) : m_leaves(std::move(leaves)) {}
  const std::vector<ValueLeaf>& leaves() const noexcept { return m_leaves; }
  // Records one render done with sentinels in the leaves `batch`: each image field of
  // `rendered` is fed by the leaves whose sentinels it holds (sentinels of leaves outside
  // the batch are ignored).
  void record(const std::vector<std::size_t>& batch, const std::vector<RenderedImage>& rendered);
  // A leaf whose sentinel made helm fail even alone: it is not known what it feeds.
  void unprobed(std::size_t leaf, std::string reason);
  // The values paths feeding the image field `key` (RenderedImage::key()), in leaf order.
  std::vector<std::string> feeding(const std::string& key) const;
  // Whether the leaf at `path` feeds any rendered image field.
  bool feeds_any(const std::string& path) const;
  // Every (leaf, image-field key) pair found, in leaf order.
  std::vector<std::pair<std::string, std::string>> feeds() const;
  const std::vector<std::pair<std::string, std::string>>& unprobed_paths() const noexcept { return m_unprobed; }

private:
  std::vector<ValueLeaf> m_leaves;
  std::map<std::string, std::set<std::size_t>> m_by_field; // image-field key -> leaves
  std::vector<std::pair<std::string, std::string>> m_unprobed; // path, reason
};

// Probes `candidates` (leaf numbers) in batches: `render` renders with the given batch
// replaced by sentinels and returns the image fields, or nullopt when helm failed. A
// failed batch is split in halves until single leaves, which are recorded as unprobed
// (with `failure`'s message). The candidates holding a value are tried in one batch,
// then those holding "" in another (a sentinel in an empty value may switch a template
// branch, e.g. a digest replacing the tag, and so hide what the others feed).
// Returns the number of renders.
struct RenderAttempt {
  std::optional<std::vector<RenderedImage>> images; // nullopt: helm failed
  std::string failure;                              // helm's message when it failed
};
std::size_t probe_sentinels(SentinelMap& map, const std::vector<std::size_t>& candidates,
                            const std::function<RenderAttempt(const std::vector<std::size_t>&)>& render);

// A YAML values document from a release's `set:` keys (helm --set syntax: dots nest,
// `\.` is a dot inside a key; values typed as --set types them). Keys with an empty
// value are required site keys: with `placeholders` they get k_check_placeholder (and
// are listed in `placeholder_keys`), without they are left out. "{}\n" when empty.
inline constexpr const char* k_check_placeholder = "ferry-check-placeholder";
std::string set_values_yaml(const std::map<std::string, std::string>& set, bool placeholders,
                            std::vector<std::string>* placeholder_keys = nullptr);

// ---- The command ----

struct CheckOptions {
  std::filesystem::path bundle;
  PushTarget target;
  TrustOptions trust;
  // Overlays from DIR/RELEASE.yaml (as `ferry values` writes them); empty: computed
  // (release_overlay, without pinning).
  std::filesystem::path values_dir;
  std::string helm = "helm"; // a path, or a name looked up in $PATH
  // The site's values per release (resolve_site_values), rendered between the bundle's
  // values and the overlay as helm upgrade gets them; required keys the site left empty
  // get placeholders. A release without an entry renders with its `set:` entries,
  // placeholders for the empty ones.
  std::vector<SiteValues> sites;
  // Or the site value flags (--values, --set, --set-file; not --reuse-values, which
  // needs the cluster), resolved against the bundle's releases when `sites` is empty.
  SiteValueOptions site_flags;
};

struct CheckedImage {
  RenderedImage rendered;
  std::optional<std::string> problem; // nullopt: a bundle image under the target
  std::vector<std::string> fed_by;    // values paths that feed it (sentinels); empty: hard-coded
};

struct CheckedChange {
  values::Change change;
  bool feeds_image = false; // the sentinel of its path reached a rendered image field
};

struct ReleaseCheck {
  std::string name;
  std::string namespace_name;
  std::string chart;                        // "NAME VERSION"
  std::string overlay;                      // the overlay file used, or "computed"
  std::vector<std::string> placeholders;    // required site keys given placeholder values
  std::vector<CheckedImage> images;         // every rendered image field, in document order
  std::vector<CheckedChange> changes;       // what the detectors and rules rewrote (computed overlay only)
  std::vector<std::pair<std::string, std::string>> feeds;    // values path -> image field label
  std::vector<std::pair<std::string, std::string>> unprobed; // values path, why
  std::size_t renders = 0;                  // helm template runs
  bool ok() const;
};

struct CheckResult {
  bundle::BundleDescriptor descriptor;
  bundle::SignatureCheck signature;
  std::vector<ReleaseCheck> releases; // in the bundle's order
  bool ok() const;
};

// Loads the bundle's releases (load_bundle_releases), then per release renders
// `helm template NAME CHART.tgz -n NS -f <bundle values>… [-f <set:, placeholders>] [-f
// <site values>…] -f <overlay>`, checks every rendered image (image_problem) and maps values to image
// fields with sentinel renders. Offending images are an outcome (see
// require_check_passed). UsageError: helm not found (naming --helm), a --values-dir
// without a release's overlay; Error (exit 1) when helm cannot render a release;
// IntegrityError as load_bundle_releases.
CheckResult check_bundle(const CheckOptions& options, core::LogSink& log);

// Throws core::Error (exit 1) naming every offending image of every release (kind, name,
// container, the image, what is wrong, and the values paths that feed it, or that it is
// hard-coded in the chart's templates); returns when every release passed.
void require_check_passed(const CheckResult& result, const PushTarget& target);

} // namespace ferry

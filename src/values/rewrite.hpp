// Values rewriting (DESIGN §4 step 3): find where a chart's values name images, and
// write an overlay that points each of them at the internal registry.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::values {

// Where the bundle's images went: HOST[:PORT][/PREFIX]. An image's new reference is
// HOST/PREFIX/<its source repository without host>, Docker Hub short names as
// library/NAME (DESIGN §4 step 2).
struct Target {
  std::string host;   // "registry.corp:5000"
  std::string prefix; // "mirror/prod" or empty; no slashes at either end

  // HOST[:PORT][/PREFIX]: what registry keys and global.imageRegistry are set to.
  std::string str() const { return prefix.empty() ? host : host + "/" + prefix; }
};

// An image the bundle carries.
struct KnownImage {
  std::string ref;    // as the bundle names it: "docker.io/bitnami/postgresql:15.4.0"
  std::string digest; // "sha256:…" of its manifest (root) in the bundle
};

// An explicit rule of a release (the manifest's `releases[].rules`), for values no
// detector reads, such as AIStor's `repositories.<x>.hostname` + `pathPrefix`:
//   {path: "repositories.*.hostname",   set: "{registry}"}
//   {path: "repositories.*.pathPrefix", set: "{prefix/}{value}"}
// `path` is dot-separated; `*` matches any one key (or list index); `[N]` (or a number
// where the value is a list) is list item N; `\.` is a dot inside a key. In `set`:
// {registry} = HOST[:PORT], {prefix} = PREFIX, {prefix/} = "PREFIX/" or "" when there is
// none, {registry/prefix} = HOST[:PORT][/PREFIX], {value} = the value being replaced.
struct Rule {
  std::string path;
  std::string set;
};

struct Options {
  Target target;
  // Images the bundle carries. Only values naming one of them are rewritten (matched by
  // registry + repository, Docker Hub short names normalised; a tag, when the value has
  // one, must match too, except that an empty tag — filled from appVersion by most
  // charts — matches any). Empty: every image-looking value is rewritten (`ferry values
  // --chart` without a bundle).
  std::vector<KnownImage> images;
  bool images_given = false; // true: `images` is the bundle's list (even if empty)
  // Also pin each placed image to its bundle digest where the value can hold one (a
  // `digest:` key next to the repository, or "repo:tag@sha256:…" in a plain string).
  bool pin_digests = false;
  std::vector<Rule> rules;
};

// One rewritten value.
struct Change {
  std::string path;      // "postgresql.image.registry", list items as "[3]": "sidecars[0].image"
  std::string old_value; // as the merged values held it ("" for a key the overlay adds)
  std::string new_value;
  std::string detector;  // "image string", "registry/repository map", "repository+tag",
                         // "ingress-nginx image map", "global.imageRegistry",
                         // "global.image.registry", "rule PATH"
  std::string image;     // the bundle image (or, without a bundle, the reference) it serves
};

// A bundle image a rule placed (see Result::by_rules).
struct RulePlaced {
  std::string image; // the bundle image
  std::string rule;  // the rule's path: "repositories.*.hostname"
  std::string path;  // the value it changed: "repositories.minio.hostname"
};

// An image-looking value left alone, and why.
struct Skipped {
  std::string path;
  std::string value;
  std::string reason; // "not in the bundle", "templated ({{ … }})", …
};

struct Result {
  // YAML holding only the changed keys (maps nested as in the values; a list that holds
  // a changed value is written whole, since Helm replaces lists), or "{}\n" when nothing
  // changed. Deterministic: keys in the values' order.
  std::string overlay_yaml;
  std::vector<Change> changes;    // in path order (the values' document order)
  std::vector<Skipped> skipped;   // image-looking values not rewritten, in the same order
  // Bundle images (Options::images, as given) that no detector and no rule placed.
  std::vector<std::string> unplaced;
  // Bundle images no detector placed whose registry a rule rewrote: a rule changed a
  // value that was the image's registry host ("quay.io") or a leading part of its
  // reference ("quay.io/minio"). A rule cannot say which image a value serves, so this is
  // by registry: `ferry check` renders the chart and confirms it.
  std::vector<RulePlaced> by_rules;
};

// Rewrites `values_yaml`: the release's effective values before the overlay (the chart's
// values.yaml coalesced with its subcharts' under their names, `global` included, then
// the release's values files; see coalesce()). `what` names the values in messages.
// UsageError: the YAML does not parse (what:line), a rule's path matches nothing, a rule
// uses an unknown {placeholder}, a rule's path ends at a map or list.
//
// The detectors, in the order they look at a map:
// - "global.imageRegistry" / "global.image.registry": the key, when present (even empty
//   or null), becomes HOST[/PREFIX]. A subchart's copy (`sub.global.imageRegistry`) is
//   left alone when the top-level `global` has the key (Helm copies it down).
// - "ingress-nginx image map": {registry, image, tag?, digest?} where `image` is a path
//   without host, tag or digest and no non-empty `repository` is beside it: registry :=
//   HOST[/PREFIX], image := the source path.
// - "registry/repository map" / "repository+tag": a map with a string `repository` and a
//   `registry`, `tag`, `digest` or `pullPolicy` beside it, or under a key naming an image.
//   With a `registry` key: registry := HOST[/PREFIX], repository := the source path
//   (Docker Hub short names as library/NAME); without: repository := HOST/PREFIX/PATH
//   ("repository+tag" when a `tag` is beside it). The tag is never changed (nor one
//   written into the repository itself, "quay.io/org/app:1.0").
// - "image string": a string under a key naming an image (its name contains "image" but
//   not tag, digest, policy, secret, registry, version or pull), or — with a bundle — a
//   string anywhere that has an explicit registry host and names a bundle image:
//   TARGET/PATH[:TAG][@DIGEST]. Configuration words ("true", "none") and names whose last
//   part has no letter ("1.2.3") are never images; URLs, paths and prose do not parse.
// Digests: a digest the value holds is kept; with a bundle, one that differs from the
// bundle's is replaced by the bundle's (the internal registry holds only that one);
// pin_digests writes the bundle's digest where the value can hold it. Values already under
// HOST/PREFIX are skipped (and place their bundle images). Then the rules run, on the
// values as the detectors left them. A value with "{{" is skipped as templated (for a map:
// its registry or repository; a templated tag or digest is left as it is).
Result rewrite(const std::string& values_yaml, const Options& options, const std::string& what);

// An image a detector recognises in values: what rewrite() would place without a bundle
// (image discovery lists these, values/discover.hpp).
struct DetectedImage {
  std::string path;              // the value naming it: "backend.image.repository", "sidecars[0].image"
  std::vector<std::string> keys; // the same path, one item per map key or list index ("[0]")
  std::string detector;          // as Change::detector: "image string", "registry/repository map", …
  // The reference as the values write it, a map's parts joined ("docker.io/bitnami/redis:7.0",
  // "iterativeai/studio-backend" when the map's tag is empty).
  std::string reference;
  // The map's `registry` value when the map has that key (even empty): the part of
  // `reference` that charts replace with global.imageRegistry.
  std::optional<std::string> registry;
  bool tag_written = false; // `reference` carries a tag or a digest
};

struct Detection {
  std::vector<DetectedImage> images; // in the values' document order
  // Image-looking values no detector could read: templated ({{ … }}) or not a reference.
  std::vector<Skipped> skipped;
};

// Every image the detectors of rewrite() recognise in `values_yaml` (as rewrite() without
// a bundle would see them; global.imageRegistry is not applied). UsageError as rewrite().
Detection detect_images(const std::string& values_yaml, const std::string& what);

// Whether a map key holds an image reference: its name contains "image" but not tag,
// digest, policy, secret, registry, version or pull ("image", "initImage", "sidecarImage").
bool is_image_key(std::string_view key);

// Whether `text` reads as an image reference: it parses (oci::Reference), is not too long,
// not a word of configuration ("true", "none") and its last path part has a letter.
bool looks_like_image(std::string_view text);

// What `ferry values --chart` reads: a chart (directory or .tgz) and values files.
struct ChartInput {
  std::filesystem::path chart;
  std::vector<std::filesystem::path> values_files; // -f, in order: later files win
};

// rewrite() of the release's effective values as Helm computes them: the values files
// merged (later wins, maps key by key), then coalesced over the chart's defaults with its
// subcharts' (as chart_values() does; a null deletes), globals copied into subcharts.
// Subcharts a condition disables are included: their keys in the overlay do no harm.
// `what` in messages is the chart's path. UsageError: a chart or values file that cannot
// be read, and what rewrite() throws.
Result rewrite_chart(const ChartInput& input, const Options& options);

// Helm's value coalescing, for building rewrite()'s input: `overrides` (YAML maps, in
// order, later wins) merged over `base`; maps merge key by key, anything else replaces,
// and a null deletes the key (as Helm does). Returns YAML. UsageError naming the
// document (`names`, parallel to `overrides`) and line when one does not parse or is not
// a map.
std::string coalesce(const std::string& base, const std::vector<std::string>& overrides,
                     const std::vector<std::string>& names);

// A chart's effective default values: its values.yaml, with each subchart's values
// (charts/<name>/values.yaml or charts/<name>-<ver>.tgz inside the archive) under the
// subchart's name or alias, and the parent's `global` copied into each subchart's `global`
// as Helm does. `chart_tgz` is the chart archive's bytes.
std::string chart_values(const std::string& chart_tgz, const std::string& what);

} // namespace ferry::values

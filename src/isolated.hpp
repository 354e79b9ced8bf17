// What the later isolated-side stages (values, check, upgrade) need from a bundle: its
// releases with their charts, and the image overlay of each release.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "core/log.hpp"
#include "image_push.hpp"
#include "releases.hpp"
#include "unpack.hpp"
#include "values/rewrite.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace ferry {

// One release with everything about it the bundle holds.
struct ReleaseInputs {
  BundleRelease release;
  bundle::ChartRecord chart;
  std::string chart_archive;             // the chart .tgz bytes (sha256 checked against ferry.json)
  std::vector<std::string> chart_images; // the bundle images this chart declares (ChartRecord::images)
};

struct LoadedBundle {
  bundle::BundleDescriptor descriptor;
  bundle::SignatureCheck signature;
  std::string descriptor_digest;       // "sha256:…" of ferry.json's bytes: identifies the bundle
  std::vector<ReleaseInputs> releases; // in the manifest's order
};

// Verifies the signature (as verify does), then reads only what the releases need: the
// chart archives, each checked against its digest in ferry.json. Bundles written one zstd
// frame per entry (as ferry writes them) are read by walking the frames and skipping the
// others; other bundles are read front to back. IntegrityError as verify; UsageError for a
// release whose chart the bundle lacks.
LoadedBundle load_bundle_releases(const std::filesystem::path& bundle, const TrustOptions& trust, core::LogSink& log);

// The targets ferry push gave the bundle's images: for values::Options::images.
std::vector<values::KnownImage> bundle_images(const bundle::BundleDescriptor& descriptor);

// rewrite() for one release: the chart's defaults (with subcharts and globals), then the
// bundle's values files for it, then `site_values` (YAML documents, lowest first: live
// values, site files, --set) — the effective values before the overlay — rewritten for
// `target` with the release's rules and the bundle's images.
values::Result release_overlay(const ReleaseInputs& inputs, const PushTarget& target,
                               const std::vector<values::KnownImage>& images, bool pin_digests,
                               const std::vector<std::string>& site_values = {},
                               const std::vector<std::string>& site_names = {});

// `ferry values BUNDLE`: the overlay of every release, written to OUT_DIR/RELEASE.yaml.
struct ValuesOptions {
  std::filesystem::path bundle;
  PushTarget target;
  TrustOptions trust;
  std::filesystem::path out_dir; // created if missing
  bool pin_digests = false;
};

struct ReleaseValues {
  std::string name;
  std::string namespace_name;
  std::string chart;                  // "NAME VERSION"
  std::filesystem::path overlay_file; // OUT_DIR/NAME.yaml
  values::Result result;              // changes, skipped values, unplaced images
};

struct ValuesResult {
  bundle::BundleDescriptor descriptor;
  bundle::SignatureCheck signature;
  std::vector<ReleaseValues> releases; // in the bundle's order
};

// load_bundle_releases, then release_overlay for each release (its `set:` keys with
// values as site values; required ones, still empty, are left out), then each overlay
// written atomically to OUT_DIR/RELEASE.yaml once every release was computed (nothing is
// written when one fails). Nothing else in OUT_DIR is touched. Images no value places
// are an outcome (ReleaseValues::result.unplaced), not an error. UsageError: a release
// name that cannot be a file name, OUT_DIR not creatable; what the above throw.
ValuesResult write_release_overlays(const ValuesOptions& options, core::LogSink& log);

} // namespace ferry

// The isolated-side stages: verify, inspect and extract a bundle, and the whole
// isolated-side pipeline (`ferry unpack`, `ferry upgrade`): verify, push, values, check,
// upgrade.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "bundle/volume_set.hpp"
#include "core/log.hpp"
#include "registry/client.hpp"
#include "site_values.hpp"
#include "upgrade.hpp"
#include "values/rewrite.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

struct PushResult;  // image_push.hpp (which includes this header)
struct CheckResult; // check.hpp (likewise)

// Which signers an operator trusts. Without --insecure-skip-signature at least one
// public key is required (inspect alone may run without one, and says so).
struct TrustOptions {
  std::vector<std::filesystem::path> pubkeys;
  bool insecure_skip_signature = false;
};

// Loads the trusted keys into `keys` and says how the signature is to be checked: require
// (keys given), or skip (--insecure-skip-signature, warned about loudly; or no key when
// `keys_required` is false, as for inspect). UsageError: no key, no skip, keys required.
bundle::SignaturePolicy load_trust(const TrustOptions& trust, bundle::TrustedKeys& keys, core::LogSink& log,
                                   bool keys_required = true);

// One file given for a bundle (the bundle itself, or one volume of a split bundle).
struct GivenFile {
  std::filesystem::path path;
  std::uint32_t volume = 0; // 0 for a one-file bundle
  std::uint64_t size = 0;
  bundle::StreamStats stats; // what verify or extract checked in it
};

// Which files of the bundle a command was given (bundle/volume_set.hpp).
struct GivenFiles {
  bool split = false;
  std::uint32_t count = 1;            // volumes of the bundle (1: one file)
  std::uint64_t limit = 0;            // --split of the pack (split bundles)
  std::vector<GivenFile> given;       // in volume order
  std::vector<std::uint32_t> missing; // volumes not given
  std::vector<std::string> missing_names; // their file names (NAME.NNN.tar.zst), or "volume NNN"
};

// The report of a bundle::VolumeSet.
GivenFiles given_files(const bundle::VolumeSet& set);

struct VerifyResult {
  bundle::BundleDescriptor descriptor;
  bundle::SignatureCheck signature;
  bundle::StreamStats stats;      // all files together
  std::uint64_t bundle_size = 0;  // all files together
  GivenFiles files;
};

// Reads each file once: signature, then every entry against the blob table (for a
// volume: the entries ferry.json assigns to it). `bundles` is a one-file bundle or any
// volumes of one split bundle, in any order (bundle::open_volume_set: foreign and
// duplicate files are refused first); each volume is checked alone, and the volumes not
// given are listed in the result, not an error. IntegrityError (exit 3) on any failure,
// naming the file, the entry and what uses it.
VerifyResult verify_bundle(const std::vector<std::filesystem::path>& bundles, const TrustOptions& trust,
                           core::LogSink& log, core::ProgressSink& progress);

struct InspectResult {
  bundle::BundleDescriptor descriptor;
  bundle::SignatureCheck signature;
  std::uint64_t bundle_size = 0; // all files given together
  GivenFiles files;
};

// Reads only the head of each file (ferry.json and its signature, volume.json). With
// trusted keys the signature is checked and a bad one refused; without, the result says
// it was not. Volumes as verify_bundle takes them.
InspectResult inspect_bundle(const std::vector<std::filesystem::path>& bundles, const TrustOptions& trust,
                             core::LogSink& log);

struct ExtractResult {
  VerifyResult verify;
  std::filesystem::path directory;
};

// Verifies the bundle while writing it out as an OCI image layout (plus ferry.json and
// ferry.json.sig, so the directory equals the bundle's tar contents). Written into a
// temporary directory beside `directory` and renamed onto it only when everything
// verified; `directory` must not exist or be empty. A differential bundle is refused
// (UsageError, exit 2, before anything is written): its layout would lack the blobs its
// base has. A split bundle needs every volume
// (IntegrityError naming the missing files, before anything is written); the pieces of a
// blob are written into its one file, which is checked against the blob's digest.
ExtractResult extract_bundle(const std::vector<std::filesystem::path>& bundles, const std::filesystem::path& directory,
                             const TrustOptions& trust, core::LogSink& log, core::ProgressSink& progress);

// The isolated side as one run (DESIGN §4): which stages run, and how.
struct UnpackOptions {
  // The bundle, or the volumes of a split one (all of them when push or verify runs;
  // `ferry upgrade` reads only ferry.json and the chart archives, which every volume carries).
  std::vector<std::filesystem::path> bundles;
  std::string registry; // the internal registry: HOST[:PORT][/PREFIX]
  TrustOptions trust;
  // The target registry (push). With create_pull_secrets its credentials (username and
  // password) also become the image pull secrets the releases name.
  registry::ClientOptions client;
  int jobs = 4; // push: parallel registry requests
  // Push journal and upgrade state file; empty: default_state_dir() (image_push.hpp).
  std::filesystem::path state_dir;
  SiteValueOptions site;
  KubeTools tools;
  // Stages. push verifies the bundle while it streams; without push, verify reads the
  // whole bundle alone (unless it is off too, as for `ferry upgrade`, which reads only
  // ferry.json and the charts, each checked against the signed digests). The values
  // stage always runs: upgrade and check need it.
  bool verify = true;
  bool push = true;
  bool check = true; // runs when helm is found; otherwise skipped with a warning
  bool upgrade = true;
  // Run nothing that changes anything: push --dry-run, the values, and the commands the
  // upgrade would run (no helm or kubectl is started; check and --reuse-values are left
  // out, being helm runs).
  bool plan = false;
  // push --dry-run, pre-flight, then helm upgrade --dry-run.
  bool dry_run = false;
  bool atomic = false;       // helm --atomic for every release (the manifest may ask it per release)
  bool pin_digests = false;  // overlays pin images to their bundle digests where values can hold one
  bool create_pull_secrets = false;
};

// The values stage of one release. Nothing here holds a site value, except where the
// overlay overrides one (an image location).
struct ReleaseValuesReport {
  std::string name;
  std::string namespace_name;
  std::string chart; // "NAME VERSION"
  // The overlay's changes (old values of keys the site set are overrides, listed below
  // too); skipped values the site set are shown as "(site value)".
  std::vector<values::Change> changes;
  std::vector<values::Skipped> skipped;
  std::vector<std::string> unplaced;
  std::vector<values::RulePlaced> by_rules;
  std::vector<OverlayOverride> overrides;
  std::vector<std::string> set_keys;      // keys given with --set
  std::vector<std::string> set_file_keys; // keys given with --set-file
  std::vector<std::string> site_files;    // --values files
  std::vector<std::string> required;      // the release's required keys
  // --reuse-values: "read", "none (not installed)", "not read (--plan)"; "" when not asked.
  std::string live_values;
};

struct UnpackResult {
  std::string bundle_name;    // "aistor 2025.05.30"
  std::string bundle_id;      // sha256 of ferry.json: keys the upgrade state file
  std::string registry;       // HOST[:PORT][/PREFIX]
  std::optional<VerifyResult> verify;          // verify alone (push skipped)
  std::shared_ptr<const PushResult> push;      // null: push not run
  std::vector<ReleaseValuesReport> values;     // one per release, in order
  std::shared_ptr<const CheckResult> check;    // null: check not run (see check_skipped)
  std::string check_skipped;                   // why check did not run ("" when it ran or was not asked)
  std::optional<UpgradeResult> upgrade;        // nullopt: upgrade not run
};

// Runs the stages in order, stopping at the first failure:
// 0. ferry.json (signature checked) and the site values: every flag checked against the
//    releases, live values read (--reuse-values), and — when upgrade runs — every
//    required key present (UsageError listing them) before anything is pushed;
// 1.+2. push (push_bundle: verifies while streaming), or verify alone;
// 3. values: each release's overlay (release_overlay over the bundle's values and the
//    site's), the keys it overrides in the site's values;
// 4. check (check_bundle with these overlays, require_check_passed) when helm is found;
// 5. upgrade: the chart archive and the values files (write_release_values) in a private
//    temporary directory, removed afterwards; run_upgrade keyed by the bundle id.
// Errors: what those stages throw (exit 2, 3, 4, 1, 5); the error of a later stage leaves
// the earlier stages' work in place (pushed images stay; upgraded releases are recorded
// in the state file).
UnpackResult unpack_bundle(const UnpackOptions& options, core::LogSink& log, core::ProgressSink& progress);

// The Docker config JSON ({"auths":{HOST:{username,password,auth}}}) an image pull secret
// for `host` holds. UsageError without a username and password.
std::string pull_secret_config(const std::string& host, const std::optional<registry::Credentials>& credentials);

} // namespace ferry

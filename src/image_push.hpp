// The push stage of unpack: a verified bundle's images and charts into the internal
// registry, straight from the bundle stream.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "core/log.hpp"
#include "oci/reference.hpp"
#include "registry/client.hpp"
#include "unpack.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ferry {

// Where things go: HOST[:PORT][/PREFIX] (DESIGN §4).
struct PushTarget {
  std::string host;
  std::string prefix; // no slashes at either end; may be empty

  // UsageError naming `text` for a scheme, an empty host, or a prefix that is not a
  // lower-case repository path.
  static PushTarget parse(const std::string& text);
  // PREFIX/<source path without host>: docker.io/library/nginx -> PREFIX/library/nginx.
  std::string image_repository(const oci::Reference& source) const;
  // PREFIX/charts/NAME.
  std::string chart_repository(const std::string& chart) const;
  std::string str() const { return prefix.empty() ? host : host + "/" + prefix; }
};

// The OCI tag of a chart version: "1.2.3+build" -> "1.2.3_build", as Helm stores it.
std::string chart_tag(std::string version);

// $XDG_STATE_HOME/ferry, else ~/.local/state/ferry: where push keeps its journals.
std::filesystem::path default_state_dir();

struct PushOptions {
  // The bundle, or any volumes of a split one, in any order (bundle::open_volume_set).
  std::vector<std::filesystem::path> bundles;
  PushTarget target;
  TrustOptions trust;
  registry::ClientOptions client;
  bool dry_run = false; // verify and look, push nothing
  int jobs = 4;          // parallel registry requests for the presence checks
  // Where the push journal lives (--state-dir); empty: $XDG_STATE_HOME/ferry, else
  // ~/.local/state/ferry.
  std::filesystem::path state_dir;
  // --partial: images and charts whose blobs are not all in the target yet (their volumes
  // were not given) are listed, not an error: the volume-by-volume workflow.
  bool partial = false;
};

struct PushedArtifact {
  std::string kind;       // "image" or "chart"
  std::string source;     // reference in the bundle
  std::string target;     // HOST/REPO[:TAG]
  core::Digest digest;
};

// An image or chart not pushed because some of its blobs are neither in the target nor in
// the volumes given.
struct WaitingArtifact {
  std::string kind;
  std::string source;
  std::string target;
  std::vector<std::uint32_t> volumes;     // the volumes that hold what it lacks
  std::vector<std::string> volume_names;  // their files (NAME.NNN.tar.zst)
};

struct PushResult {
  bundle::BundleDescriptor descriptor;
  bundle::SignatureCheck signature;
  bundle::StreamStats stats;
  std::uint64_t blobs_uploaded = 0;
  std::uint64_t bytes_uploaded = 0;
  std::uint64_t blobs_present = 0; // already in the target (HEAD)
  std::uint64_t bytes_present = 0;
  std::uint64_t blobs_mounted = 0; // cross-repository mounts
  std::uint64_t manifests_pushed = 0;
  std::uint64_t manifests_present = 0;
  std::vector<PushedArtifact> artifacts;
  bool dry_run = false;
  bool read_whole_bundle = true;     // false: stopped once the target had everything
  std::filesystem::path journal;     // the journal file of this bundle and target
  std::uint64_t journal_entries = 0; // entries an earlier run had recorded
  GivenFiles files;                        // the files read (volumes given, missing)
  std::vector<WaitingArtifact> waiting;    // not pushed yet: their volumes were not given
  std::filesystem::path staging;           // where pieces of blobs larger than a volume wait
  std::uint64_t staged_bytes = 0;          // pieces staged by this run
  std::uint64_t joined_blobs = 0;          // blobs uploaded from their pieces
  // A differential bundle: the blobs it leaves out (all found in the target, or the push
  // failed), and how many (repository, blob) pairs were mounted to complete them.
  std::uint64_t omitted_blobs = 0;
  std::uint64_t omitted_mounted = 0;
  registry::ClientStats transfer; // requests sent to the target and retries among them
};

// Reads the bundle once: the signature is checked first; each blob is verified while it
// streams and, where the target lacks it, uploaded to the first repository that needs it
// at the same time (then mounted into the others). Manifests are pushed only after the
// whole stream verified and all their blobs are in the target: children before parents,
// by digest, then by tag; the registry's Docker-Content-Digest must equal the bundle's.
// A re-run skips what the target already has (HEAD), so an interrupted push resumes. A
// journal in the state directory (one per bundle and target) records every blob,
// manifest and tag as it lands, so a re-run can say where the last one stopped; the
// registry's HEAD answers stay authoritative (the journal is never trusted alone).
// As soon as the manifests have streamed past (they come first), every blob is checked
// against the target in parallel (HEAD); once nothing the target lacks remains in the
// stream, reading stops: blobs the registry already holds under their digests are
// never used, so an up-to-date re-run reads little more than the manifests.
// Files (`files:`) are not pushed: they stay in the bundle for `ferry extract`.
//
// A differential bundle (docs/differential.md): the blobs it leaves out are HEAD-checked
// with the others, in every repository that needs them, as soon as the manifests are
// read; one a repository lacks is mounted from a repository of the target that has it
// (one of this bundle's, or one the base names). Any still missing is a RegistryError
// (exit 4) naming each blob, the images that need it and the base, before any manifest
// is written (blobs uploaded by then stay: harmless).
//
// Volumes of a split bundle are read one after the other (foreign and duplicate files are
// refused first). A piece of a blob larger than a volume is staged (0600) under the state
// directory until all its pieces are there, possibly over several runs; then the blob is
// uploaded from its pieces, hashed on the way (an IntegrityError if it does not match),
// and the pieces removed. Before anything is read, the free space there must hold the
// pieces the given volumes bring (an Error with both numbers otherwise). Each manifest is
// pushed once all the blobs of its image are in the target (this run, or HEAD); the
// others wait: without `partial` that is an Error (exit 1) naming the images and the
// volume files they wait for, after everything complete was pushed.
PushResult push_bundle(const PushOptions& options, core::LogSink& log, core::ProgressSink& progress);

} // namespace ferry

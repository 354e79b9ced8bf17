// Pulling images from registries into pack's content store: resolve (tags -> digests,
// manifest walk, platform filter), then fetch every missing blob in parallel.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/log.hpp"
#include "oci/blob_store.hpp"
#include "oci/reference.hpp"
#include "oci/resolved_image.hpp"
#include "registry/client.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace ferry {

// `--mirror docker.io=harbor.corp/dockerhub`: images of `registry` are pulled from
// `host`, under `prefix`, while the bundle keeps their original references.
struct Mirror {
  std::string registry;
  std::string host;
  std::string prefix; // without slashes at either end; may be empty

  // "REGISTRY=HOST[:PORT][/PREFIX]"; UsageError naming `text` otherwise.
  static Mirror parse(const std::string& text);
  // From the manifest's `mirrors:` map entry.
  static Mirror from(const std::string& registry, const std::string& target);
};

struct PullOptions {
  registry::ClientOptions client; // for every source registry
  std::vector<Mirror> mirrors;
  int jobs = 4; // parallel blob downloads
  // With a consumer order (start()), how far downloads may run ahead of the consumer, in
  // bytes of that order: what is downloaded but not yet consumed stays in the page cache
  // instead of being written back to disk.
  std::uint64_t download_ahead = 512ull << 20;
};

// Registry blobs by where their bytes come from, each blob counted once.
struct PullStats {
  // Already in the store (pack's cache) and not downloaded.
  std::size_t reused_blobs = 0;
  std::uint64_t reused_bytes = 0;
  // Downloaded while resolving (manifests, configs; manifests named by tag always are,
  // since tags move) or queued for start().
  std::size_t fetched_blobs = 0;
  std::uint64_t fetched_bytes = 0;
};

class ImagePuller {
public:
  // `store` receives every blob downloaded and is looked in first: a blob it holds (from
  // an earlier run, when it is pack's cache) is not downloaded again.
  ImagePuller(PullOptions options, oci::BlobStore& store, core::LogSink& log);
  ~ImagePuller();

  // Resolves `ref` (a tag is resolved to a digest here) and walks its manifests. The
  // manifests and configs read on the way come from the store when it has them (checked
  // against their digest: a mismatch is an IntegrityError naming the file) and land in
  // it otherwise; every other blob the store lacks is queued for fetch_all(). The
  // BlobRefs point into the store: Checked::yes for what this run downloaded or read,
  // Checked::no for blobs the store already held (the consumer hashes them as it copies
  // them). A stored file of the wrong size is removed (with a warning) and downloaded again.
  oci::ResolvedImage resolve(const oci::Reference& ref, const oci::PlatformFilter& filter);

  // Forgets the queued downloads of `digests` (a differential pack leaves those blobs
  // out of the bundle); they no longer count as fetched, nor as reused when the store
  // held them. Call before start().
  void skip(const std::set<core::Digest>& digests);

  // Starts downloading every queued blob into the store on background threads, `jobs`
  // at a time, in `order` (the order the caller will consume them, so that it can
  // start while the rest still arrive); queued blobs `order` does not name follow,
  // largest first. Each blob is checked against its digest before it is stored. The
  // first failure stops the rest. Call once, after the last resolve().
  void start(core::ProgressSink& progress, const std::vector<core::Digest>& order = {});
  // Blocks until `digest` is in the store; returns at once for a blob that was never
  // queued. Rethrows the first download failure.
  void wait_for(const core::Digest& digest);
  // Waits for every download; rethrows the first failure.
  void finish();
  // start() in size order, then finish().
  void fetch_all(core::ProgressSink& progress);

  std::uint64_t queued_bytes() const;
  struct Queued {
    std::size_t blobs = 0;
    std::uint64_t bytes = 0;
    std::uint64_t largest = 0; // bytes of the largest one
  };
  Queued queued() const;
  // So far; before start() the queued blobs count as fetched.
  PullStats stats() const noexcept { return m_stats; }

private:
  struct Source {
    registry::Client* client;
    std::string repository; // as the client must ask for it (mirror prefix applied)
    std::string display;    // "docker.io/library/nginx" for messages
  };
  Source source_for(const oci::Reference& ref);
  registry::Client& client_for(const std::string& host);
  void count_reused(const oci::Descriptor& d);
  void count_fetched(std::uint64_t size);
  class Access;

  PullOptions m_options;
  oci::BlobStore& m_store;
  core::LogSink& m_log;
  std::map<std::string, std::unique_ptr<registry::Client>> m_clients;
  struct Pending {
    Source source;
    oci::Descriptor descriptor;
  };
  std::map<core::Digest, Pending> m_queue;
  std::set<core::Digest> m_verified; // in the store, written or read (and checked) by this run
  std::set<core::Digest> m_reused;   // in the store before this run
  PullStats m_stats;
  struct Fetch; // the download threads and what they have finished
  std::unique_ptr<Fetch> m_fetch;
};

} // namespace ferry

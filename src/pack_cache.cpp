// pack's content cache (a shared BlobStore) and the clean-up after killed packs.
// SPDX-License-Identifier: Apache-2.0
#include "pack_cache.hpp"

#include "core/error.hpp"
#include "pack.hpp"
#include "pack_space.hpp"

#include <cstdlib>

namespace ferry {

namespace fs = std::filesystem;

namespace {

void log_removed(const std::vector<core::Leftover>& removed, core::LogSink& log) {
  for (const core::Leftover& l : removed) {
    log.info("removed " + core::display(l.path) + ", " + size_text(l.bytes) + ", left by an interrupted pack " +
             "(process " + std::to_string(l.pid) + ", no longer running)");
  }
}

} // namespace

fs::path default_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg && fs::path(xdg).is_absolute()) {
    return fs::path(xdg) / "ferry";
  }
  if (const char* home = std::getenv("HOME"); home && *home && fs::path(home).is_absolute()) {
    return fs::path(home) / ".cache" / "ferry";
  }
  return {};
}

std::unique_ptr<oci::BlobStore> open_cache(const fs::path& dir, core::LogSink& log,
                                           std::vector<core::Leftover>& removed) {
  if (dir.empty()) return nullptr;
  std::unique_ptr<oci::BlobStore> cache;
  try {
    cache = std::make_unique<oci::BlobStore>(dir);
  } catch (core::Error& e) {
    e.add_context("opening the cache " + core::display(dir));
    e.set_hint("give a writable directory with --cache DIR, or pack without a cache with --no-cache");
    throw;
  }
  std::vector<core::Leftover> left = cache->remove_leftovers();
  log_removed(left, log);
  removed.insert(removed.end(), left.begin(), left.end());
  return cache;
}

std::vector<core::Leftover> remove_pack_leftovers(const fs::path& output, core::LogSink& log) {
  const fs::path dir = output.has_parent_path() ? output.parent_path() : fs::path(".");
  std::vector<core::Leftover> removed;
  // The stems of AtomicFile (bundle, checksum file) and of pack's TempDir(output, "pack").
  for (const std::string& stem : {core::temporary_stem(output, "ferry"), core::temporary_stem(output, "pack"),
                                  core::temporary_stem(checksum_path_for(output), "ferry")}) {
    for (core::Leftover& l : core::remove_leftovers(dir, stem)) removed.push_back(std::move(l));
  }
  log_removed(removed, log);
  return removed;
}

void remove_old_checksum(const fs::path& checksum) {
  std::error_code ec;
  fs::remove(checksum, ec);
  if (ec) {
    throw core::Error(core::ExitCode::failure, "cannot remove the old " + core::display(checksum) + ": " + ec.message(),
                      "remove it by hand, or write the bundle elsewhere with -o");
  }
}

std::string damaged_blob_hint(const fs::path& file, const oci::BlobStore* cache) {
  if (cache && file.parent_path() == cache->root() / "blobs" / "sha256") {
    return "the cache holds a damaged copy: delete " + core::display(file) + " (or clear the whole cache, " +
           core::display(cache->root()) + ") and pack again";
  }
  return "the source is corrupt or changed while packing; recreate it and pack again";
}

} // namespace ferry

// pack's content cache of registry blobs, and what killed packs leave behind.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/fs.hpp"
#include "core/log.hpp"
#include "oci/blob_store.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

// The default cache directory: $XDG_CACHE_HOME/ferry, else $HOME/.cache/ferry (XDG base
// directory specification; a relative $XDG_CACHE_HOME is ignored as it says). Empty when
// neither gives an absolute directory.
std::filesystem::path default_cache_dir();

// The cache at `dir` (a BlobStore, created as needed), after removing the temporary files
// of packs killed while downloading into it (logged, and added to `removed`). nullptr for
// an empty `dir`. Only verified blobs are ever renamed into it, so several packs may share
// it. Throws Error naming `dir` (hint: --cache / --no-cache) when it cannot be created.
std::unique_ptr<oci::BlobStore> open_cache(const std::filesystem::path& dir, core::LogSink& log,
                                           std::vector<core::Leftover>& removed);

// Removes what packs killed while writing `output` left beside it: their temporary
// bundle, their temporary NAME.sha256 and their work directory, but only of processes
// that no longer run (core::remove_leftovers). Logs each; returns them.
std::vector<core::Leftover> remove_pack_leftovers(const std::filesystem::path& output, core::LogSink& log);

// Removes an existing NAME.sha256 before a new bundle takes the name NAME, so that a
// checksum file is never left describing another bundle than the one beside it (a kill
// between the two renames leaves the new bundle without one, and a re-run writes both).
// Throws Error naming it when it cannot be removed.
void remove_old_checksum(const std::filesystem::path& checksum);

// The hint for a blob whose bytes do not hash to its digest while they are packed: for a
// file of `cache`, to delete it (the cache is damaged, packing again would read it
// again); for a source's own file, to recreate the source.
std::string damaged_blob_hint(const std::filesystem::path& file, const oci::BlobStore* cache);

} // namespace ferry

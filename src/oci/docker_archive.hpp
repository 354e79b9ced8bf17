// Reading `docker save` / `podman save` archives without extracting them.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/log.hpp"
#include "oci/blob_store.hpp"
#include "oci/resolved_image.hpp"

#include <filesystem>
#include <string_view>

namespace ferry::oci {

// Resolves one image of a docker-save archive. `ref` picks the image by one of its
// RepoTags ("name:tag", Docker Hub short names allowed); empty means the only image
// (UsageError listing the RepoTags when there are several).
//
// Two layouts exist:
// - classic (`manifest.json` + `<id>.json` config + `<id>/layer.tar`): ferry synthesises
//   an OCI image manifest deterministically (layers in manifest.json order, media type
//   from each layer's magic bytes), stores it in `store`, and keeps the config bytes
//   exactly, so the image ID (config digest) is the same on both sides. For uncompressed
//   layers the digest is the config's diff_id (checked when the bytes are copied).
// - OCI (Docker 25+: index.json + blobs/sha256/...): manifests are kept byte-exact and
//   walked as walk_image does.
// Uncompressed archives are read in place (BlobRef points into the tar file, Checked::no).
// Compressed archives (gzip, zstd, xz) are first decompressed into `store`.
// A corrupt or truncated archive is an IntegrityError naming the file and the entry.
ResolvedImage load_docker_archive_image(const std::filesystem::path& file, std::string_view ref,
                                        const PlatformFilter& filter, BlobStore& store, core::LogSink& log);

} // namespace ferry::oci

// Reading OCI image layouts (image-spec v1.1 image-layout.md) and the images in them.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/log.hpp"
#include "oci/blob_store.hpp"
#include "oci/manifest.hpp"
#include "oci/resolved_image.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace ferry::oci {

// An OCI image layout directory: `oci-layout` (imageLayoutVersion 1.0.0) and index.json
// are read and checked on construction. A directory that is no layout is a UsageError
// naming it; a malformed index.json or oci-layout is an IntegrityError.
class LayoutReader {
public:
  explicit LayoutReader(std::filesystem::path dir);

  const ImageIndex& index() const noexcept { return m_index; }
  const std::filesystem::path& dir() const noexcept { return m_dir; }

  // The index.json entry whose org.opencontainers.image.ref.name is `ref`; with an empty
  // `ref`, the only entry. UsageError otherwise, listing the ref names the layout has.
  Descriptor find(std::string_view ref) const;

  // The whole blob, checked against the descriptor's digest and size (IntegrityError
  // naming `what` otherwise). For manifests and configs: refuses blobs over 16 MiB.
  std::string read_blob(const Descriptor& descriptor, std::string_view what) const;

  std::filesystem::path blob_path(const core::Digest& digest) const;

private:
  std::filesystem::path m_dir;
  ImageIndex m_index;
};

// Resolves image `ref` of layout `dir` (see LayoutReader::find) into everything pack
// needs: the manifest graph is read and checked; layers stay where they are (BlobRef
// with Checked::no, so the bundle writer hashes them while copying). An index is
// narrowed to `filter` (a new index is written into `store` when children are dropped).
ResolvedImage load_layout_image(const std::filesystem::path& dir, std::string_view ref, const PlatformFilter& filter,
                                BlobStore& store, core::LogSink& log);

} // namespace ferry::oci

// Media types of the OCI image spec v1.1, Docker schema 2 and Helm charts.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string_view>

namespace ferry::oci::media_type {

inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view oci_layer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view oci_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view oci_empty = "application/vnd.oci.empty.v1+json";

inline constexpr std::string_view docker_manifest_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_manifest_v1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view docker_manifest_v1_signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view docker_layer_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view docker_foreign_layer_gzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

inline constexpr std::string_view helm_config = "application/vnd.cncf.helm.config.v1+json";
inline constexpr std::string_view helm_chart = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
inline constexpr std::string_view helm_provenance = "application/vnd.cncf.helm.chart.provenance.v1.prov";

// ferry's own artifacts (DESIGN §2: files are OCI artifacts in the bundle's layout).
inline constexpr std::string_view ferry_file_artifact = "application/vnd.ferry.file.v1";
inline constexpr std::string_view ferry_file = "application/octet-stream";

// Both index kinds (OCI index, Docker manifest list).
bool is_index(std::string_view media_type);
// Both image manifest kinds (OCI manifest, Docker schema 2).
bool is_manifest(std::string_view media_type);
// Blob media types whose bytes are already compressed (gzip, zstd): zstd is run at its
// fastest setting over these in the bundle.
bool is_compressed(std::string_view media_type);

} // namespace ferry::oci::media_type

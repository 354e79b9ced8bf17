// Classifying media types: indexes, image manifests, already-compressed blobs.
// SPDX-License-Identifier: Apache-2.0
#include "oci/media_types.hpp"

namespace ferry::oci::media_type {

namespace {

// RFC 6838 media types may carry parameters ("…+json; charset=utf-8" in some registries'
// Content-Type headers); the type proper is what comes before the first ';', trimmed.
std::string_view essence(std::string_view media_type) {
  if (auto semicolon = media_type.find(';'); semicolon != std::string_view::npos) {
    media_type = media_type.substr(0, semicolon);
  }
  while (!media_type.empty() && (media_type.back() == ' ' || media_type.back() == '\t')) media_type.remove_suffix(1);
  while (!media_type.empty() && (media_type.front() == ' ' || media_type.front() == '\t')) media_type.remove_prefix(1);
  return media_type;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

} // namespace

bool is_index(std::string_view media_type) {
  const std::string_view type = essence(media_type);
  return type == oci_index || type == docker_manifest_list;
}

bool is_manifest(std::string_view media_type) {
  const std::string_view type = essence(media_type);
  return type == oci_manifest || type == docker_manifest;
}

bool is_compressed(std::string_view media_type) {
  const std::string_view type = essence(media_type);
  // OCI writes the compression as a structured-syntax suffix ("tar+gzip", "tar+zstd",
  // also for non-distributable layers and Helm chart content); Docker schema 2 appends
  // it with a dot ("rootfs.diff.tar.gzip"; containerd's "rootfs.diff.tar.zstd").
  for (std::string_view suffix : {"+gzip", "+zstd", ".gzip", ".zstd"}) {
    if (ends_with(type, suffix)) return true;
  }
  return false;
}

} // namespace ferry::oci::media_type

// Image manifests and indexes: parsing what others wrote, serialising what ferry writes.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "oci/descriptor.hpp"

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry::oci {

// An image manifest (OCI or Docker schema 2) or an artifact manifest.
struct ImageManifest {
  std::string media_type;
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
};

// An OCI image index or a Docker manifest list.
struct ImageIndex {
  std::string media_type;
  std::string artifact_type;
  std::vector<Descriptor> manifests;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
};

using AnyManifest = std::variant<ImageManifest, ImageIndex>;

// Parses manifest or index JSON. The kind is taken from the document's mediaType, else
// from `declared_media_type` (the descriptor that pointed here), else from its shape
// ("manifests" -> index, "config" -> manifest). Throws IntegrityError naming `what`
// (e.g. "manifest sha256:… of oci:./layout:app") for malformed JSON, missing or
// mistyped fields, digests that are not sha256, and for Docker schema 1 (with a hint to
// convert the image: `skopeo copy --format v2s2`).
AnyManifest parse_manifest(std::string_view bytes, std::string_view declared_media_type, std::string_view what);

// Compact JSON with keys in a fixed (sorted) order and no insignificant white space:
// byte-stable output for manifests ferry synthesises. schemaVersion 2 is always written;
// empty optional fields are left out.
std::string to_json(const ImageManifest& manifest);
std::string to_json(const ImageIndex& index);

// Descriptor parsing/serialising for callers that build JSON documents (the OCI layout's
// index.json): same rules as above.
std::string to_json(const Descriptor& descriptor);

} // namespace ferry::oci

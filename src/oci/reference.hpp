// Image references (docker/distribution grammar) with Docker Hub normalisation.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/digest.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace ferry::oci {

// A normalised reference: registry host, repository path, tag and/or digest.
//   "nginx"                   -> docker.io/library/nginx:latest
//   "bitnami/redis:7"         -> docker.io/bitnami/redis:7
//   "index.docker.io/nginx"   -> docker.io/library/nginx:latest
//   "localhost:5000/a/b@sha256:…" keeps the digest and has no tag
//   "quay.io/minio/minio:RELEASE.2025-05-30T11-03-39Z@sha256:…" keeps both
// The first path component is a registry host when it contains '.' or ':' or is
// "localhost". Repository components are lower-case [a-z0-9] joined by '.', '_', '__' or
// '-'+; tags match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
class Reference {
public:
  // Throws UsageError naming `text` and saying which part is wrong (for instance an
  // upper-case repository, an empty tag, a malformed digest).
  static Reference parse(std::string_view text);

  const std::string& registry() const noexcept { return m_registry; }
  const std::string& repository() const noexcept { return m_repository; }
  // The tag; "latest" when the text had neither tag nor digest; nullopt with a digest only.
  const std::optional<std::string>& tag() const noexcept { return m_tag; }
  const std::optional<core::Digest>& digest() const noexcept { return m_digest; }

  // "docker.io/library/nginx:latest", "host/repo:tag@sha256:…", "host/repo@sha256:…".
  std::string str() const;
  // "docker.io/library/nginx" (no tag, no digest).
  std::string name() const { return m_registry + "/" + m_repository; }

  Reference with_digest(const core::Digest& digest) const;

  friend bool operator==(const Reference&, const Reference&) = default;

private:
  std::string m_registry;
  std::string m_repository;
  std::optional<std::string> m_tag;
  std::optional<core::Digest> m_digest;
};

// Where an image comes from, in skopeo's transport syntax (DESIGN §3):
//   "docker://REF" or a bare "REF"       -> registry
//   "oci:DIR[:REF]"                      -> OCI image layout directory, REF = ref.name
//   "docker-archive:FILE[:REF]"          -> `docker save` / `podman save` tar (REF = a RepoTag)
struct ImageSource {
  enum class Kind { registry, oci_layout, docker_archive };
  Kind kind = Kind::registry;
  std::string text;     // as written, for messages and ferry.json
  std::string location; // registry reference text, or DIR / FILE as written
  std::string ref;      // oci / docker-archive: the REF part, empty when none

  // Throws UsageError naming `text` when a transport is unknown ("dir:", "containers-storage:"
  // are not supported) or its location is empty.
  static ImageSource parse(std::string_view text);
};

} // namespace ferry::oci

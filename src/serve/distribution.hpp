// The pull side of the OCI distribution API (distribution-spec v1.1) over fixed content:
// /v2/, manifests by tag and digest, blobs (with Range), tag lists and the catalog.
// Everything else is refused: the content is read-only.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/digest.hpp"
#include "core/io.hpp"
#include "serve/http_server.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace ferry::serve {

struct BlobInfo {
  std::uint64_t size = 0;
  std::string media_type;
};

// What is served: repositories with their tags, every blob (manifests included), and the
// bytes of every manifest and index (small; kept in memory).
struct Catalog {
  std::map<std::string, std::map<std::string, core::Digest>> repositories; // name -> tag -> manifest digest
  std::map<core::Digest, BlobInfo> blobs;
  std::map<core::Digest, std::string> manifests;
};

// The bytes [offset, offset + length) of blob `digest` (which the catalog lists). When
// the range is the whole blob the source checks the digest as the bytes go out and
// fails before the last of them when it does not match.
using BlobOpener =
    std::function<std::unique_ptr<core::Source>(const core::Digest& digest, std::uint64_t offset, std::uint64_t length)>;

// Answers requests from the catalog. Any blob or manifest of the catalog can be fetched
// through any of its repositories (one signed bundle is one trust domain); unknown
// repositories, tags and digests are 404 with the spec's error codes; methods other than
// GET and HEAD are 405 UNSUPPORTED.
class Distribution {
public:
  Distribution(Catalog catalog, BlobOpener opener);
  Response handle(const Request& request) const;
  const Catalog& catalog() const noexcept { return m_catalog; }

private:
  Response manifest(const std::string& name, const std::string& reference) const;
  Response blob(const Request& request, const std::string& reference) const;
  Response tags(const Request& request, const std::string& name) const;
  Response repositories(const Request& request) const;

  Catalog m_catalog;
  BlobOpener m_opener;
};

// What a Range header asks of a body of `size` bytes. whole: no header, another unit,
// several ranges or a malformed one (the whole body is sent, as RFC 9110 allows); part:
// one satisfiable range, clipped to the body; unsatisfiable: it starts past the end.
struct RangeRequest {
  enum class Kind { whole, part, unsatisfiable };
  Kind kind = Kind::whole;
  std::uint64_t first = 0;
  std::uint64_t length = 0;
};
RangeRequest parse_range(const std::string* header, std::uint64_t size);

} // namespace ferry::serve

// Image reference parsing (the docker/distribution reference grammar) and skopeo transports.
// SPDX-License-Identifier: Apache-2.0
#include "oci/reference.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <array>

namespace ferry::oci {

namespace {

// distribution/reference: NameTotalLengthMax (registry + '/' + repository).
constexpr std::size_t k_max_name_length = 255;
// distribution/reference: tag := [\w][\w.-]{0,127}
constexpr std::size_t k_max_tag_length = 128;
constexpr std::size_t k_max_shown = 300;

const char* const k_reference_hint =
    "write references as [HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST], for example quay.io/minio/minio:RELEASE.2025-05-30T11-03-39Z";

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return is_lower_alnum(c) || is_upper(c) || c == '_'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::string shown(std::string_view text) {
  if (text.size() > k_max_shown) return std::string(text.substr(0, k_max_shown)) + "…";
  return std::string(text);
}

[[noreturn]] void fail(std::string_view text, const std::string& reason) {
  throw core::UsageError("invalid image reference '" + shown(text) + "': " + reason, k_reference_hint);
}

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+
bool is_path_component(std::string_view part) {
  if (part.empty() || !is_lower_alnum(part.front()) || !is_lower_alnum(part.back())) return false;
  std::size_t i = 0;
  while (i < part.size()) {
    if (is_lower_alnum(part[i])) {
      ++i;
      continue;
    }
    // A run of separators between two alpha-numeric runs.
    const std::size_t start = i;
    while (i < part.size() && !is_lower_alnum(part[i])) ++i;
    const std::string_view sep = part.substr(start, i - start);
    const bool dashes = std::all_of(sep.begin(), sep.end(), [](char c) { return c == '-'; });
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
  }
  return true;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool is_domain_component(std::string_view part) {
  if (part.empty() || part.front() == '-' || part.back() == '-') return false;
  return std::all_of(part.begin(), part.end(), [](char c) { return is_lower_alnum(c) || is_upper(c) || c == '-'; });
}

// domain := host [':' port], host := domain-name | IPv4 | '[' IPv6 ']'
void check_domain(std::string_view text, std::string_view domain) {
  std::string_view host = domain;
  std::string_view port;
  bool has_port = false;
  if (!domain.empty() && domain.front() == '[') {
    const std::size_t close = domain.find(']');
    if (close == std::string_view::npos) fail(text, "registry host '" + std::string(domain) + "' has no closing ']'");
    host = domain.substr(0, close + 1);
    const std::string_view inside = domain.substr(1, close - 1);
    const bool ipv6 = inside.find(':') != std::string_view::npos &&
                      std::all_of(inside.begin(), inside.end(), [](char c) { return is_hex(c) || c == ':' || c == '.'; });
    if (!ipv6) fail(text, "registry host '" + std::string(host) + "' is not an IPv6 address");
    const std::string_view rest = domain.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') fail(text, "registry host '" + std::string(domain) + "' has text after ']'");
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    if (const std::size_t colon = domain.find(':'); colon != std::string_view::npos) {
      host = domain.substr(0, colon);
      port = domain.substr(colon + 1);
      has_port = true;
    }
    std::size_t start = 0;
    while (true) {
      const std::size_t dot = host.find('.', start);
      const std::string_view part = host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (!is_domain_component(part)) {
        fail(text, "registry host '" + std::string(host) +
                       "' is not a host name (letters, digits and '-' in dot-separated labels)");
      }
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  if (has_port) {
    if (port.empty()) fail(text, "registry port is empty");
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), is_digit) || std::stoul(std::string(port)) > 65535) {
      fail(text, "registry port '" + std::string(port) + "' is not a number from 0 to 65535");
    }
  }
}

void check_path(std::string_view text, std::string_view path) {
  if (path.empty()) fail(text, "repository path is empty");
  if (std::any_of(path.begin(), path.end(), is_upper)) fail(text, "repository path must be lower-case");
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = path.find('/', start);
    const std::string_view part = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty()) fail(text, "repository path has an empty component");
    if (!is_path_component(part)) {
      fail(text, "repository path component '" + std::string(part) +
                     "' is invalid (lower-case letters and digits, joined by '.', '_', '__' or '-')");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

void check_tag(std::string_view text, std::string_view tag) {
  if (tag.empty()) fail(text, "tag is empty");
  if (tag.size() > k_max_tag_length) {
    fail(text, "tag is " + std::to_string(tag.size()) + " characters long, at most " +
                   std::to_string(k_max_tag_length) + " allowed");
  }
  const bool ok = is_word(tag.front()) && std::all_of(tag.begin(), tag.end(), [](char c) {
                    return is_word(c) || c == '.' || c == '-';
                  });
  if (!ok) {
    fail(text, "tag '" + shown(tag) + "' is invalid (letters, digits, '_', '.' and '-', not starting with '.' or '-')");
  }
}

core::Digest parse_digest(std::string_view text, std::string_view digest) {
  if (digest.empty()) fail(text, "digest is empty");
  const std::size_t colon = digest.find(':');
  if (colon == std::string_view::npos) fail(text, "digest '" + shown(digest) + "' has no algorithm (expected sha256:…)");
  if (digest.substr(0, colon) != "sha256") {
    fail(text, "digest algorithm '" + shown(digest.substr(0, colon)) + "' is not supported; only sha256 is supported");
  }
  auto parsed = core::Digest::try_parse(digest);
  if (!parsed) fail(text, "digest '" + shown(digest) + "' is not sha256: followed by 64 lower-case hex digits");
  return *parsed;
}

} // namespace

Reference Reference::parse(std::string_view text) {
  if (text.empty()) fail(text, "reference is empty");
  if (text.find("://") != std::string_view::npos) {
    fail(text, "a reference has no URL scheme; write it without the '" +
                   std::string(text.substr(0, text.find("://") + 3)) + "' prefix");
  }
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
      fail(text, "reference contains white space or a non-ASCII character");
    }
  }

  Reference ref;
  std::string_view rest = text;
  if (const std::size_t at = rest.find('@'); at != std::string_view::npos) {
    ref.m_digest = parse_digest(text, rest.substr(at + 1));
    rest = rest.substr(0, at);
  }
  // The tag follows the last ':' when no '/' comes after it; a ':' before a '/' is a port.
  const std::size_t colon = rest.rfind(':');
  const std::size_t last_slash = rest.rfind('/');
  if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
    const std::string_view tag = rest.substr(colon + 1);
    check_tag(text, tag);
    ref.m_tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  const std::string_view name = rest;
  if (name.empty()) fail(text, "repository name is empty");
  // Long enough to hold any valid name, short enough to stop scanning a hostile one early.
  if (name.size() > 2 * k_max_name_length) {
    fail(text, "name is " + std::to_string(name.size()) + " characters long, at most " +
                   std::to_string(k_max_name_length) + " allowed");
  }

  // The first component is a registry host when it looks like one: it has a '.' or a
  // ':' or is "localhost" (distribution's splitDockerDomain). Otherwise Docker Hub.
  std::string_view domain;
  std::string_view path = name;
  if (const std::size_t slash = name.find('/'); slash != std::string_view::npos) {
    const std::string_view first = name.substr(0, slash);
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost" || first.front() == '[') {
      domain = first;
      path = name.substr(slash + 1);
      check_domain(text, domain);
    }
  }
  check_path(text, path);

  if (domain.empty() || domain == "index.docker.io") domain = "docker.io";
  ref.m_registry = std::string(domain);
  ref.m_repository = std::string(path);
  // Official Docker Hub images live under library/ (docker pull nginx == library/nginx).
  if (ref.m_registry == "docker.io" && ref.m_repository.find('/') == std::string::npos) {
    ref.m_repository = "library/" + ref.m_repository;
  }
  // distribution/reference counts NameTotalLengthMax over the normalised name.
  if (const std::size_t length = ref.name().size(); length > k_max_name_length) {
    fail(text, "name " + shown(ref.name()) + " is " + std::to_string(length) + " characters long, at most " +
                   std::to_string(k_max_name_length) + " allowed");
  }
  if (!ref.m_tag && !ref.m_digest) ref.m_tag = "latest";
  return ref;
}

std::string Reference::str() const {
  std::string text = name();
  if (m_tag) text += ":" + *m_tag;
  if (m_digest) text += "@" + m_digest->str();
  return text;
}

Reference Reference::with_digest(const core::Digest& digest) const {
  Reference copy = *this;
  copy.m_digest = digest;
  return copy;
}

namespace {

// skopeo's transports that ferry cannot read. A word from this list followed by ':' is
// a transport, never a Docker Hub repository with a tag.
constexpr std::array<std::string_view, 8> k_unsupported_transports = {
    "atomic", "containers-storage", "dir", "docker-daemon", "oci-archive", "ostree", "sif", "tarball",
};

[[noreturn]] void fail_source(std::string_view text, const std::string& reason) {
  throw core::UsageError("invalid image source '" + shown(text) + "': " + reason,
                         "use docker://REF (or a bare REF), oci:DIR[:REF] or docker-archive:FILE[:REF]");
}

// "registry:5000/app" is a host with a port, even when the host is called like a transport.
bool looks_like_port(std::string_view after_colon) {
  std::size_t i = 0;
  while (i < after_colon.size() && is_digit(after_colon[i])) ++i;
  return i > 0 && i < after_colon.size() && after_colon[i] == '/';
}

} // namespace

ImageSource ImageSource::parse(std::string_view text) {
  ImageSource source;
  source.text = std::string(text);
  if (text.empty()) fail_source(text, "it is empty");

  constexpr std::string_view docker_prefix = "docker://";
  if (text.substr(0, docker_prefix.size()) == docker_prefix) {
    source.kind = Kind::registry;
    source.location = std::string(text.substr(docker_prefix.size()));
    if (source.location.empty()) fail_source(text, "the reference after docker:// is empty");
    Reference::parse(source.location);
    return source;
  }

  const std::size_t colon = text.find(':');
  const std::string_view word = colon == std::string_view::npos ? std::string_view() : text.substr(0, colon);
  const std::string_view after = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  const bool is_transport_word = word == "oci" || word == "docker-archive" ||
                                 std::find(k_unsupported_transports.begin(), k_unsupported_transports.end(), word) !=
                                     k_unsupported_transports.end();
  if (is_transport_word && !looks_like_port(after)) {
    if (word == "oci" && after.substr(0, 2) == "//") {
      fail_source(text, "oci:// is Helm's syntax for charts in a registry; write an image in a registry as docker://" +
                            shown(after.substr(2)) + " or as the bare reference");
    }
    if (word != "oci" && word != "docker-archive") {
      throw core::UsageError("image source '" + shown(text) + "': transport '" + std::string(word) +
                                 "' is not supported; use oci:, docker-archive: or docker://",
                             "copy the image into an OCI layout first: skopeo copy " + std::string(word) +
                                 ":… oci:DIR:REF");
    }
    // skopeo splits DIR / FILE from REF at the first ':' after the transport.
    source.kind = word == "oci" ? Kind::oci_layout : Kind::docker_archive;
    const std::size_t split = after.find(':');
    source.location = std::string(after.substr(0, split));
    if (split != std::string_view::npos) source.ref = std::string(after.substr(split + 1));
    if (source.location.empty()) {
      fail_source(text, word == "oci" ? "the layout directory after oci: is empty"
                                      : "the archive file after docker-archive: is empty");
    }
    return source;
  }

  if (const std::size_t scheme = text.find("://"); scheme != std::string_view::npos) {
    throw core::UsageError("image source '" + shown(text) + "': transport '" + std::string(text.substr(0, scheme)) +
                           "' is not supported; use oci:, docker-archive: or docker://");
  }
  source.kind = Kind::registry;
  source.location = std::string(text);
  Reference::parse(source.location);
  return source;
}

} // namespace ferry::oci

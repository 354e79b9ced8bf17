// Platform strings, containerd-style normalisation and matching.
// SPDX-License-Identifier: Apache-2.0
#include "oci/platform.hpp"

#include "core/error.hpp"

#include <algorithm>

namespace ferry::oci {

namespace {

// containerd (platforms.Parse) allows [A-Za-z0-9_-] in each part.
bool is_part(std::string_view part) {
  if (part.empty()) return false;
  return std::all_of(part.begin(), part.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string lower(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

bool is_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "8" -> "v8"; "v8.0" -> "v8" (containerd writes both forms of the same variant).
std::string canonical_variant(std::string variant) {
  if (variant.empty()) return variant;
  if (variant.front() != 'v' && (is_digits(variant) || variant.find('.') != std::string::npos)) variant = "v" + variant;
  if (variant.size() > 2 && variant.substr(variant.size() - 2) == ".0") variant.resize(variant.size() - 2);
  return variant;
}

} // namespace

Platform Platform::parse(std::string_view text) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = text.find('/', start);
    parts.push_back(text.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  const bool shape_ok = (parts.size() == 2 || parts.size() == 3) && std::all_of(parts.begin(), parts.end(), is_part);
  if (!shape_ok) {
    std::string shown(text.substr(0, 100));
    throw core::UsageError("platform '" + shown + "' is not os/architecture[/variant]",
                           "write platforms like linux/amd64 or linux/arm64/v8");
  }
  Platform p;
  p.os = std::string(parts[0]);
  p.architecture = std::string(parts[1]);
  if (parts.size() == 3) p.variant = std::string(parts[2]);
  return p;
}

std::string Platform::str() const {
  std::string text = os + "/" + architecture;
  if (!variant.empty()) text += "/" + variant;
  return text;
}

// The rules of containerd's platforms.Normalize (normalizeArch), except that arm64's
// default variant is written out as "v8" (as image indexes usually do) instead of dropped.
Platform Platform::normalized() const {
  Platform p;
  p.os = lower(os);
  if (p.os == "macos") p.os = "darwin";
  p.os_version = os_version;
  p.architecture = lower(architecture);
  p.variant = canonical_variant(lower(variant));
  const std::string& arch = p.architecture;
  if (arch == "i386") {
    p.architecture = "386";
    p.variant.clear();
  } else if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    p.architecture = "amd64";
    if (p.variant == "v1") p.variant.clear();
  } else if (arch == "aarch64" || arch == "arm64") {
    p.architecture = "arm64";
    if (p.variant.empty()) p.variant = "v8";
  } else if (arch == "armhf") {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (arch == "armel") {
    p.architecture = "arm";
    p.variant = "v6";
  } else if (arch == "arm") {
    if (p.variant.empty()) p.variant = "v7";
  }
  return p;
}

bool matches(const Platform& want, const Platform& have) {
  const Platform w = want.normalized();
  const Platform h = have.normalized();
  if (w.os != h.os || w.architecture != h.architecture) return false;
  // A wanted platform without a variant takes every variant of its architecture
  // ("linux/arm" keeps arm/v6 and arm/v7); one that names a variant, itself or through
  // an alias ("armhf" is arm/v7), takes only that one.
  const std::string arch = lower(want.architecture);
  const bool names_variant = !want.variant.empty() || arch == "armhf" || arch == "armel";
  return !names_variant || w.variant == h.variant;
}

bool PlatformFilter::accepts(const Platform& have) const {
  if (m_wanted.empty()) return true;
  return std::any_of(m_wanted.begin(), m_wanted.end(), [&](const Platform& want) { return matches(want, have); });
}

std::string PlatformFilter::str() const {
  if (m_wanted.empty()) return "all";
  std::string text;
  for (const Platform& p : m_wanted) {
    if (!text.empty()) text += ", ";
    text += p.str();
  }
  return text;
}

} // namespace ferry::oci

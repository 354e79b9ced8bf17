// Fuzz target: the values rewriter (values::rewrite: image detection and the overlay that
// points images at the internal registry), image detection alone, rendered-manifest
// image discovery and Helm's value coalescing. The first byte holds options:
//   bit 0: a bundle's image list is given (else every image-looking value is rewritten),
//   bit 1: pin digests, bit 2: a registry prefix,
//   bit 3: an explicit rule: the first line is its path, the second its `set` template;
// the rest is the values YAML.
// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"
#include "values/discover.hpp"
#include "values/rewrite.hpp"

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace ferry;

namespace {

const std::string k_what = "fuzz-values.yaml";

std::string_view take_line(std::string_view& rest) {
  const std::size_t newline = rest.find('\n');
  const std::string_view line = rest.substr(0, newline);
  rest = newline == std::string_view::npos ? std::string_view{} : rest.substr(newline + 1);
  return line;
}

// Whether `text` is UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
bool is_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    unsigned min = 0;
    unsigned cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      extra = 1, min = 0x80, cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2, min = 0x800, cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3, min = 0x10000, cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false; // cut off
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xc0u) != 0x80u) return false;
      cp = (cp << 6) | (d & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

// The overlay is ferry's own output, written for helm: it must be a YAML map, and the
// values with the overlay applied must read back.
void check_overlay(const std::string& values_yaml, const values::Result& result, const values::Options& options) {
  YAML::Node overlay;
  try {
    overlay = YAML::Load(result.overlay_yaml);
  } catch (const YAML::Exception&) {
    std::abort();
  }
  if (!overlay.IsMap()) std::abort();
  // Without rules (whose templates may use {value} and so change a value each time) a
  // second pass over the rewritten values finds nothing left to change. Values that are
  // not UTF-8 are left out: helm refuses them, and yaml-cpp writes the bytes of a quoted
  // key that are not UTF-8 as U+FFFD, so the overlay's key is not the values' key.
  if (result.changes.empty() || !options.rules.empty() || !is_utf8(values_yaml)) return;
  std::string merged;
  try {
    merged = values::coalesce(values_yaml, {result.overlay_yaml}, {"overlay"});
  } catch (const core::Error&) {
    return; // the values were no map: nothing to merge into (helm refuses them too)
  }
  const values::Result again = values::rewrite(merged, options, "rewritten values");
  if (!again.changes.empty()) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  values::Options options;
  options.target = {.host = "registry.internal:5000", .prefix = (flags & 4) != 0 ? "mirror/prod" : ""};
  if ((flags & 1) != 0) {
    options.images_given = true;
    options.images = {
        {"docker.io/bitnami/postgresql:15.4.0", "sha256:" + std::string(64, 'a')},
        {"docker.io/library/nginx:1.27", "sha256:" + std::string(64, 'b')},
        {"quay.io/minio/minio:RELEASE.2025-05-30T11-03-39Z", "sha256:" + std::string(64, 'c')},
        {"registry.k8s.io/ingress-nginx/controller:v1.10.0", "sha256:" + std::string(64, 'd')},
    };
  }
  options.pin_digests = (flags & 2) != 0;
  if ((flags & 8) != 0) {
    const std::string path(take_line(rest));
    const std::string set(take_line(rest));
    options.rules.push_back({path, set});
  }
  const std::string yaml(rest);

  try {
    const values::Result result = values::rewrite(yaml, options, k_what);
    check_overlay(yaml, result, options);
  } catch (const core::Error&) {
  }
  try {
    (void)values::detect_images(yaml, k_what);
  } catch (const core::Error&) {
  }
  try {
    values::Discovery discovery;
    values::discover_from_render(yaml, "app", k_what, discovery);
    discovery.drop_unconfirmed_guesses();
  } catch (const core::Error&) {
  }
  return 0;
}

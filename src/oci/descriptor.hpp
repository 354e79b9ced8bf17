// OCI content descriptors.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/digest.hpp"
#include "oci/platform.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ferry::oci {

struct Descriptor {
  std::string media_type;
  core::Digest digest;
  std::uint64_t size = 0;
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
  std::string artifact_type; // empty when absent
  std::vector<std::string> urls;
};

inline constexpr std::string_view k_annotation_ref_name = "org.opencontainers.image.ref.name";
inline constexpr std::string_view k_annotation_title = "org.opencontainers.image.title";

} // namespace ferry::oci

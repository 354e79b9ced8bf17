// The files an operator gives for one bundle: a one-file bundle, or any volumes of a
// split one, in any order.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "bundle/signing.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ferry::bundle {

struct GivenVolume {
  std::filesystem::path path;
  std::uint32_t volume = 0; // 0 for a one-file bundle
};

struct VolumeSet {
  BundleDescriptor descriptor;
  std::string descriptor_bytes; // the exact ferry.json every file carries
  std::string signature_text;   // and ferry.json.sig (empty when unsigned)
  SignatureCheck signature;     // of the first file (the others carry the same bytes)
  bool split = false;           // ferry.json has `volumes`
  std::uint32_t count = 1;      // volumes of the bundle (1: a one-file bundle)
  std::vector<GivenVolume> given;      // in volume order
  std::vector<std::uint32_t> missing;  // volumes not given, in order

  // "NAME.002.tar.zst" (beside the files given, when they are named NAME.NNN.tar.zst), else
  // "volume 002".
  std::string name_of(std::uint32_t volume) const;
  // The missing volumes' names, comma-separated.
  std::string missing_names() const;
  // "aistor 2025.05.30 (ferry.json sha256:…)".
  std::string bundle_text() const;
};

// Reads the head of every file (ferry.json, its signature checked as BundleReader::open
// does, and volume.json) and groups them. IntegrityError naming the file: a file whose
// ferry.json differs from the first one's ("foreign": both bundles are named, with the
// digests of their ferry.json), what open() throws. UsageError: no file, or the same
// volume given twice (both files named).
VolumeSet open_volume_set(const std::vector<std::filesystem::path>& files, const TrustedKeys& trusted,
                          SignaturePolicy policy);

// IntegrityError (exit 3) naming every missing volume file, for the commands that need the
// whole bundle (`doing`: "extract", "unpack").
void require_every_volume(const VolumeSet& set, const std::string& doing);

// The head of one given volume again, for reading its entries: `reader` opened on `in`.
// IntegrityError when its ferry.json is no longer the set's (the file changed meanwhile).
void reopen_volume(const VolumeSet& set, const GivenVolume& volume, BundleReader& reader, const TrustedKeys& trusted,
                   SignaturePolicy policy);

} // namespace ferry::bundle

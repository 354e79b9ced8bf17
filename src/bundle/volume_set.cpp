// Grouping the files given for a bundle: foreign, duplicate and missing volumes.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/volume_set.hpp"

#include "bundle/volumes.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"

#include <algorithm>
#include <map>

namespace ferry::bundle {

namespace fs = std::filesystem;

namespace {

std::string describe(const BundleDescriptor& d, const std::string& bytes) {
  return d.name + " " + d.version + " (ferry.json " + core::sha256_of(bytes).str() + ")";
}

} // namespace

std::string VolumeSet::name_of(std::uint32_t volume) const {
  return volume_display(given.empty() ? fs::path() : given.front().path, volume);
}

std::string VolumeSet::missing_names() const {
  std::string out;
  for (const std::uint32_t k : missing) out += (out.empty() ? "" : ", ") + name_of(k);
  return out;
}

std::string VolumeSet::bundle_text() const { return describe(descriptor, descriptor_bytes); }

VolumeSet open_volume_set(const std::vector<fs::path>& files, const TrustedKeys& trusted, SignaturePolicy policy) {
  if (files.empty()) throw core::UsageError("no bundle file given", "name the bundle, or its volumes, to read");
  VolumeSet set;
  std::map<std::uint32_t, fs::path> seen;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const fs::path& path = files[i];
    const std::string display = core::display(path);
    core::FileSource in(path);
    BundleReader reader(in, display);
    core::with_context("reading the head of " + display, [&] { reader.open(trusted, policy); });
    if (i == 0) {
      set.descriptor = reader.descriptor();
      set.descriptor_bytes = reader.descriptor_bytes();
      set.signature_text = reader.signature_text();
      set.signature = reader.signature();
      set.split = set.descriptor.volumes.has_value();
      set.count = set.split ? set.descriptor.volumes->count : 1;
    } else if (reader.descriptor_bytes() != set.descriptor_bytes) {
      throw core::IntegrityError(display + " is foreign: it belongs to bundle " +
                                     describe(reader.descriptor(), reader.descriptor_bytes()) + ", not to bundle " +
                                     set.bundle_text() + " of " + core::display(files.front()),
                                 "give the volumes of one bundle at a time; check each volume with `sha256sum -c` on "
                                 "the .sha256 file that came with it");
    }
    const std::uint32_t k = reader.volume() ? reader.volume()->volume : 0;
    const auto [it, inserted] = seen.emplace(k, path);
    if (!inserted) {
      throw core::UsageError(set.split ? display + " and " + core::display(it->second) + " are both volume " +
                                             std::to_string(k) + " of bundle " + set.bundle_text()
                                       : display + " and " + core::display(it->second) + " are the same bundle " +
                                             set.bundle_text(),
                             "give each volume once");
    }
  }
  for (const auto& [k, path] : seen) set.given.push_back(GivenVolume{path, k});
  for (std::uint32_t k = 0; k < set.count; ++k) {
    if (!seen.count(k)) set.missing.push_back(k);
  }
  return set;
}

void require_every_volume(const VolumeSet& set, const std::string& doing) {
  if (set.missing.empty()) return;
  throw core::IntegrityError(doing + " needs every volume of bundle " + set.bundle_text() + ": " +
                                 std::to_string(set.missing.size()) + " of " + std::to_string(set.count) +
                                 " not given: " + set.missing_names(),
                             "give all " + std::to_string(set.count) + " volumes (a shell glob such as NAME.*.tar.zst " +
                                 "will do); `ferry verify` and `ferry push --partial` take them one at a time");
}

void reopen_volume(const VolumeSet& set, const GivenVolume& volume, BundleReader& reader, const TrustedKeys& trusted,
                   SignaturePolicy policy) {
  reader.open(trusted, policy);
  const std::uint32_t k = reader.volume() ? reader.volume()->volume : 0;
  if (reader.descriptor_bytes() != set.descriptor_bytes || k != volume.volume) {
    throw core::IntegrityError("bundle " + core::display(volume.path) + " changed while it was read",
                               "make sure nothing writes to the volumes, and run again");
  }
}

} // namespace ferry::bundle

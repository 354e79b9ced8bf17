// Comparing two bundles or lock files (`ferry diff`).
// SPDX-License-Identifier: Apache-2.0
#include "diff.hpp"

#include "bundle/volume_set.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "oci/reference.hpp"

#include <algorithm>
#include <set>

namespace ferry {

namespace fs = std::filesystem;

namespace {

// The repository and tag of an image reference; the whole text when it does not parse
// (a lock written by hand), so that it still compares by key.
std::pair<std::string, std::string> image_group(const std::string& ref) {
  try {
    const oci::Reference r = oci::Reference::parse(ref);
    return {r.name(), r.tag().value_or("")};
  } catch (const core::Error&) {
    return {ref, ""};
  }
}

DiffItem image_item(const std::string& ref, const core::Digest& digest, std::optional<std::uint64_t> size) {
  auto [group, tag] = image_group(ref);
  return DiffItem{ref, std::move(group), std::move(tag), digest, size};
}

bool same(const DiffItem& a, const DiffItem& b) { return a.digest == b.digest && a.version == b.version; }

SectionDiff compare(const std::vector<DiffItem>& before, const std::vector<DiffItem>& after) {
  SectionDiff out;
  std::vector<bool> matched_before(before.size(), false);
  std::vector<const DiffItem*> added;
  for (const auto& item : after) {
    const auto it = std::find_if(before.begin(), before.end(), [&](const DiffItem& b) { return b.key == item.key; });
    if (it == before.end()) {
      added.push_back(&item);
      continue;
    }
    matched_before[static_cast<std::size_t>(it - before.begin())] = true;
    if (same(*it, item)) {
      ++out.unchanged;
    } else {
      out.changed.push_back({*it, item});
    }
  }
  std::vector<const DiffItem*> removed;
  for (std::size_t i = 0; i < before.size(); ++i) {
    if (!matched_before[i]) removed.push_back(&before[i]);
  }
  // A removed and an added item alone in the same group are one item that moved (a new tag).
  auto count = [](const std::vector<const DiffItem*>& items, const std::string& group) {
    return std::count_if(items.begin(), items.end(), [&](const DiffItem* x) { return x->group == group; });
  };
  std::set<const DiffItem*> paired;
  for (const DiffItem* a : added) {
    if (count(added, a->group) != 1 || count(removed, a->group) != 1) continue;
    const auto r = std::find_if(removed.begin(), removed.end(), [&](const DiffItem* x) { return x->group == a->group; });
    out.changed.push_back({**r, *a});
    paired.insert(a);
    paired.insert(*r);
  }
  for (const DiffItem* a : added) {
    if (!paired.count(a)) out.added.push_back(*a);
  }
  for (const DiffItem* r : removed) {
    if (!paired.count(r)) out.removed.push_back(*r);
  }
  return out;
}

bool is_zstd(const fs::path& file) {
  core::FileSource in(file);
  unsigned char magic[4] = {};
  std::size_t got = 0;
  while (got < sizeof magic) {
    const std::size_t n = in.read(reinterpret_cast<char*>(magic) + got, sizeof magic - got);
    if (n == 0) break;
    got += n;
  }
  return got == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd;
}

} // namespace

DiffSide diff_side(const bundle::BundleDescriptor& d) {
  DiffSide side;
  side.kind = "bundle";
  side.name = d.name;
  side.version = d.version;
  for (const auto& i : d.images) side.images.push_back(image_item(i.ref, i.digest, i.size));
  // A chart's archive as fetched (what a lock records too), so that bundles and locks compare.
  for (const auto& c : d.charts) {
    side.charts.push_back(DiffItem{c.name, c.name, c.version, c.upstream_digest.value_or(c.archive_digest), c.size});
  }
  for (const auto& f : d.files) side.files.push_back(DiffItem{f.path, f.path, "", f.content_digest, f.size});
  side.blobs.emplace();
  for (const auto& b : d.blobs) side.blobs->emplace(b.digest, b.size);
  side.bases = d.bases;
  return side;
}

DiffSide diff_side(const LockFile& lock) {
  DiffSide side;
  side.kind = "lock";
  side.name = lock.name;
  side.version = lock.version;
  for (const auto& i : lock.images) side.images.push_back(image_item(i.ref, i.digest, std::nullopt));
  for (const auto& c : lock.charts) {
    // A local chart's archive digest may be absent from an old lock: the version then decides.
    side.charts.push_back(DiffItem{c.name, c.name, c.version, c.digest.value_or(core::Digest()), std::nullopt});
  }
  for (const auto& f : lock.files) side.files.push_back(DiffItem{f.path, f.path, "", f.digest, std::nullopt});
  return side;
}

DiffResult diff(const DiffSide& before, const DiffSide& after) {
  DiffResult result;
  result.images = compare(before.images, after.images);
  result.charts = compare(before.charts, after.charts);
  result.files = compare(before.files, after.files);
  if (before.blobs && after.blobs) {
    BlobDiff blobs;
    for (const auto& [digest, size] : *after.blobs) {
      if (before.blobs->count(digest)) {
        ++blobs.shared;
        blobs.shared_bytes += size;
      } else {
        ++blobs.added;
        blobs.added_bytes += size;
      }
    }
    for (const auto& [digest, size] : *before.blobs) {
      if (after.blobs->count(digest)) continue;
      ++blobs.removed;
      blobs.removed_bytes += size;
    }
    result.blobs = blobs;
  }
  return result;
}

DiffSide read_diff_side(const fs::path& file, const TrustOptions& trust, core::LogSink& log) {
  return core::with_context("reading " + core::display(file), [&] {
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) {
      throw core::UsageError(core::display(file) + " is not a file", "give two bundles (.tar.zst) or two lock files");
    }
    if (is_zstd(file)) {
      bundle::TrustedKeys keys;
      const bundle::SignaturePolicy policy = load_trust(trust, keys, log, false);
      const bundle::VolumeSet set = bundle::open_volume_set({file}, keys, policy);
      return diff_side(set.descriptor);
    }
    const std::string text = core::read_file(file, 64u << 20);
    if (text.find("\"lockVersion\"") == std::string::npos) {
      throw core::UsageError(core::display(file) + " is neither a bundle nor a lock file",
                             "give two bundles (.tar.zst, or one volume of each) or two NAME.lock.json files");
    }
    return diff_side(parse_lock(text, core::display(file)));
  });
}

} // namespace ferry

// Volume sizes, names and labels, and the plan that places every blob before pack writes
// a byte (DESIGN §2: "the volume plan — sized with zstd's worst-case bound — is known, and
// signed, before the first byte is written").
// SPDX-License-Identifier: Apache-2.0
#include "bundle/volumes.hpp"

#include "core/error.hpp"
#include "oci/media_types.hpp"

#include <nlohmann/json.hpp>
#include <zstd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <limits>

namespace ferry::bundle {

namespace {

using nlohmann::json;

constexpr std::uint64_t k_tar_block = 512;
// ustar holds sizes below 8 GiB (11 octal digits) and names of up to 100 bytes (more with
// its 155-byte prefix, which libarchive may or may not use): beyond either, a pax
// extended header goes first.
constexpr std::uint64_t k_ustar_max_size = 077777777777ull;
constexpr std::size_t k_ustar_name = 100;
// zstd frame header (at most 18 bytes: magic, descriptor, window, dictionary id, content
// size) and content checksum (4), rounded up; ZSTD_compressBound covers the blocks.
constexpr std::uint64_t k_frame_overhead = 32;
// The end-of-archive blocks: two zero records, or one 10240-byte tar block should
// libarchive ever pad to its default blocking.
constexpr std::uint64_t k_end_of_archive_tar = 10240;
// volume.json with the largest numbers it can hold, for the plan.
constexpr std::uint64_t k_max_volume_label_text = 128;

std::uint64_t round_up(std::uint64_t n, std::uint64_t to) { return (n + to - 1) / to * to; }

std::uint64_t compressed_bound(std::uint64_t tar_bytes) {
  return static_cast<std::uint64_t>(ZSTD_compressBound(static_cast<std::size_t>(tar_bytes))) + k_frame_overhead;
}

std::uint64_t tar_bytes(std::string_view path, std::uint64_t size) {
  std::uint64_t bytes = k_tar_block + round_up(size, k_tar_block);
  if (size > k_ustar_max_size || path.size() >= k_ustar_name) {
    // The pax header's own ustar header, then records ("NN path=…\n", "NN size=…\n"),
    // padded to a record.
    bytes += k_tar_block + round_up(64 + path.size(), k_tar_block);
  }
  return bytes;
}

std::string three_digits(std::uint32_t n) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%03u", n);
  return buffer;
}

std::string human(std::uint64_t bytes) {
  char buffer[64];
  if (bytes >= (1ull << 30)) {
    std::snprintf(buffer, sizeof buffer, "%.2f GiB", static_cast<double>(bytes) / static_cast<double>(1ull << 30));
  } else if (bytes >= (1ull << 20)) {
    std::snprintf(buffer, sizeof buffer, "%.2f MiB", static_cast<double>(bytes) / static_cast<double>(1ull << 20));
  } else {
    std::snprintf(buffer, sizeof buffer, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  }
  return buffer;
}

// Blobs every volume carries: what any volume needs to finish a push (manifests and
// indexes), and the chart archives, so that `ferry values`, `check` and `upgrade` read
// their charts from whichever volume they are given.
bool in_every_volume(const BlobRecord& b) {
  return oci::media_type::is_manifest(b.media_type) || oci::media_type::is_index(b.media_type) ||
         b.media_type == oci::media_type::helm_chart;
}

// One pass of the plan with ferry.json taking at most `descriptor_budget` bytes. Returns
// nullopt when the fixed part leaves no room for a minimum piece (`minimum` then says
// what --split would be needed).
std::optional<VolumePlan> place(BundleDescriptor& d, std::uint64_t limit, std::uint64_t descriptor_budget,
                                std::uint64_t& minimum) {
  std::uint64_t fixed = entry_bound(k_descriptor_path, descriptor_budget) +
                        entry_bound(k_signature_path, k_max_signature_text) +
                        entry_bound(k_volume_path, k_max_volume_label_text) + end_of_archive_bound();
  for (const auto& e : d.layout) fixed += entry_bound(e.path, e.size);
  for (const auto& b : d.blobs) {
    if (!b.omitted && in_every_volume(b)) fixed += entry_bound(blob_entry_path(b.digest), b.size);
  }
  const std::uint64_t smallest_piece = entry_bound(piece_entry_path(core::Digest(), 0), k_min_piece_size);
  minimum = fixed + smallest_piece;
  if (limit < minimum) return std::nullopt;
  const std::uint64_t capacity = limit - fixed;

  std::vector<std::uint64_t> room; // free bytes per volume
  auto open_volume = [&] {
    room.push_back(capacity);
    return static_cast<std::uint32_t>(room.size() - 1);
  };
  for (BlobRecord& b : d.blobs) {
    b.volume.reset();
    b.all_volumes = false;
    b.pieces.clear();
    if (b.omitted) continue; // not in the stream: in no volume
    if (in_every_volume(b)) {
      b.all_volumes = true;
      continue;
    }
    const std::uint64_t bound = entry_bound(blob_entry_path(b.digest), b.size);
    if (bound <= capacity) {
      auto fits = std::find_if(room.begin(), room.end(), [&](std::uint64_t free) { return free >= bound; });
      const std::uint32_t k = fits != room.end() ? static_cast<std::uint32_t>(fits - room.begin()) : open_volume();
      room[k] -= bound;
      b.volume = k;
      continue;
    }
    // Too large for any volume: pieces, from the last volume on (only there can the
    // following pieces go in consecutive volumes).
    std::uint32_t k = room.empty() ? open_volume() : static_cast<std::uint32_t>(room.size() - 1);
    std::uint64_t left = b.size;
    while (left > 0) {
      const std::string path = piece_entry_path(b.digest, b.pieces.size());
      std::uint64_t size = std::min(left, largest_fitting(path, room[k]));
      if (size < left && size < k_min_piece_size) {
        if (!b.pieces.empty()) {
          // Cannot happen: a fresh volume holds at least a minimum piece.
          throw core::Error(core::ExitCode::failure, "volume plan: no room for a piece in a new volume");
        }
        k = open_volume(); // leave the sliver; start in a fresh volume
        continue;
      }
      room[k] -= entry_bound(path, size);
      b.pieces.push_back(PieceRecord{k, size, core::Digest()});
      left -= size;
      if (left > 0) k = open_volume();
    }
    if (b.pieces.size() == 1) {
      // It fitted after all (its last volume had room): a whole blob, not one piece.
      b.volume = b.pieces.front().volume;
      b.pieces.clear();
    }
  }
  if (room.empty()) open_volume(); // nothing but manifests: one volume
  if (room.size() > k_max_volumes) {
    throw core::UsageError("--split " + std::to_string(limit) + " would need " + std::to_string(room.size()) +
                               " volumes; at most " + std::to_string(k_max_volumes) + " are possible",
                           "give a larger --split size");
  }
  VolumePlan plan;
  plan.count = static_cast<std::uint32_t>(room.size());
  plan.fixed_bytes = fixed;
  plan.descriptor_budget = descriptor_budget;
  for (const std::uint64_t free : room) plan.worst_case.push_back(limit - free);
  d.volumes = VolumesRecord{plan.count, limit};
  return plan;
}

} // namespace

std::uint64_t parse_split_size(std::string_view text) {
  static const std::pair<std::string_view, std::uint64_t> k_presets[] = {
      {"fat32", (4ull << 30) - 1}, {"dvd", 4'700'000'000ull}, {"dvd-dl", 8'500'000'000ull},
      {"bd", 25'000'000'000ull},   {"bd-dl", 50'000'000'000ull},
  };
  for (const auto& [name, size] : k_presets) {
    if (text == name) return size;
  }
  const std::string shown(text.substr(0, 40));
  auto bad = [&]() -> core::UsageError {
    return core::UsageError("--split '" + shown + "' is not a size",
                            "give bytes with an optional K, M, G or T suffix (powers of 1024), e.g. 4G or 700M, or a "
                            "preset: fat32, dvd, dvd-dl, bd, bd-dl");
  };
  std::size_t i = 0;
  std::uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const std::uint64_t digit = static_cast<std::uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) throw bad();
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) throw bad();
  std::string suffix(text.substr(i));
  for (char& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (suffix.size() > 1 && (suffix.substr(1) == "B" || suffix.substr(1) == "IB")) suffix.resize(1);
  unsigned shift = 0;
  if (suffix == "K") {
    shift = 10;
  } else if (suffix == "M") {
    shift = 20;
  } else if (suffix == "G") {
    shift = 30;
  } else if (suffix == "T") {
    shift = 40;
  } else if (!suffix.empty() && suffix != "B") {
    throw bad();
  }
  if (value > (std::numeric_limits<std::uint64_t>::max() >> shift)) throw bad();
  value <<= shift;
  if (value == 0) throw core::UsageError("--split must be larger than 0", "give a size such as 4G, or a preset such as dvd");
  return value;
}

std::string blob_entry_path(const core::Digest& digest) { return "blobs/sha256/" + std::string(digest.hex()); }

std::string piece_entry_path(const core::Digest& blob, std::size_t index) {
  return "pieces/sha256/" + std::string(blob.hex()) + "/" + three_digits(static_cast<std::uint32_t>(index));
}

std::filesystem::path volume_path(const std::filesystem::path& output, std::uint32_t volume) {
  std::string name = output.filename().string();
  constexpr std::string_view suffix = ".tar.zst";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    name.resize(name.size() - suffix.size());
  }
  return output.parent_path() / (name + "." + three_digits(volume) + ".tar.zst");
}

std::string volume_display(const std::filesystem::path& given, std::uint32_t volume) {
  const std::string name = given.filename().string();
  constexpr std::string_view suffix = ".tar.zst";
  // NAME.NNN.tar.zst: the NNN is replaced.
  if (name.size() > suffix.size() + 4 && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const std::string stem = name.substr(0, name.size() - suffix.size());
    const std::size_t dot = stem.rfind('.');
    if (dot != std::string::npos && stem.size() - dot == 4 &&
        std::all_of(stem.begin() + static_cast<std::ptrdiff_t>(dot) + 1, stem.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
      return (given.parent_path() / (stem.substr(0, dot) + "." + three_digits(volume) + ".tar.zst")).string();
    }
  }
  return "volume " + three_digits(volume);
}

std::string to_json(const VolumeLabel& label) {
  const json j = {{"bundle", label.bundle.str()}, {"volume", label.volume}, {"count", label.count}};
  return j.dump() + "\n";
}

VolumeLabel parse_volume_label(std::string_view bytes) {
  json j;
  try {
    j = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    throw core::IntegrityError(std::string("volume.json is not valid JSON: ") + e.what());
  }
  auto fail = [](const std::string& what) -> core::IntegrityError { return core::IntegrityError("volume.json: " + what); };
  if (!j.is_object()) throw fail("is not a JSON object");
  auto number = [&](const char* key) -> std::uint32_t {
    const auto it = j.find(key);
    if (it == j.end()) throw fail(std::string("has no field '") + key + "'");
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() >= k_max_volumes + 1ull) {
      throw fail(std::string("field '") + key + "' is not a volume number");
    }
    return static_cast<std::uint32_t>(it->get<std::uint64_t>());
  };
  const auto bundle = j.find("bundle");
  if (bundle == j.end() || !bundle->is_string()) throw fail("has no string field 'bundle'");
  const auto digest = core::Digest::try_parse(bundle->get<std::string>());
  if (!digest) throw fail("field 'bundle' is not a sha256 digest");
  VolumeLabel label{*digest, number("volume"), number("count")};
  if (label.count == 0 || label.volume >= label.count) {
    throw fail("says volume " + std::to_string(label.volume) + " of " + std::to_string(label.count));
  }
  return label;
}

std::uint64_t entry_bound(std::string_view path, std::uint64_t size) { return compressed_bound(tar_bytes(path, size)); }

std::uint64_t end_of_archive_bound() { return compressed_bound(k_end_of_archive_tar); }

std::uint64_t largest_fitting(std::string_view path, std::uint64_t room) {
  if (entry_bound(path, 0) > room) return 0;
  std::uint64_t low = 0;   // fits
  std::uint64_t high = room; // the bound always exceeds the data size: room does not fit
  while (high - low > 1) {
    const std::uint64_t mid = low + (high - low) / 2;
    (entry_bound(path, mid) <= room ? low : high) = mid;
  }
  return low;
}

VolumePlan plan_volumes(BundleDescriptor& d, std::uint64_t limit) {
  d.volumes = VolumesRecord{1, limit};
  for (BlobRecord& b : d.blobs) {
    b.volume.reset();
    b.pieces.clear();
    b.all_volumes = !b.omitted && in_every_volume(b);
    if (!b.all_volumes && !b.omitted) b.volume = 0;
  }
  // A larger plan only makes ferry.json larger, so the budget grows until it holds; a
  // little slack saves rounds (a planned volume never takes more than its bound anyway).
  std::uint64_t budget = to_json(d).size();
  std::uint64_t minimum = 0;
  for (int round = 0; round < 32; ++round) {
    budget = std::max(budget, to_json(d).size());
    budget += budget / 256 + 64;
    if (budget > k_max_descriptor_size) break;
    const std::optional<VolumePlan> plan = place(d, limit, budget, minimum);
    if (!plan) break;
    if (to_json(d).size() <= budget) return *plan;
  }
  if (minimum <= limit) {
    // The plan's own ferry.json outgrew every room (too many pieces): ask for more.
    minimum = limit + limit / 2;
  }
  throw core::UsageError("--split " + std::to_string(limit) + " bytes is too small: every volume repeats ferry.json, " +
                             "its signature, the layout and all manifests (and chart archives), and needs room for " +
                             "blobs; the smallest possible volume here is " + std::to_string(minimum) + " bytes (" +
                             human(minimum) + ")",
                         "give --split " + std::to_string((minimum + (1ull << 20) - 1) >> 20) + "M or more");
}

std::vector<VolumeEntry> volume_entries(const BundleDescriptor& d, std::uint32_t k) {
  std::vector<VolumeEntry> out;
  for (const auto& e : d.layout) out.push_back(VolumeEntry{e.path, e.digest, e.size, {}, nullptr, 0, 0, false});
  for (const auto& b : d.blobs) {
    if (b.omitted) continue; // a differential bundle's: not in the stream
    if (!d.volumes || b.all_volumes || (b.volume && *b.volume == k)) {
      out.push_back(VolumeEntry{blob_entry_path(b.digest), b.digest, b.size, b.media_type, &b, 0, 0, false});
      continue;
    }
    std::uint64_t offset = 0;
    for (std::size_t i = 0; i < b.pieces.size(); ++i) {
      const PieceRecord& p = b.pieces[i];
      if (p.volume == k) {
        out.push_back(VolumeEntry{piece_entry_path(b.digest, i), p.digest, p.size, b.media_type, &b, i, offset, true});
      }
      offset += p.size;
    }
  }
  return out;
}

} // namespace ferry::bundle

// ferry.json (de)serialisation. Keys are sorted by nlohmann::json's std::map, so the
// bytes depend only on the content.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/descriptor.hpp"

#include "core/error.hpp"
#include "oci/media_types.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <set>

namespace ferry::bundle {

using nlohmann::json;

std::uint64_t BundleDescriptor::blob_bytes() const {
  std::uint64_t total = 0;
  for (const auto& b : blobs) {
    if (!b.omitted) total += b.size;
  }
  return total;
}

std::size_t BundleDescriptor::omitted_blobs() const {
  return static_cast<std::size_t>(std::count_if(blobs.begin(), blobs.end(), [](const BlobRecord& b) { return b.omitted.has_value(); }));
}

std::uint64_t BundleDescriptor::omitted_bytes() const {
  std::uint64_t total = 0;
  for (const auto& b : blobs) {
    if (b.omitted) total += b.size;
  }
  return total;
}

std::string base_text(const BaseRecord& base) {
  if (base.kind == "receipt") {
    return "receipt " + base.file + " of " + (base.registry.empty() ? std::string("an unnamed registry") : base.registry) +
           (base.created.empty() ? std::string() : " (" + base.created + ")");
  }
  return base.kind + " " + base.name + " " + base.version + " (" + base.file + ")";
}

std::uint64_t BundleDescriptor::unshared_bytes() const {
  std::uint64_t total = 0;
  for (const auto& i : images) total += i.size;
  for (const auto& c : charts) total += c.size;
  for (const auto& f : files) total += f.size;
  return total;
}

bool BlobRecord::in_volume(std::uint32_t k) const {
  if (omitted) return false;
  if (all_volumes) return true;
  if (volume) return *volume == k;
  if (!pieces.empty()) {
    for (const auto& p : pieces) {
      if (p.volume == k) return true;
    }
    return false;
  }
  return true; // a one-file bundle: its only volume holds everything
}

const BlobRecord* BundleDescriptor::find_blob(const core::Digest& digest) const {
  for (const auto& b : blobs) {
    if (b.digest == digest) return &b;
  }
  return nullptr;
}

std::string rfc3339_utc(std::int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

namespace {

std::string mode_text(unsigned mode) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "%04o", mode & 07777);
  return buffer;
}

json parse_embedded(const std::string& text) {
  return json::parse(text); // our own JSON from the manifest parser; never user bytes
}

} // namespace

std::string to_json(const BundleDescriptor& d) {
  json j;
  j["formatVersion"] = d.format_version;
  j["mediaType"] = k_descriptor_media_type;
  j["name"] = d.name;
  j["version"] = d.version;
  j["created"] = d.created;
  j["tool"] = {{"name", "ferry"}, {"version", d.tool_version}};
  if (d.signer) j["signer"] = {{"keyId", d.signer->key_id}, {"algorithm", d.signer->algorithm}};
  j["manifest"] = parse_embedded(d.manifest_json);
  j["releases"] = parse_embedded(d.releases_json);
  j["rules"] = parse_embedded(d.rules_json);
  if (!d.bases.empty()) {
    json bases = json::array();
    for (const auto& b : d.bases) {
      json o = {{"kind", b.kind}, {"file", b.file}, {"digest", b.digest.str()}};
      if (!b.name.empty()) o["name"] = b.name;
      if (!b.version.empty()) o["version"] = b.version;
      if (!b.registry.empty()) o["registry"] = b.registry;
      if (!b.created.empty()) o["created"] = b.created;
      if (!b.signer.empty()) o["signer"] = b.signer;
      bases.push_back(std::move(o));
    }
    j["bases"] = std::move(bases);
  }

  json images = json::array();
  for (const auto& i : d.images) {
    json o = {{"ref", i.ref},           {"source", i.source},       {"digest", i.digest.str()},
              {"mediaType", i.media_type}, {"platforms", i.platforms}, {"size", i.size}};
    if (i.source_digest) o["sourceDigest"] = i.source_digest->str();
    if (!i.found_by.empty()) {
      json found_by = json::array();
      for (const auto& f : i.found_by) {
        json entry = {{"chart", f.chart}, {"method", f.method}, {"where", f.where}};
        if (!f.release.empty()) entry["release"] = f.release;
        found_by.push_back(std::move(entry));
      }
      o["foundBy"] = std::move(found_by);
    }
    images.push_back(std::move(o));
  }
  j["images"] = std::move(images);

  json charts = json::array();
  for (const auto& c : d.charts) {
    json o = {{"name", c.name},
              {"version", c.version},
              {"source", c.source},
              {"ref", c.ref},
              {"digest", c.digest.str()},
              {"archiveDigest", c.archive_digest.str()},
              {"size", c.size},
              {"images", c.images}};
    if (!c.source_url.empty()) o["sourceUrl"] = c.source_url;
    if (c.upstream_digest) o["upstreamDigest"] = c.upstream_digest->str();
    if (!c.dependencies.empty()) {
      json dependencies = json::array();
      for (const auto& dep : c.dependencies) {
        dependencies.push_back(
            {{"name", dep.name}, {"version", dep.version}, {"source", dep.source}, {"digest", dep.digest.str()}});
      }
      o["dependencies"] = std::move(dependencies);
    }
    charts.push_back(std::move(o));
  }
  j["charts"] = std::move(charts);

  json files = json::array();
  for (const auto& f : d.files) {
    files.push_back({{"path", f.path},
                     {"source", f.source},
                     {"ref", f.ref},
                     {"digest", f.digest.str()},
                     {"contentDigest", f.content_digest.str()},
                     {"size", f.size},
                     {"mode", mode_text(f.mode)}});
  }
  j["files"] = std::move(files);

  json layout = json::array();
  for (const auto& e : d.layout) layout.push_back({{"path", e.path}, {"digest", e.digest.str()}, {"size", e.size}});
  j["layout"] = std::move(layout);

  json blobs = json::array();
  for (const auto& b : d.blobs) {
    json o = {{"digest", b.digest.str()}, {"size", b.size}, {"mediaType", b.media_type}};
    if (b.omitted) {
      o["omitted"] = {{"bases", b.omitted->bases}, {"repositories", b.omitted->repositories}};
    } else if (b.all_volumes) {
      o["volume"] = "all";
    } else if (b.volume) {
      o["volume"] = *b.volume;
    } else if (!b.pieces.empty()) {
      json pieces = json::array();
      for (const auto& p : b.pieces) pieces.push_back({{"volume", p.volume}, {"size", p.size}, {"digest", p.digest.str()}});
      o["pieces"] = std::move(pieces);
    }
    blobs.push_back(std::move(o));
  }
  j["blobs"] = std::move(blobs);
  if (d.volumes) j["volumes"] = {{"count", d.volumes->count}, {"limit", d.volumes->limit}};

  return j.dump() + "\n";
}

namespace {

// Typed field access that names the field in every error: ferry.json was signed, but
// it may come from a ferry of another version or from a hostile source.
class Reader {
public:
  Reader(const json& object, std::string where) : m_object(object), m_where(std::move(where)) {
    if (!m_object.is_object()) fail("is not a JSON object");
  }

  const json& field(const char* key, bool required = true) const {
    static const json k_null;
    auto it = m_object.find(key);
    if (it == m_object.end()) {
      if (required) fail(std::string("has no field '") + key + "'");
      return k_null;
    }
    return *it;
  }
  std::string string(const char* key) const {
    const json& v = field(key);
    if (!v.is_string()) fail_field(key, "is not a string");
    return v.get<std::string>();
  }
  std::optional<std::string> optional_string(const char* key) const {
    const json& v = field(key, false);
    if (v.is_null()) return std::nullopt;
    if (!v.is_string()) fail_field(key, "is not a string");
    return v.get<std::string>();
  }
  core::Digest digest(const char* key) const {
    const std::string text = string(key);
    auto d = core::Digest::try_parse(text);
    if (!d) fail_field(key, "is not a sha256 digest: '" + text.substr(0, 80) + "'");
    return *d;
  }
  std::uint64_t size(const char* key) const {
    const json& v = field(key);
    if (!v.is_number_unsigned()) {
      // A small non-negative number parses as unsigned; anything else (negative,
      // fractional, too large for 64 bits) does not.
      fail_field(key, "is not a non-negative whole number that fits in 64 bits");
    }
    return v.get<std::uint64_t>();
  }
  std::vector<std::string> strings(const char* key) const {
    const json& v = field(key);
    if (!v.is_array()) fail_field(key, "is not a list");
    std::vector<std::string> out;
    for (const auto& s : v) {
      if (!s.is_string()) fail_field(key, "holds something that is not a string");
      out.push_back(s.get<std::string>());
    }
    return out;
  }
  const json& array(const char* key) const {
    const json& v = field(key);
    if (!v.is_array()) fail_field(key, "is not a list");
    return v;
  }
  std::string item(const char* key, std::size_t i) const { return m_where + "." + key + "[" + std::to_string(i) + "]"; }
  std::string member(const char* key) const { return m_where + "." + key; }

  [[noreturn]] void fail(const std::string& what) const { throw IntegrityErrorAt(m_where + " " + what); }
  [[noreturn]] void fail_field(const char* key, const std::string& what) const {
    throw IntegrityErrorAt(m_where + "." + key + " " + what);
  }

private:
  static core::IntegrityError IntegrityErrorAt(const std::string& text) {
    return core::IntegrityError("ferry.json: " + text);
  }
  const json& m_object;
  std::string m_where;
};

bool is_layout_blob_path(const std::string& path) {
  return path == k_layout_marker_path || path == k_index_path;
}

// Where a blob of a split bundle is (`volume` or `pieces`), checked against the volume
// count; a one-file bundle has neither.
void read_placement(const Reader& r, const std::optional<VolumesRecord>& volumes, BlobRecord& rec,
                    std::vector<bool>& used) {
  const json& volume = r.field("volume", false);
  const json& pieces = r.field("pieces", false);
  if (!volumes) {
    if (!volume.is_null() || !pieces.is_null()) {
      r.fail(std::string("has a '") + (volume.is_null() ? "pieces" : "volume") +
             "' field, but the bundle is not split (no 'volumes')");
    }
    return;
  }
  const std::uint32_t count = volumes->count;
  auto check_volume = [&](const Reader& at, const char* key) {
    const std::uint64_t k = at.size(key);
    if (k >= count) at.fail_field(key, "is " + std::to_string(k) + ", but the bundle has " + std::to_string(count) + " volumes");
    used[k] = true;
    return static_cast<std::uint32_t>(k);
  };
  if (volume.is_null() == pieces.is_null()) {
    r.fail(volume.is_null() ? "has neither 'volume' nor 'pieces' in a split bundle" : "has both 'volume' and 'pieces'");
  }
  const bool manifest = oci::media_type::is_manifest(rec.media_type) || oci::media_type::is_index(rec.media_type);
  if (volume.is_string()) {
    if (volume.get<std::string>() != "all") r.fail_field("volume", "is neither a volume number nor \"all\"");
    rec.all_volumes = true;
    return;
  }
  if (manifest) {
    // Any volume must be able to finish a push: every manifest comes with each.
    r.fail_field(volume.is_null() ? "pieces" : "volume", "places manifest " + rec.digest.str() +
                                                             " in some volumes only; manifests are in \"all\"");
  }
  if (!volume.is_null()) {
    rec.volume = check_volume(r, "volume");
    return;
  }
  const json& list = r.array("pieces");
  if (list.size() < 2) r.fail_field("pieces", "has " + std::to_string(list.size()) + " pieces; a blob in pieces has at least 2");
  std::uint64_t total = 0;
  for (std::size_t k = 0; k < list.size(); ++k) {
    const Reader p(list[k], r.item("pieces", k));
    PieceRecord piece{check_volume(p, "volume"), p.size("size"), p.digest("digest")};
    if (piece.size == 0) p.fail_field("size", "is 0");
    if (k > 0 && piece.volume != rec.pieces.back().volume + 1) {
      p.fail_field("volume", "is " + std::to_string(piece.volume) + ", but the piece before is in volume " +
                                 std::to_string(rec.pieces.back().volume) + " (pieces go in consecutive volumes)");
    }
    if (piece.size > rec.size - std::min(total, rec.size)) {
      r.fail_field("pieces", "add up to more than the blob's " + std::to_string(rec.size) + " bytes");
    }
    total += piece.size;
    rec.pieces.push_back(std::move(piece));
  }
  if (total != rec.size) {
    r.fail_field("pieces", "add up to " + std::to_string(total) + " bytes, but the blob is " + std::to_string(rec.size));
  }
}

// An omitted blob (differential bundles): no placement, bases that exist, and never
// something push or `ferry values` reads from the bundle itself.
void read_omitted(const Reader& r, const BundleDescriptor& d, BlobRecord& rec) {
  if (!r.field("volume", false).is_null() || !r.field("pieces", false).is_null()) {
    r.fail("is omitted but placed in a volume");
  }
  const Reader o(r.field("omitted"), r.member("omitted"));
  OmittedRecord omitted;
  const json& bases = o.array("bases");
  if (bases.empty()) o.fail_field("bases", "is empty; an omitted blob names the base that holds it");
  for (const auto& b : bases) {
    if (!b.is_number_unsigned() || b.get<std::uint64_t>() >= d.bases.size()) {
      o.fail_field("bases", "holds " + b.dump().substr(0, 40) + ", but ferry.json lists " + std::to_string(d.bases.size()) +
                                " bases");
    }
    omitted.bases.push_back(static_cast<std::uint32_t>(b.get<std::uint64_t>()));
  }
  omitted.repositories = o.strings("repositories");
  const bool manifest = oci::media_type::is_manifest(rec.media_type) || oci::media_type::is_index(rec.media_type);
  if (manifest || rec.media_type == oci::media_type::helm_chart || rec.media_type == oci::media_type::helm_config) {
    r.fail("omits " + rec.digest.str() + " of type " + rec.media_type.substr(0, 80) +
           "; manifests, indexes and chart blobs are always carried");
  }
  for (const auto& c : d.charts) {
    if (c.archive_digest == rec.digest) r.fail("omits the archive of chart " + c.ref + "; chart archives are always carried");
  }
  for (const auto& f : d.files) {
    if (f.content_digest == rec.digest) r.fail("omits the content of file " + f.path + "; files are always carried");
  }
  rec.omitted = std::move(omitted);
}

} // namespace

BundleDescriptor parse_descriptor(std::string_view bytes) {
  // ferry.json is parsed before its signature is known to be good (inspect without
  // --pubkey, and the message for a bad signature names the signer it claims), so its
  // shape is bounded here: nlohmann's parser keeps nesting on the heap, but dump()
  // recurses once per level (100 000 nested arrays overflow the stack), and every value
  // costs some 75 bytes in memory (64 MiB of "[]," would take 1.5 GiB). ferry writes a
  // dozen levels, and some 5 values per blob: a million is 200 000 blobs.
  constexpr int k_max_depth = 128;
  constexpr std::size_t k_max_values = 1'000'000;
  std::size_t values = 0;
  const auto bounded = [&](int depth, json::parse_event_t event, json&) {
    if (depth > k_max_depth) {
      throw core::IntegrityError("ferry.json nests JSON more than " + std::to_string(k_max_depth) + " levels deep");
    }
    if (event != json::parse_event_t::key && ++values > k_max_values) {
      throw core::IntegrityError("ferry.json holds more than " + std::to_string(k_max_values) + " JSON values");
    }
    return true;
  };
  json j;
  try {
    j = json::parse(bytes.begin(), bytes.end(), bounded);
  } catch (const json::exception& e) {
    throw core::IntegrityError(std::string("ferry.json is not valid JSON: ") + e.what());
  }
  const Reader top(j, "document");
  const json& version = top.field("formatVersion");
  if (!version.is_number_integer()) top.fail_field("formatVersion", "is not a whole number");
  if (version.get<long long>() != k_format_version) {
    throw core::IntegrityError("ferry.json has bundle format version " + version.dump() + "; this ferry reads version " +
                                   std::to_string(k_format_version),
                               "use a ferry release that supports format version " + version.dump());
  }
  BundleDescriptor d;
  if (top.string("mediaType") != k_descriptor_media_type) top.fail_field("mediaType", "is not " + std::string(k_descriptor_media_type));
  d.name = top.string("name");
  d.version = top.string("version");
  d.created = top.string("created");
  d.tool_version = Reader(top.field("tool"), "tool").string("version");
  if (const json& signer = top.field("signer", false); !signer.is_null()) {
    const Reader r(signer, "signer");
    d.signer = SignerRecord{r.string("keyId"), r.string("algorithm")};
  }
  d.manifest_json = top.field("manifest").dump();
  d.releases_json = top.array("releases").dump();
  d.rules_json = top.array("rules").dump();
  if (const json& bases = top.field("bases", false); !bases.is_null()) {
    const json& list = top.array("bases");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const Reader r(list[i], top.item("bases", i));
      BaseRecord base{r.string("kind"), r.string("file"), r.digest("digest")};
      if (base.kind != "receipt" && base.kind != "lock" && base.kind != "bundle") {
        r.fail_field("kind", "is '" + base.kind.substr(0, 40) + "', expected receipt, lock or bundle");
      }
      base.name = r.optional_string("name").value_or(std::string());
      base.version = r.optional_string("version").value_or(std::string());
      base.registry = r.optional_string("registry").value_or(std::string());
      base.created = r.optional_string("created").value_or(std::string());
      base.signer = r.optional_string("signer").value_or(std::string());
      d.bases.push_back(std::move(base));
    }
  }

  const json& images = top.array("images");
  for (std::size_t i = 0; i < images.size(); ++i) {
    const Reader r(images[i], top.item("images", i));
    ImageRecord rec{r.string("ref"), r.string("source"), r.digest("digest"), std::nullopt, r.string("mediaType"),
                    r.strings("platforms"), r.size("size")};
    if (!r.field("sourceDigest", false).is_null()) rec.source_digest = r.digest("sourceDigest");
    if (const json& found = r.field("foundBy", false); !found.is_null()) {
      const json& list = r.array("foundBy");
      for (std::size_t k = 0; k < list.size(); ++k) {
        const Reader f(list[k], r.item("foundBy", k));
        rec.found_by.push_back(DiscoveryRecord{f.string("chart"), f.string("method"), f.string("where"),
                                               f.optional_string("release").value_or(std::string())});
      }
    }
    d.images.push_back(std::move(rec));
  }
  const json& charts = top.array("charts");
  for (std::size_t i = 0; i < charts.size(); ++i) {
    const Reader r(charts[i], top.item("charts", i));
    ChartRecord rec;
    rec.name = r.string("name");
    rec.version = r.string("version");
    rec.source = r.string("source");
    rec.ref = r.string("ref");
    rec.digest = r.digest("digest");
    rec.archive_digest = r.digest("archiveDigest");
    rec.size = r.size("size");
    rec.images = r.strings("images");
    rec.source_url = r.optional_string("sourceUrl").value_or(std::string());
    if (!r.field("upstreamDigest", false).is_null()) rec.upstream_digest = r.digest("upstreamDigest");
    if (const json& deps = r.field("dependencies", false); !deps.is_null()) {
      const json& list = r.array("dependencies");
      for (std::size_t k = 0; k < list.size(); ++k) {
        const Reader dep(list[k], r.item("dependencies", k));
        rec.dependencies.push_back(
            ChartDependencyRecord{dep.string("name"), dep.string("version"), dep.string("source"), dep.digest("digest")});
      }
    }
    d.charts.push_back(std::move(rec));
  }
  const json& files = top.array("files");
  for (std::size_t i = 0; i < files.size(); ++i) {
    const Reader r(files[i], top.item("files", i));
    const std::string mode = r.string("mode");
    unsigned value = 0;
    if (mode.empty() || mode.size() > 5) r.fail_field("mode", "is not an octal file mode: '" + mode + "'");
    for (char c : mode) {
      if (c < '0' || c > '7') r.fail_field("mode", "is not an octal file mode: '" + mode + "'");
      value = value * 8 + static_cast<unsigned>(c - '0');
    }
    if (value > 07777) r.fail_field("mode", "is not an octal file mode: '" + mode + "'");
    d.files.push_back(FileRecord{r.string("path"), r.string("source"), r.string("ref"), r.digest("digest"),
                                 r.digest("contentDigest"), r.size("size"), value});
  }

  const json& layout = top.array("layout");
  std::set<std::string> layout_paths;
  for (std::size_t i = 0; i < layout.size(); ++i) {
    const Reader r(layout[i], top.item("layout", i));
    LayoutEntryRecord rec{r.string("path"), r.digest("digest"), r.size("size")};
    if (!is_layout_blob_path(rec.path)) r.fail_field("path", "is '" + rec.path.substr(0, 80) + "', expected oci-layout or index.json");
    if (!layout_paths.insert(rec.path).second) r.fail_field("path", "lists " + rec.path + " a second time");
    d.layout.push_back(std::move(rec));
  }
  for (auto required : {k_layout_marker_path, k_index_path}) {
    if (!layout_paths.count(std::string(required))) top.fail_field("layout", "has no entry for " + std::string(required));
  }

  if (const json& volumes = top.field("volumes", false); !volumes.is_null()) {
    const Reader r(volumes, "volumes");
    const std::uint64_t count = r.size("count");
    if (count == 0 || count > k_max_volumes) {
      r.fail_field("count", "is " + std::to_string(count) + ", expected 1 to " + std::to_string(k_max_volumes));
    }
    const std::uint64_t limit = r.size("limit");
    if (limit == 0) r.fail_field("limit", "is 0");
    d.volumes = VolumesRecord{static_cast<std::uint32_t>(count), limit};
  }

  const json& blobs = top.array("blobs");
  std::set<core::Digest> seen;
  std::vector<bool> used(d.volumes ? d.volumes->count : 0, false);
  for (std::size_t i = 0; i < blobs.size(); ++i) {
    const Reader r(blobs[i], top.item("blobs", i));
    BlobRecord rec{r.digest("digest"), r.size("size"), r.string("mediaType")};
    if (!seen.insert(rec.digest).second) r.fail_field("digest", "lists blob " + rec.digest.str() + " a second time");
    if (!r.field("omitted", false).is_null()) {
      read_omitted(r, d, rec);
    } else {
      read_placement(r, d.volumes, rec, used);
    }
    d.blobs.push_back(std::move(rec));
  }
  // pack opens a volume only for a blob (or piece) to put in it; with nothing but
  // what every volume carries, there is one.
  const bool placed = std::find(used.begin(), used.end(), true) != used.end();
  for (std::size_t k = 0; k < used.size(); ++k) {
    if (!used[k] && (placed || k > 0)) {
      top.fail_field("volumes", "counts volume " + std::to_string(k) + ", which no blob uses");
    }
  }
  return d;
}

} // namespace ferry::bundle

// Reading `docker save` / `podman save` / `skopeo copy … docker-archive:` tars in place.
// SPDX-License-Identifier: Apache-2.0
#include "oci/docker_archive.hpp"

#include "core/c_handle.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "oci/manifest.hpp"
#include "oci/media_types.hpp"
#include "oci/reference.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ferry::oci {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using ArchiveRead = std::unique_ptr<archive, core::CDeleter<archive_read_free>>;

// manifest.json, index.json and image configs are small; refuse to hold more in memory.
constexpr std::uint64_t k_small_blob_limit = 16u << 20;
constexpr std::uint64_t k_tar_block = 512;

// Docker's index.json names an image with containerd's annotation (the full reference)
// and sets ref.name to the tag alone, as image-spec annotations.md suggests.
constexpr std::string_view k_annotation_containerd_name = "io.containerd.image.name";

std::string library_error(archive* a, std::string_view fallback) {
  const char* text = archive_error_string(a);
  std::string message = text && *text ? text : std::string(fallback);
  // libarchive reports format errors as EILSEQ and misuse as EINVAL: no system errno.
  const int err = archive_errno(a);
  if (err > 0 && err != EILSEQ && err != EINVAL) {
    message += " (errno " + std::to_string(err) + ")";
  }
  return message;
}

// "a/./b//c" -> "a/b/c"; ".." climbs; nullopt when it climbs out of the archive root.
std::optional<std::string> normalize_path(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

enum class Compression { none, gzip, zstd, xz, bzip2 };

Compression sniff(std::string_view head) {
  const auto starts = [&head](std::string_view magic) { return head.substr(0, magic.size()) == magic; };
  if (starts("\x1f\x8b")) return Compression::gzip;
  if (starts("\x28\xb5\x2f\xfd")) return Compression::zstd;
  if (starts(std::string_view("\xfd" "7zXZ\x00", 6))) return Compression::xz;
  if (starts("BZh")) return Compression::bzip2;
  return Compression::none;
}

const char* compression_name(Compression c) {
  switch (c) {
  case Compression::gzip: return "gzip";
  case Compression::zstd: return "zstd";
  case Compression::xz: return "xz";
  case Compression::bzip2: return "bzip2";
  case Compression::none: break;
  }
  return "uncompressed";
}

std::string read_head(const fs::path& file, std::uint64_t offset, std::size_t size) {
  core::FileSource source(file);
  source.seek(offset);
  std::string head(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    const std::size_t n = source.read(head.data() + got, size - got);
    if (n == 0) break;
    got += n;
  }
  head.resize(got);
  return head;
}

// Where the data of each regular file of an uncompressed tar lies.
//
// libarchive parses the headers (ustar, pax extended headers, GNU long names: whatever
// docker, podman and skopeo write) but exposes no data offsets. Right after
// archive_read_next_header() returns, the tar reader has consumed exactly the header
// blocks, so archive_filter_bytes(a, 0) is where the data starts; we cross-check that
// against the next header's position (archive_read_header_position), which must follow
// the data rounded up to 512 bytes. Two independent views agreeing is our guard against
// reading a layer from the wrong place; beyond that, small JSON is parsed and digests
// are checked when bytes are read, and layers are hashed by the bundle writer.
// archive_read_open_filename skips data with lseek on regular files, so indexing a
// multi-gigabyte archive reads only its headers.
class TarIndex {
public:
  struct Entry {
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
  };

  TarIndex(fs::path file, std::string display) : m_file(std::move(file)), m_display(std::move(display)) {
    ArchiveRead a(archive_read_new());
    if (!a) throw std::bad_alloc();
    archive_read_support_format_tar(a.get());
    if (archive_read_open_filename(a.get(), m_file.c_str(), 64 * 1024) != ARCHIVE_OK) {
      throw corrupt(library_error(a.get(), "cannot open"));
    }
    const std::uint64_t file_size = core::FileSource(m_file).size();
    std::optional<std::pair<std::string, Entry>> pending; // the last regular file, until the next header
    const auto settle = [&](std::int64_t next_header) {
      if (!pending) return;
      const auto& [path, entry] = *pending;
      const std::uint64_t padded = (entry.size + k_tar_block - 1) / k_tar_block * k_tar_block;
      if (next_header < 0 || static_cast<std::uint64_t>(next_header) != entry.offset + padded) {
        throw corrupt("cannot locate the data of entry " + path);
      }
      if (entry.offset + entry.size > file_size) throw corrupt("entry " + path + " is truncated");
      m_files[path] = entry;
      pending.reset();
    };
    for (;;) {
      archive_entry* header = nullptr;
      const int r = archive_read_next_header(a.get(), &header);
      if (r == ARCHIVE_EOF) {
        settle(archive_read_header_position(a.get()));
        break;
      }
      if (r < ARCHIVE_WARN) throw corrupt(library_error(a.get(), "truncated or malformed tar data"));
      settle(archive_read_header_position(a.get()));
      const char* raw_path = archive_entry_pathname(header);
      const std::optional<std::string> path = normalize_path(raw_path ? raw_path : "");
      if (!path || path->empty()) continue; // "./" or an entry outside the root: never looked up
      if (const char* target = archive_entry_hardlink(header)) {
        if (const auto resolved = normalize_path(target)) m_links[*path] = *resolved;
        continue;
      }
      if (archive_entry_filetype(header) == AE_IFLNK) {
        const char* target = archive_entry_symlink(header);
        const std::string base = path->find('/') == std::string::npos ? "" : path->substr(0, path->rfind('/') + 1);
        const std::string joined = target && *target == '/' ? std::string(target) : base + (target ? target : "");
        if (const auto resolved = normalize_path(joined)) m_links[*path] = *resolved;
        continue;
      }
      if (archive_entry_filetype(header) != AE_IFREG) continue;
      if (archive_entry_sparse_count(header) > 0) {
        throw corrupt("entry " + *path + " is a sparse file, which docker never writes");
      }
      const std::int64_t offset = archive_filter_bytes(a.get(), 0);
      const std::int64_t size = archive_entry_size(header);
      if (offset < 0 || size < 0) throw corrupt("cannot locate the data of entry " + *path);
      pending.emplace(*path, Entry{static_cast<std::uint64_t>(offset), static_cast<std::uint64_t>(size)});
    }
  }

  // The regular file at `path`, following symlinks and hard links within the archive
  // (docker save links repeated layers to their first copy); nullptr when absent.
  const Entry* find(std::string_view path) const {
    std::optional<std::string> current = normalize_path(path);
    for (int hops = 0; current && hops < 16; ++hops) {
      if (const auto it = m_files.find(*current); it != m_files.end()) return &it->second;
      const auto link = m_links.find(*current);
      if (link == m_links.end()) return nullptr;
      current = link->second;
    }
    return nullptr;
  }

  const Entry& require(std::string_view path, std::string_view what) const {
    const Entry* entry = find(path);
    if (!entry) throw corrupt("entry " + std::string(path) + " (" + std::string(what) + ") is missing");
    return *entry;
  }

  // The whole entry, for JSON documents.
  std::string read_small(const Entry& entry, std::string_view path) const {
    if (entry.size > k_small_blob_limit) {
      throw corrupt("entry " + std::string(path) + " is " + std::to_string(entry.size) + " bytes, over the limit of " +
                    std::to_string(k_small_blob_limit) + " for manifests and configs");
    }
    core::FileSource source(m_file);
    source.seek(entry.offset);
    core::ExactSource exact(source, entry.size, "entry " + std::string(path) + " of " + m_display);
    return core::read_all(exact, static_cast<std::size_t>(entry.size), path);
  }

  core::IntegrityError corrupt(const std::string& detail) const {
    return core::IntegrityError("corrupt docker-save archive " + m_display + ": " + detail,
                                "check the file (`tar -tvf`) and save the image again");
  }

  const fs::path& file() const noexcept { return m_file; }
  const std::string& display() const noexcept { return m_display; }

private:
  fs::path m_file;        // the tar as read (the decompressed copy for compressed archives)
  std::string m_display;  // the archive as the operator named it
  std::map<std::string, Entry> m_files;
  std::map<std::string, std::string> m_links;
};

// A file in the work directory that holds the decompressed archive. It outlives this
// call on purpose: the BlobRefs of the image point into it.
fs::path decompress(const fs::path& file, Compression compression, const fs::path& work_dir, core::LogSink& log) {
  log.info("decompressing " + std::string(compression_name(compression)) + "-compressed docker-save archive " +
           core::display(file) + " into " + core::display(work_dir) + " to read it in place");
  std::string name = (work_dir / ".docker-archive-XXXXXX.tar").string();
  std::vector<char> buffer(name.begin(), name.end());
  buffer.push_back('\0');
  core::UniqueFd fd(::mkostemps(buffer.data(), 4, O_CLOEXEC));
  if (!fd) {
    const int err = errno;
    throw core::Error(core::ExitCode::failure,
                      "cannot create a temporary file in " + core::display(work_dir) + ": " + core::errno_text(err));
  }
  const fs::path target = buffer.data();
  struct Remove {
    const fs::path& path;
    bool armed = true;
    ~Remove() {
      if (armed) ::unlink(path.c_str());
    }
  } remove{target};
  core::FdSink sink(std::move(fd), core::display(target));

  ArchiveRead a(archive_read_new());
  if (!a) throw std::bad_alloc();
  // The four compressions sniff() knows, each built into libarchive (no
  // external program, and nothing the static build would have to link for nothing).
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_xz(a.get());
  archive_read_support_filter_bzip2(a.get());
  archive_read_support_format_raw(a.get());
  const auto failed = [&](std::string_view fallback) {
    return core::IntegrityError("corrupt docker-save archive " + core::display(file) + ": " +
                                    library_error(a.get(), fallback),
                                "check the file (`" + std::string(compression_name(compression)) +
                                    " -t`) and copy it again");
  };
  if (archive_read_open_filename(a.get(), file.c_str(), 1 << 20) != ARCHIVE_OK) throw failed("cannot open");
  archive_entry* header = nullptr;
  if (archive_read_next_header(a.get(), &header) != ARCHIVE_OK) throw failed("cannot decompress");
  std::vector<char> chunk(core::k_copy_buffer_size);
  for (;;) {
    const la_ssize_t n = archive_read_data(a.get(), chunk.data(), chunk.size());
    if (n == 0) break;
    if (n < 0) throw failed("truncated compressed data");
    sink.write(chunk.data(), static_cast<std::size_t>(n));
  }
  // No fsync: the copy is scratch for this run (a crash loses the run, not data), and
  // forcing gigabytes to disk would only slow pack down.
  remove.armed = false;
  return target;
}

std::optional<std::string> normalized_ref(std::string_view text) {
  try {
    return Reference::parse(text).str();
  } catch (const core::UsageError&) {
    return std::nullopt;
  }
}

// `nginx:1.27` names the same image as `docker.io/library/nginx:1.27`.
bool same_ref(std::string_view want, std::string_view have) {
  if (want == have) return true;
  const auto a = normalized_ref(want);
  const auto b = normalized_ref(have);
  return a && b && *a == *b;
}

// skopeo's docker-archive syntax also picks an image by position: "@0", "@1", ...
std::optional<std::size_t> source_index(std::string_view ref) {
  if (ref.size() < 2 || ref.front() != '@') return std::nullopt;
  std::size_t value = 0;
  for (const char c : ref.substr(1)) {
    if (c < '0' || c > '9' || value > 1'000'000) return std::nullopt;
    value = value * 10 + static_cast<std::size_t>(c - '0');
  }
  return value;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? "none" : out;
}

// Picks one of `count` images by `ref` given the names each carries; returns its
// position and the name that matched (the first name when `ref` is empty).
std::pair<std::size_t, std::string> choose(const std::vector<std::vector<std::string>>& names, std::string_view ref,
                                           const std::string& archive_display) {
  std::vector<std::string> all;
  for (const auto& list : names) all.insert(all.end(), list.begin(), list.end());
  if (ref.empty()) {
    if (names.size() == 1) return {0, names[0].empty() ? std::string() : names[0].front()};
    throw core::UsageError("docker-save archive " + archive_display + " holds " + std::to_string(names.size()) +
                               " images; name one (tags: " + joined(all) + ")",
                           "write the source as docker-archive:" + archive_display + ":NAME:TAG");
  }
  if (const auto position = source_index(ref)) {
    if (*position >= names.size()) {
      throw core::UsageError("docker-save archive " + archive_display + " has no image " + std::string(ref) +
                             " (it holds " + std::to_string(names.size()) + ")");
    }
    return {*position, names[*position].empty() ? std::string() : names[*position].front()};
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (const auto& name : names[i]) {
      if (same_ref(ref, name)) return {i, name};
    }
  }
  const std::string near = core::suggest(ref, all);
  throw core::UsageError("docker-save archive " + archive_display + " has no image " + std::string(ref) +
                             " (tags: " + joined(all) + ")",
                         near.empty() ? "write the source as docker-archive:" + archive_display + ":TAG with one of "
                                                "the tags above"
                                      : "did you mean docker-archive:" + archive_display + ":" + near + "?");
}

Descriptor descriptor_of(std::string_view media_type, const core::Digest& digest, std::uint64_t size) {
  Descriptor descriptor;
  descriptor.media_type = media_type;
  descriptor.digest = digest;
  descriptor.size = size;
  return descriptor;
}

std::optional<Platform> platform_of(const json& config) {
  const auto text = [&config](const char* key) {
    const auto it = config.find(key);
    return it != config.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  Platform platform{.os = text("os"), .architecture = text("architecture"), .variant = text("variant"),
                    .os_version = text("os.version")};
  if (platform.os.empty() || platform.architecture.empty()) return std::nullopt;
  return platform;
}

// --- OCI layout inside the tar (Docker 25+) -------------------------------------------

// The archive's blobs/sha256/ for walk_image: small blobs are read and checked, the
// rest are located in the tar (Checked::no: the bundle writer hashes them).
class TarBlobs final : public BlobAccess {
public:
  explicit TarBlobs(const TarIndex& tar) : m_tar(tar) {}

  std::string read_blob(const Descriptor& descriptor, std::string_view what) override {
    const std::string path = path_of(descriptor);
    const TarIndex::Entry& entry = checked_entry(descriptor, what);
    std::string bytes = m_tar.read_small(entry, path);
    const core::Digest actual = core::sha256_of(bytes);
    if (actual != descriptor.digest) {
      throw m_tar.corrupt("entry " + path + " (" + std::string(what) + ") has digest " + actual.str() +
                          ", expected " + descriptor.digest.str());
    }
    return bytes;
  }

  BlobRef locate(const Descriptor& descriptor) override {
    const TarIndex::Entry& entry = checked_entry(descriptor, "blob " + descriptor.digest.str());
    return BlobRef{.descriptor = descriptor, .file = m_tar.file(), .offset = entry.offset, .checked = Checked::no};
  }

private:
  static std::string path_of(const Descriptor& descriptor) {
    return "blobs/sha256/" + std::string(descriptor.digest.hex());
  }

  const TarIndex::Entry& checked_entry(const Descriptor& descriptor, std::string_view what) const {
    const std::string path = path_of(descriptor);
    const TarIndex::Entry& entry = m_tar.require(path, what);
    if (entry.size != descriptor.size) {
      throw m_tar.corrupt("entry " + path + " (" + std::string(what) + ") is " + std::to_string(entry.size) +
                          " bytes, expected " + std::to_string(descriptor.size));
    }
    return entry;
  }

  const TarIndex& m_tar;
};

ResolvedImage load_oci(const TarIndex& tar, std::string_view ref, const PlatformFilter& filter, BlobStore& store,
                       core::LogSink& log) {
  const TarIndex::Entry& index_entry = tar.require("index.json", "the image index");
  const AnyManifest parsed = parse_manifest(tar.read_small(index_entry, "index.json"), media_type::oci_index,
                                            "index.json of docker-save archive " + tar.display());
  const auto* index = std::get_if<ImageIndex>(&parsed);
  if (!index) throw tar.corrupt("index.json is an image manifest, expected an image index");
  if (index->manifests.empty()) throw tar.corrupt("index.json lists no image");

  std::vector<std::vector<std::string>> names;
  for (const auto& entry : index->manifests) {
    std::vector<std::string> list;
    for (const auto key : {k_annotation_containerd_name, k_annotation_ref_name}) {
      if (const auto it = entry.annotations.find(std::string(key)); it != entry.annotations.end()) {
        list.push_back(it->second);
      }
    }
    names.push_back(std::move(list));
  }
  const std::size_t position = choose(names, ref, tar.display()).first;
  const Descriptor& root = index->manifests[position];
  TarBlobs access(tar);
  const std::string what = "docker-archive:" + tar.display() + (ref.empty() ? "" : ":" + std::string(ref));
  ResolvedImage image = walk_image(access, root, filter, store, what, log);
  // The full reference when Docker recorded one (containerd's annotation), else ref.name.
  image.ref_name = names[position].empty() ? std::string() : names[position].front();
  return image;
}

// --- classic layout (manifest.json) ------------------------------------------------------

struct ClassicImage {
  std::string config;
  std::vector<std::string> repo_tags;
  std::vector<std::string> layers;
};

std::vector<ClassicImage> parse_classic_manifest(const TarIndex& tar) {
  const TarIndex::Entry& entry = tar.require("manifest.json", "the image list");
  const json doc = json::parse(tar.read_small(entry, "manifest.json"), nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) throw tar.corrupt("manifest.json is not a JSON array");
  if (doc.empty()) throw tar.corrupt("manifest.json lists no image");
  std::vector<ClassicImage> images;
  for (const auto& item : doc) {
    const std::string where = "manifest.json entry " + std::to_string(images.size());
    if (!item.is_object()) throw tar.corrupt(where + " is not an object");
    ClassicImage image;
    const auto config = item.find("Config");
    if (config == item.end() || !config->is_string()) throw tar.corrupt(where + " has no Config");
    image.config = config->get<std::string>();
    if (const auto tags = item.find("RepoTags"); tags != item.end() && !tags->is_null()) {
      if (!tags->is_array()) throw tar.corrupt(where + " has a RepoTags that is not a list");
      for (const auto& tag : *tags) {
        if (!tag.is_string()) throw tar.corrupt(where + " has a RepoTags entry that is not a string");
        image.repo_tags.push_back(tag.get<std::string>());
      }
    }
    const auto layers = item.find("Layers");
    if (layers == item.end() || !layers->is_array()) throw tar.corrupt(where + " has no Layers list");
    for (const auto& layer : *layers) {
      if (!layer.is_string()) throw tar.corrupt(where + " has a Layers entry that is not a string");
      image.layers.push_back(layer.get<std::string>());
    }
    images.push_back(std::move(image));
  }
  return images;
}

ResolvedImage load_classic(const TarIndex& tar, std::string_view ref, const PlatformFilter& filter, BlobStore& store,
                           core::LogSink& log) {
  const std::vector<ClassicImage> images = parse_classic_manifest(tar);
  std::vector<std::vector<std::string>> names;
  for (const auto& image : images) names.push_back(image.repo_tags);
  const auto [position, name] = choose(names, ref, tar.display());
  const ClassicImage& chosen = images[position];
  const std::string what = "docker-archive:" + tar.display() + (ref.empty() ? "" : ":" + std::string(ref));

  // The config's bytes are kept exactly: their digest is the image ID, the same on both
  // sides of the air gap. It goes into the store (checked as written).
  const std::string config_bytes = tar.read_small(tar.require(chosen.config, "config of " + what), chosen.config);
  const json config = json::parse(config_bytes, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    throw tar.corrupt("config " + chosen.config + " is not a JSON object");
  }
  std::vector<core::Digest> diff_ids;
  const json* ids = nullptr;
  if (const auto rootfs = config.find("rootfs"); rootfs != config.end() && rootfs->is_object()) {
    if (const auto it = rootfs->find("diff_ids"); it != rootfs->end() && it->is_array()) ids = &*it;
  }
  if (!ids) throw tar.corrupt("config " + chosen.config + " has no rootfs.diff_ids");
  for (const auto& id : *ids) {
    const auto digest = id.is_string() ? core::Digest::try_parse(id.get<std::string>()) : std::nullopt;
    if (!digest) throw tar.corrupt("config " + chosen.config + " has a diff_id that is no sha256 digest");
    diff_ids.push_back(*digest);
  }
  if (diff_ids.size() != chosen.layers.size()) {
    throw tar.corrupt("config " + chosen.config + " lists " + std::to_string(diff_ids.size()) +
                      " diff_ids, but manifest.json lists " + std::to_string(chosen.layers.size()) + " layers");
  }
  const StoredBlob stored_config = store.put_bytes(config_bytes);
  const Descriptor config_descriptor = descriptor_of(media_type::oci_config, stored_config.digest, stored_config.size);

  ImageManifest manifest;
  manifest.media_type = media_type::oci_manifest;
  manifest.config = config_descriptor;
  std::vector<BlobRef> layer_refs;
  for (std::size_t i = 0; i < chosen.layers.size(); ++i) {
    const std::string& path = chosen.layers[i];
    const TarIndex::Entry& entry = tar.require(path, "layer " + std::to_string(i + 1) + " of " + what);
    const auto head_size = static_cast<std::size_t>(std::min<std::uint64_t>(entry.size, 6));
    const Compression compression = sniff(read_head(tar.file(), entry.offset, head_size));
    Descriptor layer = descriptor_of(media_type::oci_layer, diff_ids[i], entry.size);
    if (compression == Compression::xz || compression == Compression::bzip2) {
      throw core::UsageError("layer " + path + " of docker-save archive " + tar.display() + " is " +
                                 compression_name(compression) + "-compressed, which OCI registries do not accept",
                             "load the archive with `docker load` and save the image again");
    }
    if (compression != Compression::none) {
      // A compressed layer's digest is that of its compressed bytes, which nothing in a
      // classic archive records: one read pass hashes it here (the bundle writer hashes
      // it again while copying, so a change in between is still caught).
      layer.media_type = compression == Compression::gzip ? media_type::oci_layer_gzip : media_type::oci_layer_zstd;
      core::FileSource source(tar.file());
      source.seek(entry.offset);
      core::ExactSource exact(source, entry.size, "entry " + path + " of " + tar.display());
      core::NullSink discard;
      core::HashingSink hashing(discard);
      core::copy(exact, hashing);
      layer.digest = hashing.finish();
    }
    manifest.layers.push_back(layer);
    layer_refs.push_back(
        BlobRef{.descriptor = layer, .file = tar.file(), .offset = entry.offset, .checked = Checked::no});
  }

  // to_json is byte-stable, so the same archive always yields the same manifest digest.
  const StoredBlob stored_manifest = store.put_bytes(to_json(manifest));
  ResolvedImage image;
  image.ref_name = name;
  image.root = descriptor_of(media_type::oci_manifest, stored_manifest.digest, stored_manifest.size);
  image.blobs.push_back(BlobRef{.descriptor = image.root, .file = store.path(stored_manifest.digest), .offset = 0,
                                .checked = Checked::yes});
  image.blobs.push_back(BlobRef{.descriptor = config_descriptor, .file = store.path(stored_config.digest), .offset = 0,
                                .checked = Checked::yes});
  for (auto& layer : layer_refs) {
    const bool seen = std::any_of(image.blobs.begin(), image.blobs.end(), [&layer](const BlobRef& b) {
      return b.descriptor.digest == layer.descriptor.digest;
    });
    if (!seen) image.blobs.push_back(std::move(layer));
  }
  if (const auto platform = platform_of(config)) {
    image.platforms.push_back(platform->str());
    if (!filter.accepts_all() && !filter.accepts(*platform)) {
      log.warning("image " + what + " is a single " + platform->str() + " image, outside the platform filter " +
                  filter.str() + "; carrying it anyway");
    }
  }
  return image;
}

} // namespace

ResolvedImage load_docker_archive_image(const fs::path& file, std::string_view ref, const PlatformFilter& filter,
                                        BlobStore& store, core::LogSink& log) {
  std::error_code ec;
  const auto status = fs::status(file, ec);
  if (!fs::exists(status)) {
    throw core::UsageError(
        "docker-save archive " + core::display(file) + " does not exist",
        "create it with `docker save -o FILE IMAGE` or `skopeo copy docker://IMAGE docker-archive:FILE`");
  }
  if (!fs::is_regular_file(status)) {
    throw core::UsageError("docker-save archive " + core::display(file) + " is not a regular file");
  }
  fs::path tar_file = file;
  const Compression compression = sniff(read_head(file, 0, 6));
  if (compression != Compression::none) tar_file = decompress(file, compression, store.root(), log);

  const TarIndex tar(tar_file, core::display(file));
  // Docker 25+ writes both; index.json is the richer one (byte-exact manifests, indexes).
  if (tar.find("index.json")) return load_oci(tar, ref, filter, store, log);
  return load_classic(tar, ref, filter, store, log);
}

} // namespace ferry::oci

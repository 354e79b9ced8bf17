// Streaming bundle verification (DESIGN §2: "a reader streams the tar once").
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_reader.hpp"

#include "core/background_sink.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "oci/manifest.hpp"
#include "oci/media_types.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace ferry::bundle {

namespace {

constexpr std::uint64_t k_background_hash_threshold = 4u << 20;

constexpr std::string_view k_recopy_hint =
    "the bundle changed after it was signed: check the copy with `sha256sum -c` on its .sha256 file, then copy the "
    "bundle again from the original media";

std::string type_name(EntryType type) {
  switch (type) {
  case EntryType::regular: return "a regular file";
  case EntryType::directory: return "a directory";
  case EntryType::symlink: return "a symbolic link";
  case EntryType::hardlink: return "a hard link";
  case EntryType::character_device: return "a character device";
  case EntryType::block_device: return "a block device";
  case EntryType::fifo: return "a FIFO";
  case EntryType::other: return "a special entry";
  }
  return "a special entry";
}

bool climbs_out(const std::string& path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    if (path.compare(start, end - start, "..") == 0 && end - start == 2) return true;
    start = end + 1;
  }
  return false;
}

std::string shown(const std::string& path) { return path.size() > 200 ? path.substr(0, 200) + "…" : path; }

} // namespace

BundleDescriptor check_descriptor(const std::string& descriptor_bytes, const std::optional<std::string>& signature,
                                  const TrustedKeys& trusted, SignaturePolicy policy, const std::string& display,
                                  SignatureCheck& check) {
  BundleDescriptor descriptor;
  check.has_signature = signature.has_value();
  if (policy == SignaturePolicy::require) {
    if (!signature) {
      throw core::IntegrityError("bundle " + display + " is not signed (no ferry.json.sig after ferry.json)",
                                 "ask the release engineer for a bundle packed with `ferry pack --key`; only if you "
                                 "accept an unverified bundle, pass --insecure-skip-signature");
    }
    // The raw bytes are checked against every trusted key before anything in them is
    // parsed: unsigned input never reaches the JSON parser on this path.
    const PublicKey* key = trusted.signer_of(descriptor_bytes, *signature);
    if (!key) {
      // Only now, for the message, look at what ferry.json claims (it may be garbage).
      std::string claimed;
      try {
        const BundleDescriptor unverified = parse_descriptor(descriptor_bytes);
        if (unverified.signer) claimed = unverified.signer->key_id;
      } catch (const core::Error&) {
      }
      std::string have;
      for (const auto& id : trusted.key_ids()) have += (have.empty() ? "" : ", ") + id;
      if (!claimed.empty() && !trusted.find(claimed)) {
        throw core::IntegrityError("bundle " + display + " is signed by key " + claimed +
                                       ", which is not among the trusted keys (" + (have.empty() ? "none given" : have) +
                                       ")",
                                   "pass the signer's public key with --pubkey after confirming its key id with the "
                                   "release engineer (`ferry keygen` printed it)");
      }
      throw core::IntegrityError("the signature of ferry.json in " + display + " does not verify with the trusted key" +
                                     (trusted.keys().size() == 1 ? " " : "s ") + have +
                                     ": ferry.json or its signature was changed",
                                 std::string(k_recopy_hint));
    }
    BundleDescriptor unverified = parse_descriptor(descriptor_bytes);
    if (!unverified.signer || unverified.signer->key_id != key->key_id()) {
      throw core::IntegrityError("ferry.json in " + display + " names signer " +
                                 (unverified.signer ? unverified.signer->key_id : std::string("(none)")) +
                                 ", but it was signed by " + key->key_id() + " (" + key->display() + ")");
    }
    if (std::string(to_string(key->type())) != unverified.signer->algorithm) {
      throw core::IntegrityError("ferry.json in " + display + " says it was signed with " + unverified.signer->algorithm +
                                 ", but key " + key->key_id() + " (" + key->display() + ") is " +
                                 std::string(to_string(key->type())));
    }
    descriptor = std::move(unverified);
    check.status = SignatureCheck::Status::verified;
    check.key_display = key->display();
  } else {
    descriptor = parse_descriptor(descriptor_bytes);
    check.status = SignatureCheck::Status::skipped;
  }
  if (descriptor.signer) {
    check.key_id = descriptor.signer->key_id;
    check.algorithm = descriptor.signer->algorithm;
  }
  return descriptor;
}

BundleReader::BundleReader(core::Source& in, std::string display)
    : m_display(std::move(display)), m_tar(in, m_display) {}

void BundleReader::check_entry_shape(const TarEntry& entry) const {
  if (!entry.path.empty() && entry.path.front() == '/') {
    throw core::IntegrityError("bundle " + m_display + " has an entry with an absolute path: " + shown(entry.path),
                               "do not use this bundle; a ferry bundle only holds relative paths");
  }
  if (climbs_out(entry.path)) {
    throw core::IntegrityError("bundle " + m_display + " has an entry whose path climbs out with '..': " + shown(entry.path),
                               "do not use this bundle; it was not written by ferry");
  }
  if (entry.type != EntryType::regular) {
    std::string what = "bundle entry " + shown(entry.path) + " is " + type_name(entry.type);
    if (!entry.link_target.empty()) what += " to " + shown(entry.link_target);
    throw core::IntegrityError(what + "; a ferry bundle holds regular files only",
                               "do not use this bundle; it was not written by ferry");
  }
}

const BundleDescriptor& BundleReader::open(const TrustedKeys& trusted, SignaturePolicy policy) {
  core::with_context("reading the head of bundle " + m_display, [&] { read_head(trusted, policy); });
  m_opened = true;
  return m_descriptor;
}

void BundleReader::read_head(const TrustedKeys& trusted, SignaturePolicy policy) {
  auto first = m_tar.next();
  if (!first) throw core::IntegrityError("bundle " + m_display + " is empty", "copy the bundle again");
  check_entry_shape(*first);
  if (first->path != k_descriptor_path) {
    throw core::IntegrityError("bundle " + m_display + " does not start with ferry.json (first entry: " + shown(first->path) +
                                   "); it is not a ferry bundle",
                               "pass a .tar.zst written by `ferry pack`");
  }
  if (first->size > k_max_descriptor_size) {
    throw core::IntegrityError("ferry.json in " + m_display + " is " + std::to_string(first->size) +
                               " bytes, more than the limit of " + std::to_string(k_max_descriptor_size));
  }
  m_descriptor_bytes = core::read_all(m_tar.body(), k_max_descriptor_size, "ferry.json");
  const std::string& descriptor_bytes = m_descriptor_bytes;

  std::optional<std::string> signature;
  auto second = m_tar.next();
  if (second && second->path == k_signature_path) {
    check_entry_shape(*second);
    m_signature_text = core::read_all(m_tar.body(), k_max_signature_size, "ferry.json.sig");
    signature = core::base64_decode(m_signature_text);
    if (!signature) {
      throw core::IntegrityError("ferry.json.sig in " + m_display + " is not base64 text", std::string(k_recopy_hint));
    }
  } else {
    m_pending = std::move(second);
  }

  m_descriptor = check_descriptor(descriptor_bytes, signature, trusted, policy, m_display, m_signature);
  m_head.emplace_back(std::string(k_descriptor_path), m_descriptor_bytes);
  if (m_signature.has_signature) m_head.emplace_back(std::string(k_signature_path), m_signature_text);
  if (m_descriptor.volumes) read_volume_label();

  m_blob_index.clear();
  for (std::size_t i = 0; i < m_descriptor.blobs.size(); ++i) m_blob_index.emplace(m_descriptor.blobs[i].digest, i);
  for (const VolumeEntry& e : volume_entries(m_descriptor, m_volume ? m_volume->volume : 0)) {
    StreamEntry entry{e.path, e.digest, e.size, e.media_type};
    if (e.is_piece) entry.piece = PieceOf{e.blob->digest, e.blob->size, e.piece, e.blob->pieces.size(), e.offset};
    m_expected.emplace(e.path, Expected{std::move(entry), false});
  }
  for (const auto& i : m_descriptor.images) m_roots.emplace(i.digest, "image " + i.ref);
  for (const auto& c : m_descriptor.charts) m_roots.emplace(c.digest, "chart " + c.ref);
  for (const auto& f : m_descriptor.files) m_roots.emplace(f.digest, "file " + f.path);
}

void BundleReader::read_volume_label() {
  std::optional<TarEntry> entry = std::move(m_pending);
  m_pending.reset();
  if (!entry) entry = m_tar.next();
  const VolumesRecord& volumes = *m_descriptor.volumes;
  if (!entry || entry->path != k_volume_path) {
    throw core::IntegrityError("bundle " + m_display + " is a volume of a split bundle (" +
                                   std::to_string(volumes.count) + " volumes), but its entry after ferry.json" +
                                   (m_signature.has_signature ? ".sig" : "") + " is " +
                                   (entry ? shown(entry->path) : std::string("the end")) + ", not volume.json",
                               std::string(k_recopy_hint));
  }
  check_entry_shape(*entry);
  std::string text = core::read_all(m_tar.body(), k_max_volume_label_size, "volume.json");
  const VolumeLabel label = core::with_context("reading volume.json of " + m_display, [&] { return parse_volume_label(text); });
  const core::Digest bundle = core::sha256_of(m_descriptor_bytes);
  if (label.bundle != bundle) {
    throw core::IntegrityError("volume.json of " + m_display + " names bundle " + label.bundle.str() +
                                   ", but its ferry.json is " + bundle.str(),
                               std::string(k_recopy_hint));
  }
  if (label.count != volumes.count) {
    throw core::IntegrityError("volume.json of " + m_display + " says " + std::to_string(label.count) +
                                   " volumes, ferry.json " + std::to_string(volumes.count),
                               std::string(k_recopy_hint));
  }
  m_volume = label;
  m_head.emplace_back(std::string(k_volume_path), std::move(text));
}

std::string BundleReader::placed_elsewhere(const std::string& path) const {
  for (const auto& b : m_descriptor.blobs) {
    if (path == blob_entry_path(b.digest) && b.volume) return "volume " + std::to_string(*b.volume);
    for (std::size_t i = 0; i < b.pieces.size(); ++i) {
      if (path == piece_entry_path(b.digest, i)) return "volume " + std::to_string(b.pieces[i].volume);
    }
    if (path == blob_entry_path(b.digest) && !b.pieces.empty()) {
      return "pieces in volumes " + std::to_string(b.pieces.front().volume) + " to " +
             std::to_string(b.pieces.back().volume);
    }
  }
  return {};
}

void BundleReader::learn_children(const StreamEntry& entry, const std::string& bytes) {
  if (entry.path == k_index_path) {
    check_layout_index(bytes);
    return;
  }
  oci::AnyManifest parsed = oci::parse_manifest(bytes, entry.media_type, "manifest " + entry.digest.str());
  auto add = [&](const oci::Descriptor& child, bool must_be_manifest) {
    check_child(entry, child, must_be_manifest);
    m_parents[child.digest].insert(entry.digest);
  };
  if (const auto* m = std::get_if<oci::ImageManifest>(&parsed)) {
    add(m->config, false);
    for (const auto& layer : m->layers) add(layer, false);
  } else {
    for (const auto& child : std::get<oci::ImageIndex>(parsed).manifests) add(child, true);
  }
}

// A signed manifest that names a blob the bundle lacks would fail later, at the
// registry (exit 4) or in whatever reads the extracted layout: refused here instead.
void BundleReader::check_child(const StreamEntry& parent, const oci::Descriptor& child, bool must_be_manifest) const {
  const std::string what = (parent.path == k_index_path ? "index.json of bundle " + m_display
                                                        : "manifest " + parent.digest.str()) +
                           " names " + child.digest.str();
  const auto it = m_blob_index.find(child.digest);
  if (it == m_blob_index.end()) {
    throw core::IntegrityError(what + ", which is not in the bundle (ferry.json does not list it)",
                               "do not use this bundle; it was not written by ferry pack");
  }
  const BlobRecord& blob = m_descriptor.blobs[it->second];
  const bool manifest = oci::media_type::is_manifest(blob.media_type) || oci::media_type::is_index(blob.media_type);
  if (must_be_manifest && !manifest) {
    throw core::IntegrityError(what + " as a manifest (" + child.media_type.substr(0, 100) +
                                   "), but ferry.json lists it as " + blob.media_type.substr(0, 100),
                               "do not use this bundle; it was not written by ferry pack");
  }
  if (child.size != blob.size) {
    throw core::IntegrityError(what + " with " + std::to_string(child.size) + " bytes, but ferry.json says " +
                                   std::to_string(blob.size),
                               "do not use this bundle; it was not written by ferry pack");
  }
}

// The layout's index.json: every descriptor a manifest or index of the bundle, as OCI
// tools reading the extracted layout will take it.
void BundleReader::check_layout_index(const std::string& bytes) const {
  const std::string what = "index.json of bundle " + m_display;
  // pack writes an image index here; an object that lists no manifests ("{}", where a
  // hand-made layout starts) points nowhere, and is left as it is.
  const nlohmann::json doc = nlohmann::json::parse(bytes, nullptr, false);
  if (doc.is_object() && !doc.contains("manifests")) return;
  const oci::AnyManifest parsed = oci::parse_manifest(bytes, oci::media_type::oci_index, what);
  const auto* index = std::get_if<oci::ImageIndex>(&parsed);
  if (!index) throw core::IntegrityError(what + " is an image manifest, not an index");
  const StreamEntry layout{std::string(k_index_path), {}, 0, {}};
  for (const auto& d : index->manifests) {
    if (!oci::media_type::is_manifest(d.media_type) && !oci::media_type::is_index(d.media_type)) {
      throw core::IntegrityError(what + " names " + d.digest.str() + " with media type " + d.media_type.substr(0, 100) +
                                     ", not a manifest or index",
                                 "do not use this bundle; it was not written by ferry pack");
    }
    check_child(layout, d, true);
  }
}

std::string BundleReader::users_of(const core::Digest& digest) const {
  std::set<std::string> users;
  std::set<core::Digest> visited;
  std::vector<core::Digest> todo{digest};
  while (!todo.empty()) {
    const core::Digest d = todo.back();
    todo.pop_back();
    if (!visited.insert(d).second) continue;
    if (auto root = m_roots.find(d); root != m_roots.end()) users.insert(root->second);
    if (auto parents = m_parents.find(d); parents != m_parents.end()) {
      for (const auto& p : parents->second) todo.push_back(p);
    }
  }
  std::string text;
  for (const auto& u : users) text += (text.empty() ? "" : ", ") + u;
  return text;
}

const StreamEntry& BundleReader::claim(const TarEntry& tar_entry) {
  check_entry_shape(tar_entry);
  auto it = m_expected.find(tar_entry.path);
  if (it == m_expected.end()) {
    std::string what = "bundle entry " + shown(tar_entry.path) + " is not listed in ferry.json";
    for (const auto& b : m_descriptor.blobs) {
      if (b.omitted && tar_entry.path == blob_entry_path(b.digest)) {
        what = "bundle entry " + tar_entry.path + " is a blob ferry.json marks as omitted (the base has it)";
      }
    }
    if (tar_entry.path == k_descriptor_path || tar_entry.path == k_signature_path ||
        (m_volume && tar_entry.path == k_volume_path)) {
      what = "bundle " + m_display + " has a second " + tar_entry.path;
    } else if (m_volume) {
      const std::string elsewhere = placed_elsewhere(tar_entry.path);
      if (!elsewhere.empty()) {
        throw core::IntegrityError("bundle entry " + shown(tar_entry.path) + " belongs in " + elsewhere +
                                       " (ferry.json), but volume.json says " + m_display + " is volume " +
                                       std::to_string(m_volume->volume),
                                   "volume.json was changed or the volume was put together by hand; copy the volume "
                                   "again from the original media");
      }
      what += " for volume " + std::to_string(m_volume->volume);
    }
    throw core::IntegrityError(what, "do not use this bundle: something was added after it was signed");
  }
  Expected& expected = it->second;
  const StreamEntry& entry = expected.entry;
  if (expected.seen) {
    throw core::IntegrityError("bundle entry " + entry.path + " appears twice", "do not use this bundle: it was altered");
  }
  expected.seen = true;
  if (tar_entry.size != entry.size) {
    std::string users = users_of(entry.digest);
    throw core::IntegrityError("bundle entry " + entry.path + " is " + std::to_string(tar_entry.size) +
                                   " bytes, ferry.json says " + std::to_string(entry.size) +
                                   (users.empty() ? "" : " (used by " + users + ")"),
                               std::string(k_recopy_hint));
  }
  return entry;
}

std::optional<std::string> BundleReader::verify_body(TarReader& tar, const StreamEntry& entry, core::Sink* sink, bool background_hash,
                                      const std::function<void(std::size_t)>& counted) const {
  const bool is_metadata = oci::media_type::is_index(entry.media_type) || oci::media_type::is_manifest(entry.media_type) ||
                           entry.path == k_index_path;
  if (is_metadata && entry.size > k_max_metadata_blob_size) {
    throw core::IntegrityError((entry.path == k_index_path ? entry.path : "manifest " + entry.digest.str()) + " is " +
                               std::to_string(entry.size) +
                               " bytes, more than the limit of " + std::to_string(k_max_metadata_blob_size));
  }
  std::vector<char> buffer(core::k_copy_buffer_size);
  std::string metadata;
  core::NullSink discard;
  core::HashingSink hashing(sink ? *sink : discard);
  // Large entries are hashed (and written) on a second thread while this one
  // decompresses the next chunk; small ones are not worth a thread.
  std::optional<core::BackgroundSink> background;
  if (background_hash && entry.size >= k_background_hash_threshold) background.emplace(hashing);
  core::Sink& feed = background ? static_cast<core::Sink&>(*background) : hashing;
  std::uint64_t got = 0;
  while (std::size_t n = tar.read(buffer.data(), buffer.size())) {
    feed.write(buffer.data(), n);
    if (is_metadata) metadata.append(buffer.data(), n);
    got += n;
    counted(n);
  }
  if (background) background->finish();
  if (got != entry.size) {
    throw core::IntegrityError("bundle entry " + entry.path + " ended after " + std::to_string(got) + " of " +
                                   std::to_string(entry.size) + " bytes",
                               std::string(k_recopy_hint));
  }
  const core::Digest actual = hashing.finish();
  if (actual != entry.digest) {
    const std::string users = users_of(entry.digest);
    throw core::IntegrityError("bundle entry " + entry.path + " has digest " + actual.str() + ", expected " +
                                   entry.digest.str() + (users.empty() ? "" : "; used by " + users),
                               std::string(k_recopy_hint));
  }
  if (!is_metadata) return std::nullopt;
  return metadata;
}

void BundleReader::check_complete() const {
  std::vector<const StreamEntry*> missing;
  for (const auto& [path, expected] : m_expected) {
    if (!expected.seen) missing.push_back(&expected.entry);
  }
  if (missing.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < missing.size() && i < 5; ++i) {
    const std::string users = users_of(missing[i]->digest);
    list += (i ? "; " : "") + missing[i]->path + (users.empty() ? "" : " (used by " + users + ")");
  }
  if (missing.size() > 5) list += "; and " + std::to_string(missing.size() - 5) + " more";
  throw core::IntegrityError("bundle " + m_display + " lacks " + std::to_string(missing.size()) + " entr" +
                                 (missing.size() == 1 ? "y" : "ies") + " listed in ferry.json" +
                                 (m_volume ? " for volume " + std::to_string(m_volume->volume) : std::string()) +
                                 ": " + list,
                             "the bundle is incomplete or was cut short; copy it again from the original media");
}

StreamStats BundleReader::read_entries(const EntryTarget& target, core::ProgressSink& progress,
                                       const std::function<bool()>& stop_early) {
  if (!m_opened) throw core::Error(core::ExitCode::failure, "BundleReader::read_entries called before open");
  StreamStats stats;
  const std::uint64_t total = m_descriptor.blob_bytes();
  std::uint64_t blob_bytes = 0;

  auto next = [&]() -> std::optional<TarEntry> {
    if (m_pending) {
      auto e = std::move(m_pending);
      m_pending.reset();
      return e;
    }
    return m_tar.next();
  };

  for (;;) {
    if (stop_early && stop_early()) {
      stats.complete = false;
      return stats;
    }
    auto tar_entry = next();
    if (!tar_entry) break;
    const StreamEntry& entry = claim(*tar_entry);
    core::with_context("reading bundle entry " + entry.path, [&] {
      std::unique_ptr<EntrySink> sink = target ? target(entry) : nullptr;
      // Progress counts blob bytes, as `total` does (not ferry.json, index.json, oci-layout).
      const bool blob = entry.path.rfind("blobs/", 0) == 0;
      const auto metadata = verify_body(m_tar, entry, sink.get(), true, [&](std::size_t n) {
        stats.bytes += n;
        if (!blob) return;
        blob_bytes += n;
        progress.progress({"verify", entry.path, blob_bytes, total});
      });
      if (metadata) learn_children(entry, *metadata);
      if (sink) sink->commit();
    });
    ++stats.entries;
  }
  check_complete();
  return stats;
}

} // namespace ferry::bundle

// One-pass verification of a bundle stream: signature first, then every entry against
// the blob table of ferry.json while it streams.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "bundle/signing.hpp"
#include "bundle/tar_reader.hpp"
#include "bundle/volumes.hpp"
#include "core/io.hpp"
#include "core/log.hpp"
#include "oci/descriptor.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry::bundle {

// require: the bundle must be signed by one of the trusted keys. skip: the operator
// said --insecure-skip-signature; the signature (if any) is not checked, which the
// caller reports loudly.
enum class SignaturePolicy { require, skip };

struct SignatureCheck {
  enum class Status { verified, skipped };
  Status status = Status::skipped;
  std::string key_id;      // the signer named in ferry.json (empty when unsigned)
  std::string algorithm;
  std::string key_display; // the trusted key file that verified it
  bool has_signature = false;
};

// Checks the exact bytes of ferry.json against its signature (raw bytes; nullopt when
// there is none) as BundleReader::open does, parses them and fills `check`: `display`
// names the bundle (or extracted directory) in messages. IntegrityErrors as open().
BundleDescriptor check_descriptor(const std::string& descriptor_bytes, const std::optional<std::string>& signature,
                                  const TrustedKeys& trusted, SignaturePolicy policy, const std::string& display,
                                  SignatureCheck& check);

// Which part of a blob a piece entry is (split bundles, bundle/volumes.hpp).
struct PieceOf {
  core::Digest blob;
  std::uint64_t blob_size = 0;
  std::size_t index = 0;     // 0 for the first piece
  std::size_t count = 0;     // pieces of the blob
  std::uint64_t offset = 0;  // where the piece starts in the blob
};

// One entry of the stream after ferry.json and its signature (and volume.json).
struct StreamEntry {
  std::string path;       // "oci-layout", "index.json", "blobs/sha256/<hex>" or "pieces/sha256/<hex>/<NNN>"
  core::Digest digest;    // of the entry's bytes (a piece's own digest)
  std::uint64_t size = 0;
  std::string media_type; // empty for oci-layout and index.json; a piece's is its blob's
  std::optional<PieceOf> piece = std::nullopt; // set for a piece
};

// Receives the bytes of one entry while they are verified; commit() is called only once
// the whole entry matched its digest. Destroyed without commit() when it did not.
class EntrySink : public core::Sink {
public:
  virtual void commit() = 0;
};

using EntryTarget = std::function<std::unique_ptr<EntrySink>(const StreamEntry&)>;

// Collects an entry's bytes (a manifest: small) and hands them to `into[digest]` once the
// reader verified them.
class CollectSink final : public EntrySink {
public:
  CollectSink(std::map<core::Digest, std::string>& into, core::Digest digest) : m_into(into), m_digest(digest) {}
  void write(const char* data, std::size_t size) override { m_bytes.append(data, size); }
  using EntrySink::write;
  void commit() override { m_into[m_digest] = std::move(m_bytes); }

private:
  std::map<core::Digest, std::string>& m_into;
  core::Digest m_digest;
  std::string m_bytes;
};

struct StreamStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0; // uncompressed entry bytes verified
  bool complete = true;    // false when the caller stopped the stream early
};

// Reads a bundle from `in` once, front to back; `display` names it in messages.
// Memory stays bounded: blobs stream through in chunks; only manifests (at most
// k_max_metadata_blob_size each) are held long enough to learn which images use which
// blob, for messages.
class BundleReader {
public:
  BundleReader(core::Source& in, std::string display);

  // Reads ferry.json and ferry.json.sig (the first two entries) and checks the
  // signature against `trusted` (unless `policy` is skip). Throws IntegrityError: not a
  // ferry bundle, unsigned, signed by an untrusted key (naming the signer's key id and
  // the trusted ones), a signature that does not verify, a malformed ferry.json.
  // A volume of a split bundle (ferry.json has `volumes`) must go on with volume.json,
  // naming this ferry.json's digest and its volume count (IntegrityError otherwise); the
  // entries expected are then those ferry.json assigns to that volume.
  const BundleDescriptor& open(const TrustedKeys& trusted, SignaturePolicy policy);

  const BundleDescriptor& descriptor() const { return m_descriptor; }
  const SignatureCheck& signature() const noexcept { return m_signature; }
  // The exact bytes of ferry.json and of ferry.json.sig (empty when unsigned), as read.
  const std::string& descriptor_bytes() const noexcept { return m_descriptor_bytes; }
  const std::string& signature_text() const noexcept { return m_signature_text; }
  // Split bundles: which volume this stream is (volume.json, checked as open() says);
  // nullopt for a one-file bundle.
  const std::optional<VolumeLabel>& volume() const noexcept { return m_volume; }

  // Streams the remaining entries, checking each: a regular file, at a path the
  // descriptor lists (for this volume, in a split bundle), once, with the listed size
  // and digest. `target` may give a sink
  // per entry (or nullptr to only verify). At the end every listed entry must have
  // been seen. Any failure is an IntegrityError naming the entry, expected and actual,
  // and for blobs the images that use it.
  // `stop_early`, when given, is asked before each entry: true ends the stream there
  // (the rest is neither read nor checked, and the completeness check is skipped); the
  // caller must not need anything from what remains.
  StreamStats read_entries(const EntryTarget& target, core::ProgressSink& progress,
                           const std::function<bool()>& stop_early = {});

  // The same checks and calls as read_entries, for a bundle that is the regular file
  // `file` (the one `in` reads). When each entry is its own zstd frame, as ferry writes
  // them, the layout and the manifests are read here and the other blobs by `jobs`
  // threads at once, each from its own frame (found by walking the frame headers), so
  // their sinks (uploads) run side by side. `target`, `stop_early` and the sinks'
  // commit() are called by one thread at a time; the sinks' write() by several. In
  // this mode manifests must come before the other blobs, as ferry writes them (an
  // IntegrityError otherwise), no frame may hold two entries, and nothing may follow the
  // end-of-archive frame. The mode is chosen by the first frame: when it holds more than
  // ferry.json (a bundle recompressed with another tool) read_entries reads the bundle.
  // When `stop_early` says stop, frames already handed to the threads (at most 2 x
  // `jobs`) are still read.
  StreamStats read_entries_parallel(const std::filesystem::path& file, int jobs, const EntryTarget& target,
                                    core::ProgressSink& progress, const std::function<bool()>& stop_early = {});

  // "image docker.io/library/nginx:1.27, chart charts/x:1.0" for a blob digest (what
  // uses it, as far as the manifests read so far tell), or "" when unknown.
  std::string users_of(const core::Digest& digest) const;

private:
  struct Expected {
    StreamEntry entry;
    bool seen = false;
  };
  void read_head(const TrustedKeys& trusted, SignaturePolicy policy);
  void check_entry_shape(const TarEntry& entry) const;
  // Records which blobs a verified manifest or index names, after checking that each is
  // in the blob table with the size it states (an index's children as manifests). For
  // index.json, checks the same of the layout's index (nothing else reads it).
  void learn_children(const StreamEntry& entry, const std::string& bytes);
  void check_layout_index(const std::string& bytes) const;
  void check_child(const StreamEntry& parent, const oci::Descriptor& child, bool must_be_manifest) const;
  // Checks a header against the blob table and marks its entry seen.
  const StreamEntry& claim(const TarEntry& tar_entry);
  // Streams the current entry of `tar` into `sink` (may be null) while hashing it;
  // checks length and digest. `counted(n)` is told of every chunk. Returns the bytes of
  // a manifest or index (nullopt for other entries).
  std::optional<std::string> verify_body(TarReader& tar, const StreamEntry& entry, core::Sink* sink, bool background_hash,
                          const std::function<void(std::size_t)>& counted) const;
  void check_complete() const;
  void read_volume_label();
  // "volume 2" (or "volumes 1 to 3") when ferry.json places `path` in other volumes
  // than this one; "" when it does not list it at all.
  std::string placed_elsewhere(const std::string& path) const;

  std::string m_display;
  TarReader m_tar;
  BundleDescriptor m_descriptor;
  SignatureCheck m_signature;
  std::string m_descriptor_bytes;
  std::string m_signature_text;
  std::optional<VolumeLabel> m_volume;
  // The head as read (ferry.json, ferry.json.sig, volume.json: those present), in order:
  // the parallel reader checks the frames it meets against it.
  std::vector<std::pair<std::string, std::string>> m_head;
  std::optional<TarEntry> m_pending; // an entry read while looking for the signature
  std::map<std::string, Expected> m_expected;          // by path
  std::map<core::Digest, std::size_t> m_blob_index;    // blob table position by digest
  std::map<core::Digest, std::set<core::Digest>> m_parents; // child -> parents
  std::map<core::Digest, std::string> m_roots;         // root digest -> "image REF"
  bool m_opened = false;
};

} // namespace ferry::bundle

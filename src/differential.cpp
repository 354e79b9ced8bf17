// Loading the bases of a differential pack: composes the receipt parser, the bundle
// reader, the lock parser and the image puller.
// SPDX-License-Identifier: Apache-2.0
#include "differential.hpp"

#include "bundle/bundle_reader.hpp"
#include "bundle/receipt.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "inventory.hpp"
#include "lock.hpp"
#include "oci/manifest.hpp"
#include "oci/media_types.hpp"
#include "oci/reference.hpp"
#include "registry/client.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace ferry {

namespace fs = std::filesystem;

namespace {

bool is_manifest_type(const std::string& media_type) {
  return oci::media_type::is_manifest(media_type) || oci::media_type::is_index(media_type);
}

enum class BaseKind { receipt, lock, bundle };

// The first bytes tell a bundle (a zstd frame) from JSON; the JSON's version field tells
// a receipt from a lock.
BaseKind kind_of(const fs::path& file, std::string& json_text) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    throw core::UsageError("base " + core::display(file) + " is not a file",
                           "give --base a RECEIPT.json from `ferry inventory`, a lock file, or a bundle (.tar.zst)");
  }
  core::FileSource in(file);
  char magic[4] = {};
  std::size_t got = 0;
  while (got < sizeof magic) {
    const std::size_t n = in.read(magic + got, sizeof magic - got);
    if (n == 0) break;
    got += n;
  }
  if (got == 4 && static_cast<unsigned char>(magic[0]) == 0x28 && static_cast<unsigned char>(magic[1]) == 0xb5 &&
      static_cast<unsigned char>(magic[2]) == 0x2f && static_cast<unsigned char>(magic[3]) == 0xfd) {
    return BaseKind::bundle;
  }
  json_text = core::read_file(file, bundle::k_max_receipt_size);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception&) {
    j = nullptr;
  }
  if (j.is_object() && j.contains("receiptVersion")) return BaseKind::receipt;
  if (j.is_object() && j.contains("lockVersion")) return BaseKind::lock;
  throw core::UsageError("base " + core::display(file) + " is neither a bundle, a receipt nor a lock file",
                         "give --base a RECEIPT.json from `ferry inventory`, a NAME.lock.json from `ferry pack`, or "
                         "a bundle (.tar.zst, or one volume of a split bundle)");
}

class Loader {
public:
  Loader(const BaseOptions& options, oci::BlobStore& store, core::LogSink& log)
      : m_options(options), m_store(store), m_log(log) {
    for (const auto& key : options.pubkeys) m_keys.add(bundle::PublicKey::load(key));
  }

  void load(const fs::path& file) {
    std::string text;
    const BaseKind kind = kind_of(file, text);
    switch (kind) {
    case BaseKind::receipt: load_receipt(file, text); break;
    case BaseKind::lock: load_lock(file, text); break;
    case BaseKind::bundle: load_bundle(file); break;
    }
  }

  LoadedBases take() { return std::move(m_loaded); }

private:
  // Registers a base; nullopt when the same one (same digest) was given already.
  std::optional<std::uint32_t> add_record(bundle::BaseRecord record) {
    for (const auto& have : m_loaded.records) {
      if (have.kind == record.kind && have.digest == record.digest) {
        m_log.info("base " + record.file + " is the same " + record.kind + " as " + have.file + ": counted once");
        return std::nullopt;
      }
    }
    m_loaded.records.push_back(std::move(record));
    return static_cast<std::uint32_t>(m_loaded.records.size() - 1);
  }

  void add_blob(std::uint32_t base, const core::Digest& digest, std::uint64_t size, const std::string& repository) {
    BaseBlob& blob = m_loaded.blobs[digest];
    blob.size = size;
    blob.bases.insert(base);
    if (!repository.empty()) blob.repositories.insert(repository);
  }

  void load_receipt(const fs::path& file, const std::string& text) {
    const std::string what = "receipt " + core::display(file);
    bundle::BaseRecord record{"receipt", file.filename().string(), core::sha256_of(text)};
    const fs::path sig = receipt_signature_path(file);
    std::error_code ec;
    const bool has_sig = fs::exists(sig, ec);
    if (!m_keys.empty()) {
      if (!has_sig) {
        throw core::IntegrityError(what + " is not signed (no " + core::display(sig) + "), but --base-pubkey was given",
                                   "take the inventory again with `ferry inventory --key`, or leave out --base-pubkey "
                                   "to accept an unsigned receipt");
      }
      record.signer = bundle::verify_receipt_signature(text, core::read_file(sig, 64u << 10), m_keys, what);
    } else if (has_sig) {
      m_log.warning(what + ": its signature (" + core::display(sig) + ") is not checked: give --base-pubkey KEY.pub");
    } else {
      m_log.warning(what + " is unsigned: nothing proves it came from the isolated side (sign it with `ferry inventory "
                           "--key` and give --base-pubkey)");
    }
    const bundle::Receipt receipt = bundle::parse_receipt(text, what);
    record.registry = receipt.registry;
    record.created = receipt.created;
    const std::string prefix = registry::Location::split(receipt.registry).prefix;
    const auto index = add_record(std::move(record));
    if (!index) return;
    for (const auto& b : receipt.blobs) {
      add_blob(*index, b.digest, b.size, {});
      for (const auto& repo : b.repositories) {
        // Kept as paths under the prefix: push puts them under its own.
        if (prefix.empty()) {
          m_loaded.blobs[b.digest].repositories.insert(repo);
        } else if (repo.rfind(prefix + "/", 0) == 0) {
          m_loaded.blobs[b.digest].repositories.insert(repo.substr(prefix.size() + 1));
        }
      }
    }
    m_log.info("base " + what + " of " + receipt.registry + " (" + receipt.created + "): " +
               std::to_string(receipt.blobs.size()) + " blobs in " + std::to_string(receipt.repositories.size()) +
               " repositories" +
               (receipt.problems.empty() ? std::string()
                                         : "; it reports " + std::to_string(receipt.problems.size()) + " problems"));
  }

  void load_lock(const fs::path& file, const std::string& text) {
    const std::string what = "lock file " + core::display(file);
    const LockFile lock = parse_lock(text, core::display(file));
    const auto index =
        add_record(bundle::BaseRecord{"lock", file.filename().string(), core::sha256_of(text), lock.name, lock.version});
    if (!index) return;
    // Its own puller: nothing it queues is downloaded (only manifests and configs are read).
    ImagePuller puller(m_options.pull, m_store, m_log);
    std::size_t resolved = 0;
    for (const auto& image : lock.images) {
      const oci::ImageSource source = oci::ImageSource::parse(image.source);
      if (source.kind != oci::ImageSource::Kind::registry) {
        m_log.warning(what + ": image " + image.ref + " comes from " + image.source +
                      ", not from a registry: its blobs are not known and none is left out");
        continue;
      }
      const oci::Reference from = oci::Reference::parse(source.location);
      std::vector<core::Digest> roots;
      for (const auto& [platform, digest] : image.platforms) roots.push_back(digest);
      if (roots.empty()) roots.push_back(image.source_digest.value_or(image.digest));
      const std::string repository = oci::Reference::parse(image.ref).repository();
      for (const auto& digest : roots) {
        core::with_context("resolving " + from.name() + "@" + digest.str() + " of " + what, [&] {
          const oci::ResolvedImage r = puller.resolve(from.with_digest(digest), oci::PlatformFilter());
          for (const auto& blob : r.blobs) {
            if (!is_manifest_type(blob.descriptor.media_type)) {
              add_blob(*index, blob.descriptor.digest, blob.descriptor.size, repository);
            }
          }
        });
      }
      ++resolved;
    }
    m_log.info("base " + what + " (" + lock.name + " " + lock.version + "): " + std::to_string(resolved) + " of " +
               std::to_string(lock.images.size()) + " images resolved from their registries");
  }

  void load_bundle(const fs::path& file) {
    const std::string display = core::display(file);
    core::FileSource in(file);
    bundle::BundleReader reader(in, display);
    const bundle::SignaturePolicy policy = m_keys.empty() ? bundle::SignaturePolicy::skip : bundle::SignaturePolicy::require;
    const bundle::BundleDescriptor& d = reader.open(m_keys, policy);
    if (m_keys.empty()) {
      m_log.warning("base bundle " + display + ": its signature is not checked: give --base-pubkey KEY.pub");
    }
    bundle::BaseRecord record{"bundle", file.filename().string(), core::sha256_of(reader.descriptor_bytes()), d.name,
                              d.version};
    record.created = d.created;
    if (reader.signature().status == bundle::SignatureCheck::Status::verified) record.signer = reader.signature().key_id;
    const auto index = add_record(std::move(record));
    if (!index) return;

    // The manifests come first in every volume: read them, then stop.
    std::size_t manifests = 0;
    for (const auto& b : d.blobs) {
      if (!b.omitted && is_manifest_type(b.media_type)) ++manifests;
    }
    std::map<core::Digest, std::string> bytes;
    core::NullProgress quiet;
    core::with_context("reading the manifests of base bundle " + display, [&] {
      reader.read_entries(
          [&](const bundle::StreamEntry& entry) -> std::unique_ptr<bundle::EntrySink> {
            if (!is_manifest_type(entry.media_type)) return nullptr;
            return std::make_unique<bundle::CollectSink>(bytes, entry.digest);
          },
          quiet, [&] { return bytes.size() == manifests; });
    });

    std::map<core::Digest, std::string> media_types;
    for (const auto& b : d.blobs) media_types[b.digest] = b.media_type;
    // Every blob under a root, with the repository push gives the root.
    std::set<core::Digest> placed;
    auto walk = [&](const core::Digest& root, const std::string& repository) {
      std::vector<core::Digest> todo{root};
      std::set<core::Digest> seen;
      while (!todo.empty()) {
        const core::Digest digest = todo.back();
        todo.pop_back();
        if (!seen.insert(digest).second) continue;
        const auto manifest = bytes.find(digest);
        if (manifest == bytes.end()) {
          const bundle::BlobRecord* table = d.find_blob(digest);
          if (table && !is_manifest_type(table->media_type)) {
            add_blob(*index, digest, table->size, repository);
            placed.insert(digest);
          }
          continue;
        }
        const oci::AnyManifest parsed = oci::parse_manifest(manifest->second, media_types[digest], "manifest " + digest.str());
        if (const auto* m = std::get_if<oci::ImageManifest>(&parsed)) {
          todo.push_back(m->config.digest);
          for (const auto& l : m->layers) todo.push_back(l.digest);
        } else {
          for (const auto& c : std::get<oci::ImageIndex>(parsed).manifests) todo.push_back(c.digest);
        }
      }
    };
    for (const auto& image : d.images) walk(image.digest, oci::Reference::parse(image.ref).repository());
    for (const auto& chart : d.charts) walk(chart.digest, "charts/" + chart.name);
    // Blobs no image or chart uses (files' contents) are what the table says, without a repository.
    for (const auto& b : d.blobs) {
      if (!is_manifest_type(b.media_type) && !placed.count(b.digest)) add_blob(*index, b.digest, b.size, {});
    }
    m_log.info("base bundle " + display + " (" + d.name + " " + d.version + "): " + std::to_string(d.blobs.size()) +
               " blobs" + (d.differential() ? ", " + std::to_string(d.omitted_blobs()) + " of them omitted from it" : ""));
  }

  const BaseOptions& m_options;
  oci::BlobStore& m_store;
  core::LogSink& m_log;
  bundle::TrustedKeys m_keys;
  LoadedBases m_loaded;
};

} // namespace

LoadedBases load_bases(const BaseOptions& options, oci::BlobStore& store, core::LogSink& log) {
  Loader loader(options, store, log);
  for (const auto& file : options.files) {
    core::with_context("reading base " + core::display(file), [&] { loader.load(file); });
  }
  return loader.take();
}

} // namespace ferry

// Walking an image's manifest graph: narrowing indexes to a platform filter, locating every blob.
// SPDX-License-Identifier: Apache-2.0
#include "oci/resolved_image.hpp"

#include "core/error.hpp"
#include "oci/media_types.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace ferry::oci {

namespace {

using nlohmann::json;

// Real images nest at most two levels (index -> index -> manifest); anything deeper is a
// malformed or hostile source, refused before the stack is.
constexpr int k_max_depth = 8;

// Docker buildx attaches provenance/SBOM attestations as image manifests with the
// platform unknown/unknown (docker/buildx docs "attestation storage"). They are no
// platform of the image, so they never appear in `platforms` nor in "it has …" lists.
bool is_attestation(const Platform& platform) {
  return platform.os == "unknown" && platform.architecture == "unknown";
}

// The platform an image config records (image-spec config.md: os, architecture,
// variant, os.version); nullopt when os or architecture is missing.
std::optional<Platform> platform_of_config(std::string_view bytes, const std::string& what) {
  const json doc = json::parse(bytes, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw core::IntegrityError(what + " is not a JSON object");
  const auto text = [&doc](const char* key) {
    const auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  Platform platform{.os = text("os"), .architecture = text("architecture"), .variant = text("variant"),
                    .os_version = text("os.version")};
  if (platform.os.empty() || platform.architecture.empty()) return std::nullopt;
  return platform;
}

bool is_image_config(std::string_view media_type) {
  return media_type == media_type::oci_config || media_type == media_type::docker_config;
}

class Walker {
public:
  Walker(BlobAccess& access, const PlatformFilter& filter, BlobStore& store, std::string_view what,
         core::LogSink& log)
      : m_access(access), m_filter(filter), m_store(store), m_what(what), m_log(log) {}

  ResolvedImage walk(const Descriptor& root) {
    const std::string bytes = m_access.read_blob(root, "root of " + m_what);
    const AnyManifest parsed =
        parse_manifest(bytes, root.media_type, "manifest " + root.digest.str() + " of " + m_what);
    m_visited.emplace(root.digest, root);

    ResolvedImage image;
    if (const auto* manifest = std::get_if<ImageManifest>(&parsed)) {
      const std::optional<Platform> platform = visit_manifest(root, *manifest, root.platform);
      if (platform && !m_filter.accepts_all() && !m_filter.accepts(*platform)) {
        m_log.warning("image " + m_what + " is a single " + platform->str() + " image, outside the platform filter " +
                      m_filter.str() + "; carrying it anyway");
      }
      image.root = root;
    } else {
      const std::optional<Descriptor> kept = visit_index(root, std::get<ImageIndex>(parsed), 0);
      if (!kept || (m_manifests == 0 && !m_filter.accepts_all())) throw no_match_error();
      image.root = *kept;
      if (kept->digest != root.digest) image.source_digest = root.digest;
    }
    image.platforms = std::move(m_platforms);
    image.blobs = std::move(m_blobs);
    return image;
  }

private:
  core::UsageError no_match_error() const {
    std::string have;
    for (const auto& platform : m_seen_platforms) have += (have.empty() ? "" : ", ") + platform;
    return core::UsageError("image " + m_what + " has no manifest matching " + m_filter.str() + " (it has " +
                                (have.empty() ? std::string("no platform information") : have) + ")",
                            "choose platforms the image has in the bundle manifest (`platforms:` of the image)");
  }

  void emit(BlobRef ref) {
    if (m_emitted.insert(ref.descriptor.digest).second) m_blobs.push_back(std::move(ref));
  }

  // Reserves the slot of a parent's own blob, so it comes before its children even
  // though a narrowed index is only written (and its digest known) after them.
  std::size_t reserve_slot() {
    m_blobs.emplace_back();
    return m_blobs.size() - 1;
  }

  // Whether the filter keeps an index child, judged on the descriptor alone. A manifest
  // without a platform is kept only when every platform is wanted: under a filter there
  // is no telling which platform it serves, and the manifests that lack one in practice
  // (artifact manifests, buildx attestations — those are `unknown/unknown` and fail any
  // filter anyway) belong to the platform images that a filter may have dropped.
  // Nested indexes are kept unless their own platform fails: their children decide.
  bool keeps(const Descriptor& child) const {
    if (child.platform) return m_filter.accepts_all() || m_filter.accepts(*child.platform);
    return media_type::is_index(child.media_type) || m_filter.accepts_all();
  }

  // Returns the descriptor the parent lists for `child` (a new digest when a nested index
  // was narrowed), nullopt when nothing under it survived the filter.
  std::optional<Descriptor> visit_child(const Descriptor& child, int depth) {
    if (const auto it = m_visited.find(child.digest); it != m_visited.end()) return it->second;
    std::optional<Descriptor> result;
    const bool parseable = media_type::is_index(child.media_type) || media_type::is_manifest(child.media_type) ||
                           child.media_type.empty();
    if (!parseable) {
      // Not a manifest (an index may list any descriptor): carried as an opaque blob.
      emit(m_access.locate(child));
      result = child;
    } else {
      const std::string bytes = m_access.read_blob(child, "manifest of " + m_what);
      const AnyManifest parsed =
          parse_manifest(bytes, child.media_type, "manifest " + child.digest.str() + " of " + m_what);
      if (const auto* manifest = std::get_if<ImageManifest>(&parsed)) {
        visit_manifest(child, *manifest, child.platform);
        result = child;
      } else {
        result = visit_index(child, std::get<ImageIndex>(parsed), depth + 1);
      }
    }
    m_visited.emplace(child.digest, result);
    return result;
  }

  std::optional<Descriptor> visit_index(const Descriptor& descriptor, const ImageIndex& index, int depth) {
    if (depth > k_max_depth) {
      throw core::IntegrityError("image " + m_what + " nests indexes more than " + std::to_string(k_max_depth) +
                                 " levels deep (at " + descriptor.digest.str() + ")");
    }
    const std::size_t slot = reserve_slot();
    ImageIndex narrowed = index;
    narrowed.manifests.clear();
    bool changed = false;
    for (const auto& child : index.manifests) {
      if (child.platform && !is_attestation(*child.platform)) {
        const std::string text = child.platform->str();
        if (std::find(m_seen_platforms.begin(), m_seen_platforms.end(), text) == m_seen_platforms.end()) {
          m_seen_platforms.push_back(text);
        }
      }
      std::optional<Descriptor> kept;
      if (keeps(child)) kept = visit_child(child, depth);
      if (!kept) {
        changed = true;
        continue;
      }
      if (kept->digest != child.digest) changed = true;
      narrowed.manifests.push_back(std::move(*kept));
    }
    if (narrowed.manifests.empty() && !index.manifests.empty()) {
      m_blobs.erase(m_blobs.begin() + static_cast<std::ptrdiff_t>(slot));
      return std::nullopt;
    }
    if (!changed) {
      m_blobs[slot] = m_access.locate(descriptor);
      m_emitted.insert(descriptor.digest);
      return descriptor;
    }
    // Same fields, fewer children: the new index is ferry's own, so it lives in the store
    // (checked as written); the descriptor keeps everything but digest and size, so the
    // ref.name and other annotations of the source's entry survive.
    const StoredBlob stored = m_store.put_bytes(to_json(narrowed));
    Descriptor rewritten = descriptor;
    rewritten.digest = stored.digest;
    rewritten.size = stored.size;
    m_log.info("narrowed index " + descriptor.digest.short_str() + " of " + m_what + " to " + m_filter.str() + ": " +
               std::to_string(narrowed.manifests.size()) + " of " + std::to_string(index.manifests.size()) +
               " manifests kept");
    m_blobs[slot] = BlobRef{.descriptor = rewritten, .file = m_store.path(stored.digest), .offset = 0,
                            .checked = Checked::yes};
    m_emitted.insert(rewritten.digest);
    return rewritten;
  }

  // Emits the manifest, its config and its layers; returns the platform it serves: the
  // one its parent names, else the one its config records (nullopt for artifacts such as
  // Helm charts, whose config is no image config).
  std::optional<Platform> visit_manifest(const Descriptor& descriptor, const ImageManifest& manifest,
                                         std::optional<Platform> platform) {
    emit(m_access.locate(descriptor));
    if (!platform && is_image_config(manifest.config.media_type)) {
      const std::string what = "config " + manifest.config.digest.str() + " of " + m_what;
      platform = platform_of_config(m_access.read_blob(manifest.config, "config of " + m_what), what);
    }
    emit(m_access.locate(manifest.config));
    for (const auto& layer : manifest.layers) {
      if (layer.urls.empty()) {
        emit(m_access.locate(layer));
        continue;
      }
      // Non-distributable ("foreign") layers: registries may refuse them and the
      // isolated side cannot fetch their URLs, so they are carried when the source holds
      // them and are an error otherwise.
      try {
        emit(m_access.locate(layer));
      } catch (core::IntegrityError& e) {
        e.add_context("while locating non-distributable layer " + layer.digest.str() + " of " + m_what +
                      " (published at " + layer.urls.front() + ")");
        e.set_hint("the source lacks this foreign layer; copy the image with it included (for instance "
                   "`skopeo copy` from a registry that serves it) and pack again");
        throw;
      }
    }
    ++m_manifests;
    if (platform && !is_attestation(*platform)) m_platforms.push_back(platform->str());
    return platform;
  }

  BlobAccess& m_access;
  const PlatformFilter& m_filter;
  BlobStore& m_store;
  std::string m_what;
  core::LogSink& m_log;

  std::vector<BlobRef> m_blobs;
  std::set<core::Digest> m_emitted;
  std::map<core::Digest, std::optional<Descriptor>> m_visited;
  std::vector<std::string> m_platforms;
  std::vector<std::string> m_seen_platforms;
  std::size_t m_manifests = 0;
};

} // namespace

ResolvedImage walk_image(BlobAccess& access, const Descriptor& root, const PlatformFilter& filter, BlobStore& store,
                         std::string_view what, core::LogSink& log) {
  Walker walker(access, filter, store, what, log);
  return walker.walk(root);
}

} // namespace ferry::oci

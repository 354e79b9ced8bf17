// Reading OCI image layouts (image-spec v1.1 image-layout.md) in place.
// SPDX-License-Identifier: Apache-2.0
#include "oci/layout_reader.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"
#include "oci/media_types.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace ferry::oci {

namespace fs = std::filesystem;

namespace {

// Manifests, indexes and configs are small; a "manifest" of gigabytes is a mistake or an
// attack, and it would be held in memory whole.
constexpr std::uint64_t k_small_blob_limit = 16u << 20;

std::string layout_hint(const fs::path& dir) {
  return "write the image as a layout first, e.g. `skopeo copy docker://IMAGE oci:" + core::display(dir) + ":TAG`";
}

std::string ref_name_of(const Descriptor& descriptor) {
  const auto it = descriptor.annotations.find(std::string(k_annotation_ref_name));
  return it == descriptor.annotations.end() ? std::string() : it->second;
}

// The layout's blobs for walk_image: small blobs are read and checked, the rest are
// located by stat only (their bytes are hashed once, by the bundle writer).
class LayoutBlobs final : public BlobAccess {
public:
  explicit LayoutBlobs(const LayoutReader& reader) : m_reader(reader) {}

  std::string read_blob(const Descriptor& descriptor, std::string_view what) override {
    return m_reader.read_blob(descriptor, what);
  }

  BlobRef locate(const Descriptor& descriptor) override {
    const fs::path path = m_reader.blob_path(descriptor.digest);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      throw core::IntegrityError("blob " + descriptor.digest.str() + " is missing from layout " +
                                     core::display(m_reader.dir()),
                                 "the layout is incomplete; copy the image into it again");
    }
    if (static_cast<std::uint64_t>(st.st_size) != descriptor.size) {
      throw core::IntegrityError("blob " + descriptor.digest.str() + " in " + core::display(m_reader.dir()) + " is " +
                                     std::to_string(st.st_size) + " bytes, expected " + std::to_string(descriptor.size),
                                 "the layout is damaged; copy the image into it again");
    }
    return BlobRef{.descriptor = descriptor, .file = path, .offset = 0, .checked = Checked::no};
  }

private:
  const LayoutReader& m_reader;
};

} // namespace

LayoutReader::LayoutReader(fs::path dir) : m_dir(std::move(dir)) {
  const fs::path marker = m_dir / "oci-layout";
  std::error_code ec;
  if (!fs::is_regular_file(marker, ec)) {
    throw core::UsageError(core::display(m_dir) + " is not an OCI image layout (no oci-layout file)",
                           layout_hint(m_dir));
  }
  const std::string marker_bytes = core::read_file(marker, k_small_blob_limit);
  const auto marker_doc = nlohmann::json::parse(marker_bytes, nullptr, false);
  const auto version = marker_doc.is_object() ? marker_doc.find("imageLayoutVersion") : marker_doc.end();
  if (marker_doc.is_discarded() || !marker_doc.is_object() || version == marker_doc.end() || !version->is_string()) {
    throw core::IntegrityError(core::display(marker) + " is not a valid oci-layout file (expected "
                                                       "{\"imageLayoutVersion\": \"1.0.0\"})");
  }
  if (version->get<std::string>() != "1.0.0") {
    throw core::IntegrityError(core::display(marker) + " has imageLayoutVersion " + version->get<std::string>() +
                               ", expected 1.0.0");
  }

  const fs::path index_path = m_dir / "index.json";
  if (!fs::is_regular_file(index_path, ec)) {
    throw core::IntegrityError("OCI image layout " + core::display(m_dir) + " has no index.json", layout_hint(m_dir));
  }
  AnyManifest parsed =
      parse_manifest(core::read_file(index_path, k_small_blob_limit), media_type::oci_index, core::display(index_path));
  auto* index = std::get_if<ImageIndex>(&parsed);
  if (!index) throw core::IntegrityError(core::display(index_path) + " is an image manifest, expected an image index");
  m_index = std::move(*index);
}

Descriptor LayoutReader::find(std::string_view ref) const {
  std::vector<std::string> names;
  std::vector<const Descriptor*> found;
  for (const auto& entry : m_index.manifests) {
    const std::string name = ref_name_of(entry);
    if (!name.empty()) names.push_back(name);
    if (!ref.empty() && name == ref) found.push_back(&entry);
  }
  std::string listed;
  for (const auto& name : names) listed += (listed.empty() ? "" : ", ") + name;
  if (listed.empty()) listed = "none";

  if (ref.empty()) {
    if (m_index.manifests.size() == 1) return m_index.manifests.front();
    if (m_index.manifests.empty()) {
      throw core::UsageError("OCI image layout " + core::display(m_dir) + " holds no image");
    }
    throw core::UsageError("OCI image layout " + core::display(m_dir) + " holds " +
                               std::to_string(m_index.manifests.size()) + " images; name one (ref names: " + listed +
                               ")",
                           "write the source as oci:" + core::display(m_dir) + ":REF");
  }
  if (found.size() == 1) return *found.front();
  if (found.size() > 1) {
    throw core::UsageError("ref name " + std::string(ref) + " names " + std::to_string(found.size()) +
                           " entries of OCI image layout " + core::display(m_dir) + ", expected one");
  }
  const std::string near = core::suggest(ref, names);
  throw core::UsageError("OCI image layout " + core::display(m_dir) + " has no image named " + std::string(ref) +
                             " (ref names: " + listed + ")",
                         near.empty() ? "use one of the ref names above"
                                      : "did you mean oci:" + core::display(m_dir) + ":" + near + "?");
}

std::string LayoutReader::read_blob(const Descriptor& descriptor, std::string_view what) const {
  const fs::path path = blob_path(descriptor.digest);
  const std::string name = "blob " + descriptor.digest.str() + (what.empty() ? "" : " (" + std::string(what) + ")");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    throw core::IntegrityError(name + " is missing from layout " + core::display(m_dir),
                               "the layout is incomplete; copy the image into it again");
  }
  const auto actual_size = static_cast<std::uint64_t>(st.st_size);
  if (actual_size != descriptor.size) {
    throw core::IntegrityError(name + " in " + core::display(m_dir) + " is " + std::to_string(actual_size) +
                                   " bytes, expected " + std::to_string(descriptor.size),
                               "the layout is damaged; copy the image into it again");
  }
  if (descriptor.size > k_small_blob_limit) {
    throw core::IntegrityError(name + " in " + core::display(m_dir) + " is " + std::to_string(descriptor.size) +
                               " bytes, over the limit of " + std::to_string(k_small_blob_limit) +
                               " bytes for manifests and configs");
  }
  std::string bytes = core::read_file(path, static_cast<std::size_t>(descriptor.size));
  if (bytes.size() != descriptor.size) {
    throw core::IntegrityError(name + " in " + core::display(m_dir) + " is " + std::to_string(bytes.size()) +
                               " bytes, expected " + std::to_string(descriptor.size));
  }
  const core::Digest actual = core::sha256_of(bytes);
  if (actual != descriptor.digest) {
    throw core::IntegrityError(name + " in " + core::display(m_dir) + " has digest " + actual.str() + ", expected " +
                                   descriptor.digest.str(),
                               "the layout is damaged; copy the image into it again");
  }
  return bytes;
}

fs::path LayoutReader::blob_path(const core::Digest& digest) const {
  return m_dir / "blobs" / "sha256" / std::string(digest.hex());
}

ResolvedImage load_layout_image(const fs::path& dir, std::string_view ref, const PlatformFilter& filter,
                                BlobStore& store, core::LogSink& log) {
  const LayoutReader reader(dir);
  const Descriptor root = reader.find(ref);
  const std::string what = "oci:" + core::display(dir) + (ref.empty() ? "" : ":" + std::string(ref));
  LayoutBlobs access(reader);
  ResolvedImage image = walk_image(access, root, filter, store, what, log);
  image.ref_name = ref_name_of(root);
  return image;
}

} // namespace ferry::oci

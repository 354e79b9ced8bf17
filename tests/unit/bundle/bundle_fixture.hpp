// Signed test bundles written with the real TarWriter, and helpers for reading them back,
// shared by the bundle reader tests.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "bundle/signing.hpp"
#include "bundle/tar_writer.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ferry::test {

// The text of the IntegrityError `fn` throws; fails the test when it throws none.
inline std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const core::IntegrityError& e) {
    return e.what();
  }
  FAIL("no IntegrityError");
  return {};
}

// What a test bundle holds: `images` images, each with its own config and
// `layers_per_image` layers of random bytes. Layer k (counted over all images) is
// `layer_size + k * 1237` bytes, so no two layers end at the same offset in a block.
struct BundleShape {
  int images = 1;
  int layers_per_image = 1;
  std::size_t layer_size = 300000;
  unsigned seed = 9;
};

// One tar entry of a bundle, in stream order.
struct BundleEntry {
  std::string path;
  std::string bytes;
  bundle::Compression compression = bundle::Compression::normal;
};

// Lets a test change the entries (their bytes, their order) after ferry.json was made
// and signed, before they are written: what a damaged or foreign bundle looks like.
using EntryEdit = std::function<void(std::vector<BundleEntry>& entries)>;

struct Built {
  std::string bytes; // the whole .tar.zst
  std::string layer; // image 0's first layer
  core::Digest layer_digest;
  core::Digest manifest_digest; // image 0's manifest
  bundle::TrustedKeys keys;
  std::string key_id;
  std::vector<BundleEntry> entries;            // as written (after the edit), ferry.json first
  std::map<std::string, std::string> listed;   // every entry ferry.json lists: path -> bytes
  std::vector<std::string> manifest_paths;     // in stream order, one per image
  std::vector<std::string> layer_paths;        // configs and layers, in stream order
  std::vector<std::string> image_refs;         // image i is "docker.io/library/app:<i+1>"
};

inline std::string blob_path(const core::Digest& digest) { return "blobs/sha256/" + std::string(digest.hex()); }

// A signed bundle as ferry pack orders it: ferry.json, ferry.json.sig, oci-layout,
// index.json, every image manifest, then each image's config and layers.
inline Built make_bundle(const BundleShape& shape, const EntryEdit& edit = {}) {
  Built b;
  const auto pair = bundle::generate_key_pair(bundle::KeyType::ed25519, std::nullopt);
  const auto key = bundle::PrivateKey::from_pem(pair.private_pem, std::nullopt, "test.key");
  b.keys.add(bundle::PublicKey::from_pem(pair.public_pem, "test.pub"));
  b.key_id = key.key_id();

  bundle::BundleDescriptor d;
  d.name = "demo";
  d.version = "1.0";
  d.created = bundle::rfc3339_utc(0);
  d.tool_version = "0.1.0";
  d.signer = bundle::SignerRecord{key.key_id(), "ed25519"};
  const std::string layout = R"({"imageLayoutVersion":"1.0.0"})";
  const std::string index = "{}";
  d.layout = {{"oci-layout", core::sha256_of(layout), layout.size()},
              {"index.json", core::sha256_of(index), index.size()}};

  std::vector<BundleEntry> manifests;
  std::vector<BundleEntry> blobs;
  std::vector<bundle::BlobRecord> manifest_records;
  std::vector<bundle::BlobRecord> blob_records;
  std::size_t layer_number = 0;
  for (int i = 0; i < shape.images; ++i) {
    // Image 0 keeps the empty config of the original single-image fixture.
    const bool first = i == 0;
    const std::string config = first ? "{}" : R"({"image":)" + std::to_string(i) + "}";
    const std::string config_type =
        first ? "application/vnd.oci.empty.v1+json" : "application/vnd.oci.image.config.v1+json";
    nlohmann::json layers = nlohmann::json::array();
    std::vector<BundleEntry> image_blobs{{blob_path(core::sha256_of(config)), config, bundle::Compression::normal}};
    std::uint64_t image_size = config.size();
    for (int l = 0; l < shape.layers_per_image; ++l, ++layer_number) {
      std::string layer =
          random_bytes(shape.layer_size + layer_number * 1237, shape.seed + static_cast<unsigned>(layer_number));
      const core::Digest digest = core::sha256_of(layer);
      layers.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                        {"digest", digest.str()},
                        {"size", layer.size()}});
      image_size += layer.size();
      if (first && l == 0) {
        b.layer = layer;
        b.layer_digest = digest;
      }
      image_blobs.push_back({blob_path(digest), std::move(layer), bundle::Compression::fastest});
    }
    const std::string manifest = nlohmann::json{{"schemaVersion", 2},
                                                {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                                {"config", {{"mediaType", config_type},
                                                            {"digest", core::sha256_of(config).str()},
                                                            {"size", config.size()}}},
                                                {"layers", layers}}
                                     .dump();
    const core::Digest manifest_digest = core::sha256_of(manifest);
    if (first) b.manifest_digest = manifest_digest;
    const std::string ref = "docker.io/library/app:" + std::to_string(i + 1);
    b.image_refs.push_back(ref);
    d.images.push_back({ref, "oci:./x:app" + std::to_string(i + 1), manifest_digest, std::nullopt,
                        "application/vnd.oci.image.manifest.v1+json", {"linux/amd64"}, manifest.size() + image_size});
    manifest_records.push_back({manifest_digest, manifest.size(), "application/vnd.oci.image.manifest.v1+json"});
    manifests.push_back({blob_path(manifest_digest), manifest, bundle::Compression::normal});
    for (std::size_t k = 0; k < image_blobs.size(); ++k) {
      const auto& blob = image_blobs[k];
      blob_records.push_back({core::sha256_of(blob.bytes), blob.bytes.size(),
                              k == 0 ? config_type : "application/vnd.oci.image.layer.v1.tar+gzip"});
      blobs.push_back(blob);
    }
  }
  d.blobs = manifest_records;
  d.blobs.insert(d.blobs.end(), blob_records.begin(), blob_records.end());
  const std::string descriptor = bundle::to_json(d);

  b.entries = {{"ferry.json", descriptor}, {"ferry.json.sig", core::base64_encode(key.sign(descriptor))},
               {"oci-layout", layout}, {"index.json", index}};
  b.entries.insert(b.entries.end(), manifests.begin(), manifests.end());
  b.entries.insert(b.entries.end(), blobs.begin(), blobs.end());
  for (std::size_t i = 2; i < b.entries.size(); ++i) b.listed[b.entries[i].path] = b.entries[i].bytes;
  for (const auto& m : manifests) b.manifest_paths.push_back(m.path);
  for (const auto& blob : blobs) b.layer_paths.push_back(blob.path);

  if (edit) edit(b.entries);
  core::StringSink out;
  bundle::TarWriter tar(out, {});
  for (const auto& e : b.entries) {
    tar.add({.path = e.path, .size = e.bytes.size(), .compression = e.compression}, e.bytes);
  }
  tar.finish();
  b.bytes = out.take();
  return b;
}

// The single-image bundle (one 300000-byte layer); `tamper` may change the manifest's
// JSON and the layer after ferry.json was signed.
inline Built build_bundle(const std::function<void(std::string& manifest_json, std::string& layer)>& tamper = {}) {
  EntryEdit edit;
  if (tamper) {
    edit = [&](std::vector<BundleEntry>& entries) {
      // ferry.json, ferry.json.sig, oci-layout, index.json, the manifest, the config, the layer.
      tamper(entries.at(4).bytes, entries.at(6).bytes);
    };
  }
  return make_bundle(BundleShape{}, edit);
}

// Keeps an entry's bytes and hands them to `done` on commit().
class CollectSink final : public bundle::EntrySink {
public:
  CollectSink(std::map<std::string, std::string>& done, std::string path) : m_done(done), m_path(std::move(path)) {}
  void write(const char* data, std::size_t size) override { m_bytes.append(data, size); }
  void commit() override { m_done[m_path] = std::move(m_bytes); }

private:
  std::map<std::string, std::string>& m_done;
  std::string m_path;
  std::string m_bytes;
};

} // namespace ferry::test

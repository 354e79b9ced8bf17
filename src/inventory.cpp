// The inventory pipeline: composes the registry client, the bundle head reader and the
// receipt writer.
// SPDX-License-Identifier: Apache-2.0
#include "inventory.hpp"

#include "bundle/volume_set.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "oci/manifest.hpp"
#include "oci/media_types.hpp"
#include "oci/reference.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace ferry {

namespace fs = std::filesystem;

fs::path receipt_signature_path(const fs::path& receipt) {
  fs::path sig = receipt;
  sig += ".sig";
  return sig;
}

namespace {

// What one repository's manifests need, as read.
struct ManifestNode {
  std::string media_type;
  std::uint64_t size = 0;
  bool readable = false;
  std::vector<core::Digest> children;         // index: child manifests
  std::vector<oci::Descriptor> blobs;         // image manifest: config and layers
};

struct RepositoryWalk {
  bundle::ReceiptRepository record;
  std::map<core::Digest, ManifestNode> nodes;
};

// The repositories push gives the images and charts of these bundles.
std::vector<std::string> repositories_of_bundles(const InventoryOptions& options) {
  std::set<std::string> names;
  for (const auto& file : options.bundles) {
    core::with_context("reading the head of " + core::display(file), [&] {
      // Only names are taken from ferry.json: an unverified one can at worst make the
      // inventory look at other repositories.
      const bundle::VolumeSet set = bundle::open_volume_set({file}, bundle::TrustedKeys{}, bundle::SignaturePolicy::skip);
      for (const auto& image : set.descriptor.images) {
        names.insert(options.registry.image_repository(oci::Reference::parse(image.ref)));
      }
      for (const auto& chart : set.descriptor.charts) names.insert(options.registry.chart_repository(chart.name));
    });
  }
  return {names.begin(), names.end()};
}

// The repositories to list, and where their names came from.
std::vector<std::string> repositories_to_list(const InventoryOptions& options, registry::Client& client, std::string& from,
                                              core::LogSink& log) {
  const std::string& prefix = options.registry.prefix;
  if (!options.repositories.empty()) {
    from = "--repos";
    std::set<std::string> names;
    for (std::string name : options.repositories) {
      while (!name.empty() && name.front() == '/') name.erase(name.begin());
      while (!name.empty() && name.back() == '/') name.pop_back();
      if (name.empty()) throw core::UsageError("--repos names an empty repository");
      const std::string full = prefix.empty() ? name : prefix + "/" + name;
      (void)oci::Reference::parse(options.registry.host + "/" + full); // a valid repository path
      names.insert(full);
    }
    return {names.begin(), names.end()};
  }
  if (!options.bundles.empty()) {
    from = "--bundle";
    return repositories_of_bundles(options);
  }
  from = "catalog";
  std::vector<std::string> out;
  for (const auto& name : client.list_repositories()) {
    if (prefix.empty() || name.rfind(prefix + "/", 0) == 0) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  log.info("catalog of " + options.registry.host + ": " + std::to_string(out.size()) + " repositories" +
           (prefix.empty() ? std::string() : " under " + prefix + "/"));
  return out;
}

// Reads every manifest the tags of `repo` name, children of indexes by digest.
void walk_repository(registry::Client& client, RepositoryWalk& walk, std::vector<bundle::ReceiptProblem>& problems,
                     core::LogSink& log) {
  const std::string& repo = walk.record.name;
  std::vector<std::string> tags = client.list_tags(repo);
  std::sort(tags.begin(), tags.end());
  if (tags.empty()) log.info("repository " + repo + " has no tags");
  std::vector<core::Digest> todo;
  for (const auto& tag : tags) {
    try {
      const registry::ManifestData data = client.get_manifest(repo, tag);
      walk.record.tags.emplace_back(tag, data.digest);
      if (walk.nodes.count(data.digest)) continue;
      ManifestNode& node = walk.nodes[data.digest];
      node.media_type = data.media_type;
      node.size = data.bytes.size();
      const oci::AnyManifest parsed = oci::parse_manifest(data.bytes, data.media_type, repo + ":" + tag);
      node.readable = true;
      if (const auto* m = std::get_if<oci::ImageManifest>(&parsed)) {
        node.blobs.push_back(m->config);
        node.blobs.insert(node.blobs.end(), m->layers.begin(), m->layers.end());
      } else {
        for (const auto& child : std::get<oci::ImageIndex>(parsed).manifests) {
          node.children.push_back(child.digest);
          todo.push_back(child.digest);
        }
      }
    } catch (const core::Error& e) {
      problems.push_back({repo, tag, std::string("cannot read the manifest: ") + e.what()});
      log.warning("inventory: " + repo + ":" + tag + ": cannot read the manifest: " + e.what());
    }
  }
  while (!todo.empty()) {
    const core::Digest digest = todo.back();
    todo.pop_back();
    if (walk.nodes.count(digest)) continue;
    ManifestNode& node = walk.nodes[digest];
    try {
      const registry::ManifestData data = client.get_manifest(repo, digest.str());
      node.media_type = data.media_type;
      node.size = data.bytes.size();
      const oci::AnyManifest parsed = oci::parse_manifest(data.bytes, data.media_type, repo + "@" + digest.str());
      node.readable = true;
      if (const auto* m = std::get_if<oci::ImageManifest>(&parsed)) {
        node.blobs.push_back(m->config);
        node.blobs.insert(node.blobs.end(), m->layers.begin(), m->layers.end());
      } else {
        for (const auto& child : std::get<oci::ImageIndex>(parsed).manifests) {
          node.children.push_back(child.digest);
          todo.push_back(child.digest);
        }
      }
    } catch (const core::Error& e) {
      problems.push_back({repo, digest.str(), std::string("cannot read the manifest: ") + e.what()});
      log.warning("inventory: " + repo + "@" + digest.str() + ": cannot read the manifest: " + e.what());
    }
  }
}

// HEAD for every (repository, blob) pair, `jobs` at a time. A failed request (not a
// plain "absent") counts as absent and is reported by the caller.
std::set<std::pair<std::string, core::Digest>> check_blobs(registry::Client& client,
                                                           const std::vector<std::pair<std::string, core::Digest>>& pairs,
                                                           const std::map<core::Digest, std::uint64_t>& sizes, int jobs,
                                                           core::ProgressSink& progress,
                                                           std::map<std::pair<std::string, core::Digest>, std::string>& errors) {
  std::vector<char> present(pairs.size(), 0);
  std::atomic<std::size_t> next{0};
  std::uint64_t total = 0;
  for (const auto& pair : pairs) total += sizes.at(pair.second);
  std::uint64_t done = 0; // bytes of the blobs checked, under `mutex`
  std::mutex mutex;
  auto worker = [&] {
    for (;;) {
      const std::size_t i = next++;
      if (i >= pairs.size()) return;
      try {
        present[i] = client.blob_exists(pairs[i].first, pairs[i].second) ? 1 : 0;
      } catch (const core::Error& e) {
        std::lock_guard lock(mutex);
        errors[pairs[i]] = e.what();
      }
      std::lock_guard lock(mutex);
      done += sizes.at(pairs[i].second);
      progress.progress({"inventory", pairs[i].second.str(), done, total});
    }
  };
  std::vector<std::thread> pool;
  const std::size_t threads = std::min<std::size_t>(static_cast<std::size_t>(std::max(1, jobs)), pairs.size());
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  if (threads > 0) worker();
  for (auto& t : pool) t.join();
  std::set<std::pair<std::string, core::Digest>> out;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (present[i]) out.insert(pairs[i]);
  }
  return out;
}

// Whether manifest `digest` of `walk` and everything under it is in the registry;
// `confirmed` memoises, `visiting` guards against an index naming itself.
bool confirm(const RepositoryWalk& walk, const core::Digest& digest,
             const std::set<std::pair<std::string, core::Digest>>& present, std::map<core::Digest, bool>& confirmed,
             std::set<core::Digest>& visiting) {
  if (const auto it = confirmed.find(digest); it != confirmed.end()) return it->second;
  const auto node = walk.nodes.find(digest);
  if (node == walk.nodes.end() || !node->second.readable || !visiting.insert(digest).second) return false;
  bool ok = true;
  for (const auto& child : node->second.children) ok = confirm(walk, child, present, confirmed, visiting) && ok;
  for (const auto& blob : node->second.blobs) ok = present.count({walk.record.name, blob.digest}) > 0 && ok;
  visiting.erase(digest);
  confirmed[digest] = ok;
  return ok;
}

} // namespace

InventoryResult take_inventory(const InventoryOptions& options, core::LogSink& log, core::ProgressSink& progress) {
  std::optional<bundle::PrivateKey> key;
  if (!options.key.empty()) {
    key = core::with_context("loading signing key " + core::display(options.key),
                             [&] { return bundle::PrivateKey::load(options.key, options.passphrase); });
  }
  const fs::path output_dir = options.output.has_parent_path() ? options.output.parent_path() : fs::path(".");
  if (!fs::is_directory(output_dir)) {
    throw core::UsageError("output directory " + core::display(output_dir) + " does not exist", "create it first");
  }
  InventoryResult result;
  bundle::Receipt& receipt = result.receipt;
  receipt.registry = options.registry.str();
  receipt.created = bundle::rfc3339_utc(options.created);
  receipt.tool_version = options.tool_version;
  if (key) receipt.signer = bundle::SignerRecord{key->key_id(), std::string(bundle::to_string(key->type()))};

  core::with_context("taking the inventory of " + options.registry.str(), [&] {
    registry::Client client(options.registry.host, options.client, log);
    const std::vector<std::string> names = repositories_to_list(options, client, result.repositories_from, log);
    std::vector<RepositoryWalk> walks;
    for (const auto& name : names) {
      RepositoryWalk walk;
      walk.record.name = name;
      core::with_context("listing repository " + name, [&] { walk_repository(client, walk, receipt.problems, log); });
      walks.push_back(std::move(walk));
    }

    std::vector<std::pair<std::string, core::Digest>> pairs;
    std::map<core::Digest, std::uint64_t> sizes;
    for (const auto& walk : walks) {
      std::set<core::Digest> blobs;
      for (const auto& [digest, node] : walk.nodes) {
        for (const auto& b : node.blobs) {
          if (blobs.insert(b.digest).second) pairs.emplace_back(walk.record.name, b.digest);
          sizes.emplace(b.digest, b.size);
        }
      }
    }
    std::map<std::pair<std::string, core::Digest>, std::string> errors;
    const auto present = check_blobs(client, pairs, sizes, options.jobs, progress, errors);

    std::map<core::Digest, std::set<std::string>> holders;
    for (auto& walk : walks) {
      std::map<core::Digest, bool> confirmed;
      for (const auto& [digest, node] : walk.nodes) {
        std::set<core::Digest> visiting;
        if (!confirm(walk, digest, present, confirmed, visiting)) {
          if (!node.readable) continue; // reported when it could not be read
          for (const auto& b : node.blobs) {
            if (present.count({walk.record.name, b.digest})) continue;
            const auto error = errors.find({walk.record.name, b.digest});
            const std::string problem = "blob " + b.digest.str() + " of manifest " + digest.str() +
                                        (error == errors.end() ? " is not in the repository (HEAD)"
                                                               : " could not be checked: " + error->second);
            receipt.problems.push_back({walk.record.name, digest.str(), problem});
            log.warning("inventory: " + walk.record.name + ": " + problem);
          }
          continue;
        }
        walk.record.manifests.push_back(bundle::ReceiptManifest{digest, node.media_type, node.size});
        for (const auto& b : node.blobs) holders[b.digest].insert(walk.record.name);
      }
      receipt.repositories.push_back(std::move(walk.record));
    }
    for (const auto& [digest, repos] : holders) {
      receipt.blobs.push_back(bundle::ReceiptBlob{digest, sizes[digest], {repos.begin(), repos.end()}});
      result.blob_bytes += sizes[digest];
    }
  });

  const std::string json = bundle::to_json(receipt);
  const fs::path sig = receipt_signature_path(options.output);
  if (key) {
    const std::string signature = core::base64_encode(key->sign(json));
    core::write_file_atomic(options.output, json);
    core::write_file_atomic(sig, signature);
    result.signature_path = sig;
  } else {
    // A signature of an earlier receipt would not match this one.
    std::error_code ignored;
    fs::remove(sig, ignored);
    core::write_file_atomic(options.output, json);
  }
  result.receipt_path = options.output;
  return result;
}

} // namespace ferry

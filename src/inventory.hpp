// `ferry inventory`: what the internal registry holds, written as a receipt
// (bundle/receipt.hpp) for the next differential pack (docs/differential.md).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/receipt.hpp"
#include "core/log.hpp"
#include "image_push.hpp"
#include "registry/client.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

struct InventoryOptions {
  PushTarget registry; // HOST[:PORT][/PREFIX]
  // --repos: repository paths under the prefix, as push names them ("library/nginx",
  // "charts/demo"). Taken before `bundles`; with neither, the registry's catalog under the
  // prefix.
  std::vector<std::string> repositories;
  // --bundle: the repositories push gives these bundles' images and charts (their
  // ferry.json is read; its signature is not checked: only names are taken from it).
  std::vector<std::filesystem::path> bundles;
  registry::ClientOptions client;
  int jobs = 4;             // parallel HEAD requests
  std::int64_t created = 0; // Unix time for `created`
  std::string tool_version;
  std::filesystem::path output; // RECEIPT.json; RECEIPT.json.sig beside it when signed
  std::filesystem::path key;    // empty: unsigned
  std::optional<std::string> passphrase;
};

struct InventoryResult {
  bundle::Receipt receipt;
  std::filesystem::path receipt_path;
  std::filesystem::path signature_path; // empty when unsigned
  std::string repositories_from;        // "--repos", "--bundle" or "catalog"
  std::uint64_t blob_bytes = 0;         // sum of the sizes of the blobs listed
};

// Lists every tag of each repository, reads the manifests they name (indexes and their
// children by digest), and HEAD-checks every config and layer in its repository, `jobs`
// at a time. A manifest that cannot be read, or whose blob a HEAD does not find, is a
// problem in the receipt (and a warning): it is not listed as confirmed, and its blobs
// only where another confirmed manifest needs them. A repository without tags is listed
// empty. Writes the receipt atomically, and with a key its signature (base64, as
// ferry.json.sig) to RECEIPT.json.sig, removing a stale one otherwise. UsageError for a
// key that cannot be loaded or an output directory that does not exist; RegistryError
// when the registry cannot be listed at all (no catalog, refused); per-manifest failures
// are problems, not errors.
InventoryResult take_inventory(const InventoryOptions& options, core::LogSink& log, core::ProgressSink& progress);

// RECEIPT.json.sig for RECEIPT.json.
std::filesystem::path receipt_signature_path(const std::filesystem::path& receipt);

} // namespace ferry

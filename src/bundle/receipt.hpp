// RECEIPT.json: what an internal registry holds (`ferry inventory`), the best base for a
// differential pack (DESIGN §2 "Differential", docs/differential.md).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "bundle/signing.hpp"
#include "core/digest.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::bundle {

inline constexpr int k_receipt_version = 1;
inline constexpr std::string_view k_receipt_media_type = "application/vnd.ferry.receipt.v1+json";
// Receipts are read into memory: larger ones are refused.
inline constexpr std::size_t k_max_receipt_size = 256u << 20;

// A manifest or index the inventory read and whose blobs (and child manifests) it found
// in the registry.
struct ReceiptManifest {
  core::Digest digest;
  std::string media_type;
  std::uint64_t size = 0;
};

struct ReceiptRepository {
  std::string name; // as the registry names it (the prefix included)
  std::vector<std::pair<std::string, core::Digest>> tags; // every tag -> manifest digest, by tag
  std::vector<ReceiptManifest> manifests;                 // confirmed ones, by digest
};

// A config or layer confirmed present (HEAD) in each of `repositories`.
struct ReceiptBlob {
  core::Digest digest;
  std::uint64_t size = 0;
  std::vector<std::string> repositories; // sorted
};

// Something the inventory could not confirm: a manifest it could not read, a blob a HEAD
// did not find. The manifests concerned are not in `manifests`, their blobs not listed
// (unless another confirmed manifest has them).
struct ReceiptProblem {
  std::string repository;
  std::string reference; // a tag or digest
  std::string problem;
};

struct Receipt {
  int receipt_version = k_receipt_version;
  std::string registry; // HOST[:PORT][/PREFIX] as given to `ferry inventory`
  std::string created;  // RFC 3339 UTC
  std::string tool_version;
  std::optional<SignerRecord> signer;
  std::vector<ReceiptRepository> repositories; // by name
  std::vector<ReceiptBlob> blobs;              // by digest
  std::vector<ReceiptProblem> problems;

  const ReceiptBlob* find_blob(const core::Digest& digest) const;
};

// Canonical bytes: compact JSON, keys sorted, a trailing newline (what a signature
// covers, as for ferry.json). Lists are written in the order they have; inventory sorts them.
std::string to_json(const Receipt& receipt);

// Parses and checks a receipt; `what` names it in messages. IntegrityError naming the
// field: not JSON, a receiptVersion other than 1 (saying a newer ferry is needed), a
// missing or mistyped field, a digest that is not sha256, a blob listed twice.
Receipt parse_receipt(std::string_view bytes, const std::string& what);

// Checks `signature_text` (base64, as in RECEIPT.json.sig) over the exact `bytes` of a
// receipt with the trusted keys, then that the receipt's `signer` names the key that
// verified it. Returns that key's id. IntegrityError naming `what`: not base64, no
// trusted key verifies it (the claimed signer and the trusted ids are named), a signer
// field that names another key or algorithm.
std::string verify_receipt_signature(std::string_view bytes, std::string_view signature_text, const TrustedKeys& trusted,
                                     const std::string& what);

} // namespace ferry::bundle

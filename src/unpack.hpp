// The isolated-side stages: verify, inspect and extract a bundle (push, values and
// upgrade come with later stages of `ferry unpack`).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "core/log.hpp"

#include <cstdint>
#include <filesystem>
#include <vector>

namespace ferry {

// Which signers an operator trusts. Without --insecure-skip-signature at least one
// public key is required (inspect alone may run without one, and says so).
struct TrustOptions {
  std::vector<std::filesystem::path> pubkeys;
  bool insecure_skip_signature = false;
};

struct VerifyResult {
  bundle::BundleDescriptor descriptor;
  bundle::SignatureCheck signature;
  bundle::StreamStats stats;
  std::uint64_t bundle_size = 0;
};

// Reads the whole bundle once: signature, then every entry against the blob table.
// IntegrityError (exit 3) on any failure, naming the entry and what uses it.
VerifyResult verify_bundle(const std::filesystem::path& bundle, const TrustOptions& trust, core::LogSink& log,
                           core::ProgressSink& progress);

struct InspectResult {
  bundle::BundleDescriptor descriptor;
  bundle::SignatureCheck signature;
  std::uint64_t bundle_size = 0;
};

// Reads only the head of the stream (ferry.json and its signature). With trusted keys
// the signature is checked and a bad one refused; without, the result says it was not.
InspectResult inspect_bundle(const std::filesystem::path& bundle, const TrustOptions& trust, core::LogSink& log);

struct ExtractResult {
  VerifyResult verify;
  std::filesystem::path directory;
};

// Verifies the bundle while writing it out as an OCI image layout (plus ferry.json and
// ferry.json.sig, so the directory equals the bundle's tar contents). Written into a
// temporary directory beside `directory` and renamed onto it only when everything
// verified; `directory` must not exist or be empty.
ExtractResult extract_bundle(const std::filesystem::path& bundle, const std::filesystem::path& directory,
                             const TrustOptions& trust, core::LogSink& log, core::ProgressSink& progress);

} // namespace ferry

// Rendering bundle descriptors and verification results for humans and for JSON.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <vector>

namespace ferry {
struct GivenFiles; // unpack.hpp
} // namespace ferry

namespace ferry::values {
struct Change;
struct Skipped;
struct RulePlaced;
} // namespace ferry::values

namespace ferry::cli {

class Output;

// Text: name, version, signer, sizes (a differential bundle: its bases and what they
// save), then every image, chart and file.
void print_bundle(Output& out, const bundle::BundleDescriptor& d, const bundle::SignatureCheck& signature,
                  std::uint64_t bundle_size);

// The same as a JSON object (stable keys, for automation): `bases` (empty for a full
// bundle) and `differential` (null, or omittedBlobs, omittedBytes, contentBytes,
// savedPercent); `blobs` and `blobBytes` count what the stream carries.
nlohmann::json bundle_json(const bundle::BundleDescriptor& d, const bundle::SignatureCheck& signature,
                           std::uint64_t bundle_size);

// The files a command read for a bundle: nothing for a one-file bundle; for a split one,
// a line with the volumes given (each `verb`: "verified", "given") and one naming those not
// given.
void print_given_files(Output& out, const GivenFiles& files, const char* verb);
// {"count", "limit", "given": [{"volume", "file", "size"}], "missing": [{"volume", "file"}]},
// or null for a one-file bundle.
nlohmann::json given_files_json(const GivenFiles& files);

// "verified with KEY (sha256:…)", "NOT checked (--insecure-skip-signature)", …
std::string signature_text(const bundle::SignatureCheck& signature);

// A values report (`ferry values`, the values stage of unpack and upgrade) as JSON arrays:
// changes {path, old, new, detector, image}, skipped {path, value, reason}, images placed
// by rules {image, rule, path}.
nlohmann::json changes_json(const std::vector<values::Change>& changes);
nlohmann::json skipped_json(const std::vector<values::Skipped>& skipped);
nlohmann::json by_rules_json(const std::vector<values::RulePlaced>& by_rules);

// Prints a JSON value on stdout (one line).
void print_json(Output& out, const nlohmann::json& value);

} // namespace ferry::cli

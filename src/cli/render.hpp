// Rendering bundle descriptors and verification results for humans and for JSON.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>

namespace ferry::cli {

class Output;

// Text: name, version, signer, sizes, then every image, chart and file.
void print_bundle(Output& out, const bundle::BundleDescriptor& d, const bundle::SignatureCheck& signature,
                  std::uint64_t bundle_size);

// The same as a JSON object (stable keys, for automation).
nlohmann::json bundle_json(const bundle::BundleDescriptor& d, const bundle::SignatureCheck& signature,
                           std::uint64_t bundle_size);

// "verified with KEY (sha256:…)", "NOT checked (--insecure-skip-signature)", …
std::string signature_text(const bundle::SignatureCheck& signature);

// Prints a JSON value on stdout (one line).
void print_json(Output& out, const nlohmann::json& value);

} // namespace ferry::cli

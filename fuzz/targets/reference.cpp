// Fuzz target: image references (oci::Reference), skopeo-style image sources, registry
// locations (--registry HOST[:PORT][/PREFIX]) and the chart repository URLs ferry
// derives from index.yaml entries.
// SPDX-License-Identifier: Apache-2.0
#include "chart/repo_index.hpp"
#include "core/digest.hpp"
#include "core/error.hpp"
#include "oci/reference.hpp"
#include "registry/client.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  try {
    const oci::Reference ref = oci::Reference::parse(input);
    // What str() prints is what ferry writes into ferry.json and index.json, and reads
    // back at unpack: it must parse to the same reference.
    const std::string text = ref.str();
    if (!(oci::Reference::parse(text) == ref)) std::abort();
    if (ref.name().empty() || ref.repository().empty()) std::abort();
  } catch (const core::Error&) {
  }
  try {
    (void)oci::ImageSource::parse(input);
  } catch (const core::Error&) {
  }
  (void)core::Digest::try_parse(input);
  (void)registry::Location::split(input);

  // A chart repository URL and an index entry's URL, one per line.
  const std::size_t newline = input.find('\n');
  const std::string repository(input.substr(0, newline));
  const std::string entry(newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1));
  try {
    (void)chart::index_url(repository);
    (void)chart::chart_url(repository, entry);
  } catch (const core::Error&) {
  }
  return 0;
}

// Fuzz target: a Helm repository's index.yaml (chart::RepositoryIndex) and choosing a
// version from it with a SemVer constraint, as pack does for `repo: https://…` charts.
// The first line of the input is "NAME CONSTRAINT", the rest the index.
// SPDX-License-Identifier: Apache-2.0
#include "chart/repo_index.hpp"
#include "chart/semver.hpp"
#include "core/error.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view first = input.substr(0, newline);
  const std::size_t space = first.find(' ');
  const std::string name(first.substr(0, space));
  const std::string constraint(space == std::string_view::npos ? std::string_view{} : first.substr(space + 1));
  const std::string_view yaml = newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1);

  try {
    (void)chart::Version::parse(constraint);
    (void)chart::Constraint::parse(constraint);
  } catch (const core::Error&) {
  }
  try {
    const chart::RepositoryIndex index = chart::RepositoryIndex::parse(yaml, "https://charts.example.com/index.yaml");
    // Entries without a version or a URL are promised to be skipped.
    for (const chart::IndexEntry* entry : index.versions_of(name)) {
      if (entry == nullptr || entry->urls.empty() || entry->version.empty()) std::abort();
      (void)chart::chart_url("https://charts.example.com/", entry->urls.front());
    }
    for (const bool prereleases : {false, true}) {
      try {
        (void)index.select(name, constraint, prereleases);
      } catch (const core::Error&) {
      }
    }
  } catch (const core::Error&) {
  }
  return 0;
}

// Chart versions and version constraints with Helm 3's semantics (Helm uses
// Masterminds/semver v3: `helm pull --version`, `dependencies[].version`).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::chart {

// A semantic version as Helm reads one: SemVer 2 with a leading "v" allowed and
// missing minor/patch read as 0 ("1.2" = "1.2.0"), as Masterminds' NewVersion does.
struct Version {
  std::uint64_t major = 0;
  std::uint64_t minor = 0;
  std::uint64_t patch = 0;
  std::vector<std::string> prerelease; // dot-separated identifiers after '-'
  std::string build;                   // after '+'; ignored in comparisons
  std::string original;                // the text as given

  // nullopt when `text` is not a version.
  static std::optional<Version> parse(std::string_view text);
  bool is_prerelease() const noexcept { return !prerelease.empty(); }
  // SemVer 2 precedence (§11): numeric identifiers numerically, alphanumeric ones in
  // ASCII order, numeric below alphanumeric, a release above its pre-releases; build
  // metadata ignored. <0, 0, >0.
  int compare(const Version& other) const;
  // "1.2.3-rc.1+build" (normalised: what Helm prints).
  std::string str() const;
};

// A constraint such as "^5.2.0", "~1.2", ">=1.0 <2.0", "1.2.x", "1.2 - 1.4.5",
// ">=1.0, <2.0 || 3.x", "*", or an exact version. Semantics of Masterminds/semver v3
// (Helm 3), including: comma or space is AND, "||" is OR; x/X/* wildcards; ^ and ~ ranges
// (^0.x and ^0.0.x as that library reads them); hyphen ranges; and pre-releases, which
// a constraint only matches when it names a pre-release itself (or `include_prereleases`
// is given, as `helm pull --devel` does).
class Constraint {
public:
  // UsageError naming `text` and what is wrong with it.
  static Constraint parse(std::string_view text);

  bool allows(const Version& version, bool include_prereleases = false) const;
  const std::string& str() const noexcept { return m_text; }

private:
  // One comparator as Masterminds v3 keeps it: the operator as written (~ and ^ included,
  // a bare version is `eq`), the version with wildcards and missing parts read as 0, and
  // the first part that was a wildcard or missing. Each operator reads that last field in
  // its own way ("1.2" is ~1.2 under `eq`, but >1.2 means >=1.3.0), so it cannot be
  // expanded into plain comparisons ("!=1.2.x" alone would need an OR).
  struct Term {
    enum class Op { eq, ne, gt, ge, lt, le, tilde, caret } op = Op::eq;
    enum class Wild { none, patch, minor, major } wild = Wild::none;
    Version version;
  };
  // An AND group; pre-releases are considered for the whole group when any of its terms
  // names one (Masterminds v3.4).
  struct Group {
    std::vector<Term> terms;
    bool names_prerelease = false;
  };
  static bool term_allows(const Term& term, const Version& version);

  std::string m_text;
  std::vector<Group> m_any; // OR of ANDs
  friend class ConstraintParser;
};

// The highest version in `versions` that `constraint` allows (texts that are not
// versions are skipped); nullopt when none does.
std::optional<Version> best_match(const Constraint& constraint, const std::vector<std::string>& versions,
                                  bool include_prereleases = false);

} // namespace ferry::chart

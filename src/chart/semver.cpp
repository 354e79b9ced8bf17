// Chart versions and version constraints read as Masterminds/semver v3.4 reads them (Helm 3).
// SPDX-License-Identifier: Apache-2.0
#include "chart/semver.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <system_error>
#include <utility>

namespace ferry::chart {
namespace {

// RE2's \s: the spaces Masterminds' constraint grammar allows between tokens.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// SemVer identifier characters, [0-9A-Za-z-] (§9, §10).
bool is_identifier_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

bool is_wildcard(std::string_view part) {
  return part == "x" || part == "X" || part == "*";
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

// A decimal number that fits 64 bits, as Go's strconv.ParseUint reads one; leading zeros
// are accepted (NewVersion coerces "01.2.3" to 1.2.3).
std::optional<std::uint64_t> to_number(std::string_view digits) {
  if (!all_digits(digits)) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const char* end = digits.data() + digits.size();
  const auto result = std::from_chars(digits.data(), end, value);
  if (result.ec != std::errc() || result.ptr != end) {
    return std::nullopt;
  }
  return value;
}

std::vector<std::string> split_dots(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t dot = text.find('.'); dot != std::string_view::npos; dot = text.find('.', start)) {
    out.emplace_back(text.substr(start, dot - start));
    start = dot + 1;
  }
  out.emplace_back(text.substr(start));
  return out;
}

// The first numeric pre-release identifier with a leading zero ("01"), which SemVer §9
// forbids and Masterminds rejects; empty when there is none.
std::string leading_zero_identifier(const std::vector<std::string>& identifiers) {
  for (const auto& id : identifiers) {
    if (id.size() > 1 && id[0] == '0' && all_digits(id)) {
      return id;
    }
  }
  return {};
}

// A version as written, before its parts are read as numbers: Masterminds' loose version
// regex (`v?N(.N)?(.N)?(-pre)?(+build)?`) and, with wildcards, its constraint-version regex,
// whose parts may also be x, X or *.
struct VersionText {
  std::string_view parts[3];
  int part_count = 0;
  std::string_view prerelease; // without the '-'
  std::string_view build;      // without the '+'
};

// Dot-separated identifiers ([0-9A-Za-z-]+) from s[i]; stops before a '.' that no identifier
// follows. Returns the text read (empty when s[i] starts no identifier).
std::string_view scan_identifiers(std::string_view s, std::size_t& i) {
  const std::size_t start = i;
  while (i < s.size() && is_identifier_char(s[i])) {
    ++i;
    while (i < s.size() && is_identifier_char(s[i])) {
      ++i;
    }
    if (i + 1 < s.size() && s[i] == '.' && is_identifier_char(s[i + 1])) {
      ++i;
    } else {
      break;
    }
  }
  return s.substr(start, i - start);
}

// Reads a version from s[i] as far as it goes; nullopt (i unchanged) when no first part
// is there. The caller decides what may follow.
std::optional<VersionText> scan_version(std::string_view s, std::size_t& i, bool wildcards) {
  const auto part_char = [wildcards](char c) {
    return is_digit(c) || (wildcards && (c == 'x' || c == 'X' || c == '*'));
  };
  std::size_t pos = i;
  if (pos < s.size() && s[pos] == 'v') {
    ++pos;
  }
  VersionText out;
  while (out.part_count < 3) {
    if (out.part_count > 0) {
      if (pos + 1 < s.size() && s[pos] == '.' && part_char(s[pos + 1])) {
        ++pos;
      } else {
        break;
      }
    }
    const std::size_t start = pos;
    while (pos < s.size() && part_char(s[pos])) {
      ++pos;
    }
    if (pos == start) {
      return std::nullopt; // only possible for the first part
    }
    out.parts[out.part_count++] = s.substr(start, pos - start);
  }
  if (pos + 1 < s.size() && s[pos] == '-' && is_identifier_char(s[pos + 1])) {
    ++pos;
    out.prerelease = scan_identifiers(s, pos);
  }
  if (pos + 1 < s.size() && s[pos] == '+' && is_identifier_char(s[pos + 1])) {
    ++pos;
    out.build = scan_identifiers(s, pos);
  }
  i = pos;
  return out;
}

// SemVer §11.4 for one identifier, as Masterminds compares them: numbers (those that fit
// 64 bits, like its ParseUint test) numerically and below words; words in ASCII order.
int compare_identifier(const std::string& a, const std::string& b) {
  if (a == b) {
    return 0;
  }
  const auto na = to_number(a);
  const auto nb = to_number(b);
  if (na && nb) {
    return *na < *nb ? -1 : (*na > *nb ? 1 : 0);
  }
  if (na) {
    return -1;
  }
  if (nb) {
    return 1;
  }
  return a < b ? -1 : 1;
}

const char* const k_constraint_hint =
    "write an exact version (1.2.3) or a range such as ^1.2, ~1.2.3, 1.2.x, \">=1.0 <2.0\" or \"1.0 - 2.0\" "
    "(join alternatives with ||), as Helm reads them";

} // namespace

std::optional<Version> Version::parse(std::string_view text) {
  std::size_t i = 0;
  const auto scanned = scan_version(text, i, false);
  if (!scanned || i != text.size()) {
    return std::nullopt;
  }
  Version v;
  std::uint64_t* const fields[3] = {&v.major, &v.minor, &v.patch};
  for (int k = 0; k < scanned->part_count; ++k) {
    const auto n = to_number(scanned->parts[k]);
    if (!n) {
      return std::nullopt; // over 64 bits
    }
    *fields[k] = *n;
  }
  if (!scanned->prerelease.empty()) {
    v.prerelease = split_dots(scanned->prerelease);
    if (!leading_zero_identifier(v.prerelease).empty()) {
      return std::nullopt;
    }
  }
  v.build = std::string(scanned->build);
  v.original = std::string(text);
  return v;
}

int Version::compare(const Version& other) const {
  if (major != other.major) {
    return major < other.major ? -1 : 1;
  }
  if (minor != other.minor) {
    return minor < other.minor ? -1 : 1;
  }
  if (patch != other.patch) {
    return patch < other.patch ? -1 : 1;
  }
  // §11.3: a release is above its pre-releases.
  if (prerelease.empty() || other.prerelease.empty()) {
    return prerelease.empty() == other.prerelease.empty() ? 0 : (prerelease.empty() ? 1 : -1);
  }
  // §11.4: identifier by identifier; a longer list wins when all before are equal.
  const std::size_t n = std::min(prerelease.size(), other.prerelease.size());
  for (std::size_t k = 0; k < n; ++k) {
    if (const int d = compare_identifier(prerelease[k], other.prerelease[k]); d != 0) {
      return d;
    }
  }
  if (prerelease.size() == other.prerelease.size()) {
    return 0;
  }
  return prerelease.size() < other.prerelease.size() ? -1 : 1;
}

std::string Version::str() const {
  std::string out = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  for (std::size_t k = 0; k < prerelease.size(); ++k) {
    out += (k == 0 ? "-" : ".") + prerelease[k];
  }
  if (!build.empty()) {
    out += "+" + build;
  }
  return out;
}

// Reads constraint text into Constraint's groups. Masterminds first rewrites each hyphen
// range "A - B" to ">= A, <= B " in the whole text, splits it on "||", checks each part
// against one regex and then reads its comparators; this parser reads the same language in
// one pass and says where it goes wrong.
class ConstraintParser {
public:
  explicit ConstraintParser(std::string_view text) : m_text(text) {}

  Constraint parse() {
    Constraint c;
    c.m_text = std::string(m_text);
    if (std::all_of(m_text.begin(), m_text.end(), is_space)) {
      // Helm reads an empty version as "*" (repo.IndexFile.Get); Masterminds would refuse it.
      Constraint::Group any;
      any.terms.push_back({Constraint::Term::Op::eq, Constraint::Term::Wild::major, Version{}});
      c.m_any.push_back(std::move(any));
      return c;
    }
    std::size_t start = 0;
    while (true) {
      const std::size_t bar = m_text.find("||", start);
      const std::string_view part = m_text.substr(start, bar == std::string_view::npos ? bar : bar - start);
      if (std::all_of(part.begin(), part.end(), is_space)) {
        fail("an alternative next to \"||\" is empty");
      }
      c.m_any.push_back(parse_group(part));
      if (bar == std::string_view::npos) {
        break;
      }
      start = bar + 2;
    }
    return c;
  }

private:
  using Term = Constraint::Term;
  using Op = Term::Op;
  using Wild = Term::Wild;

  // How the comparator being read was separated from the one before it.
  enum class Separator { none, comma, space };

  [[noreturn]] void fail(const std::string& what) const {
    throw core::UsageError("version constraint \"" + std::string(m_text) + "\" is not valid: " + what,
                           k_constraint_hint);
  }

  static void skip_spaces(std::string_view s, std::size_t& i) {
    while (i < s.size() && is_space(s[i])) {
      ++i;
    }
  }

  // The text from i to the next space, for messages.
  static std::string word_at(std::string_view s, std::size_t i) {
    std::size_t end = i;
    while (end < s.size() && !is_space(s[end])) {
      ++end;
    }
    return std::string(s.substr(i, end - i));
  }

  // Masterminds' operators; a missing one is `eq`. Longest first: "=>" is >=, "~>" is ~.
  static Op read_operator(std::string_view s, std::size_t& i) {
    static const std::pair<std::string_view, Op> k_ops[] = {
        {"!=", Op::ne}, {">=", Op::ge}, {"=>", Op::ge}, {"<=", Op::le}, {"=<", Op::le}, {"~>", Op::tilde},
        {">", Op::gt},  {"<", Op::lt},  {"=", Op::eq},  {"~", Op::tilde}, {"^", Op::caret},
    };
    for (const auto& [text, op] : k_ops) {
      if (s.substr(i, text.size()) == text) {
        i += text.size();
        return op;
      }
    }
    return Op::eq;
  }

  // A version of a comparator from s[i], wildcards and missing parts noted as Masterminds'
  // parseConstraint does: the first wildcard or missing part makes it and every later part
  // 0 (later parts are not even read: "1.x.5" is 1.x); a pre-release stays, build metadata
  // is kept only on a full version.
  Term read_version(std::string_view s, std::size_t& i, Op op, std::string_view after) const {
    const auto scanned = scan_version(s, i, true);
    if (!scanned) {
      const std::string expected = after.empty() ? "expected a version" : "expected a version " + std::string(after);
      fail(i < s.size() ? expected + " at \"" + word_at(s, i) + "\"" : expected + " at the end");
    }
    Term term;
    term.op = op;
    int exact_parts = 3;
    if (is_wildcard(scanned->parts[0])) {
      term.wild = Wild::major;
      exact_parts = 0;
    } else if (scanned->part_count < 2 || is_wildcard(scanned->parts[1])) {
      term.wild = Wild::minor;
      exact_parts = 1;
    } else if (scanned->part_count < 3 || is_wildcard(scanned->parts[2])) {
      term.wild = Wild::patch;
      exact_parts = 2;
    }
    std::uint64_t* const fields[3] = {&term.version.major, &term.version.minor, &term.version.patch};
    for (int k = 0; k < exact_parts; ++k) {
      const std::string_view part = scanned->parts[k];
      const auto n = to_number(part);
      if (!n) {
        fail(all_digits(part) ? "\"" + std::string(part) + "\" is too large for a version number"
                              : "\"" + std::string(part) + "\" is neither a number nor a wildcard (x, X or *)");
      }
      *fields[k] = *n;
    }
    if (!scanned->prerelease.empty()) {
      term.version.prerelease = split_dots(scanned->prerelease);
      if (const auto bad = leading_zero_identifier(term.version.prerelease); !bad.empty()) {
        fail("pre-release identifier \"" + bad + "\" has a leading zero");
      }
    }
    if (term.wild == Wild::none) {
      term.version.build = std::string(scanned->build);
    }
    return term;
  }

  // One AND group: comparators separated by spaces or a comma (with spaces around it, if
  // any), and hyphen ranges.
  Constraint::Group parse_group(std::string_view g) const {
    Constraint::Group group;
    std::size_t i = 0;
    skip_spaces(g, i);
    Separator separator = Separator::none;
    bool after_range = false; // the last thing read was a hyphen range
    while (true) {
      const std::size_t term_start = i;
      const Op op = read_operator(g, i);
      const bool bare = i == term_start;
      const std::string op_text(g.substr(term_start, i - term_start));
      skip_spaces(g, i);
      const std::size_t version_start = i;
      Term term = read_version(g, i, op, bare ? "" : "after \"" + op_text + "\"");
      term.version.original = std::string(g.substr(version_start, i - version_start));

      std::size_t j = i;
      skip_spaces(g, j);
      const bool spaced = j > i;
      if (bare && spaced && j + 1 < g.size() && g[j] == '-' && is_space(g[j + 1])) {
        // "A - B" is ">= A, <= B". Masterminds rewrites it in the text, the spaces before A
        // included, so after a comparator and a space it is glued to that comparator and
        // refused; at the start, after a comma or after another range it is fine.
        if (separator == Separator::space && !after_range) {
          fail("the hyphen range starting at \"" + term.version.original +
               "\" must start a group or follow a comma");
        }
        std::size_t k = j + 1;
        skip_spaces(g, k);
        const std::size_t upper_start = k;
        Term upper = read_version(g, k, Op::le, "after \" - \"");
        upper.version.original = std::string(g.substr(upper_start, k - upper_start));
        term.op = Op::ge;
        group.names_prerelease = group.names_prerelease || term.version.is_prerelease() ||
                                 upper.version.is_prerelease();
        group.terms.push_back(std::move(term));
        group.terms.push_back(std::move(upper));
        after_range = true;
        // The rewrite ends in a space, so what follows needs no separator of its own.
        i = k;
        skip_spaces(g, i);
        if (i == g.size()) {
          break;
        }
        if (g[i] == ',') {
          ++i;
          skip_spaces(g, i);
          separator = Separator::comma;
        } else {
          separator = Separator::space;
        }
        continue;
      }

      group.names_prerelease = group.names_prerelease || term.version.is_prerelease();
      const std::string term_text = op_text + term.version.original;
      group.terms.push_back(std::move(term));
      after_range = false;
      if (j == g.size()) {
        break;
      }
      if (g[j] == ',') {
        i = j + 1;
        skip_spaces(g, i);
        separator = Separator::comma;
        continue;
      }
      if (spaced) {
        i = j;
        separator = Separator::space;
        continue;
      }
      if (g[i] == '.') {
        fail("\"" + term_text + word_at(g, i) + "\" has more than three parts (major.minor.patch)");
      }
      fail("unexpected \"" + word_at(g, i) + "\" after \"" + term_text +
           "\" (separate comparators with a space or a comma)");
    }
    return group;
  }

  std::string_view m_text;
};

Constraint Constraint::parse(std::string_view text) {
  return ConstraintParser(text).parse();
}

// One comparator, as Masterminds' constraint functions read it (constraints.go). The
// pre-release filter has already run for the whole group. Wildcards ("dirty" parts) change
// each operator differently; the comments give the ranges that result.
bool Constraint::term_allows(const Term& term, const Version& v) {
  const Version& c = term.version;
  const bool dirty = term.wild != Term::Wild::none;
  const bool minor_dirty = term.wild == Term::Wild::minor;
  const bool patch_dirty = term.wild == Term::Wild::patch;
  switch (term.op) {
  case Term::Op::eq:
    if (!dirty) {
      return v.compare(c) == 0;
    }
    // "1.2" and "1.2.x" are ~1.2; "1" and "1.x" are ~1; "*" is any.
    [[fallthrough]];
  case Term::Op::tilde:
    // ~1.2.3: >=1.2.3 <1.3.0; ~1.2 and ~1.2.x: >=1.2.0 <1.3.0; ~1 and ~1.x: >=1.0.0 <2.0.0;
    // ~0.0.0 and ~*: any version.
    if (v.compare(c) < 0) {
      return false;
    }
    if (c.major == 0 && c.minor == 0 && c.patch == 0 && !minor_dirty && !patch_dirty) {
      return true;
    }
    if (v.major != c.major) {
      return false;
    }
    return minor_dirty || v.minor == c.minor;
  case Term::Op::caret:
    // ^1.2.3: >=1.2.3 <2.0.0; ^0.2.3: >=0.2.3 <0.3.0; ^0.0.3: >=0.0.3 <0.0.4;
    // ^0.0 and ^0.0.x: >=0.0.0 <0.1.0; ^0 and ^0.x: >=0.0.0 <1.0.0. "^*" reads as 0.0.0
    // with no part dirty that ^ looks at, so it allows 0.0.0 alone (so does Masterminds).
    if (v.compare(c) < 0) {
      return false;
    }
    if (c.major > 0 || minor_dirty) {
      return v.major == c.major;
    }
    if (v.major > 0) {
      return false;
    }
    if (c.minor > 0 || patch_dirty) {
      return v.minor == c.minor;
    }
    if (v.minor > 0) {
      return false;
    }
    return v.patch == c.patch;
  case Term::Op::ne:
    // !=1.x: not 1.*.*; !=1.2.x: not 1.2.* unless the pre-releases differ; !=* excludes
    // 0.0.0 alone (its dirty part is not one != looks at).
    if (dirty) {
      if (v.major != c.major) {
        return true;
      }
      if (minor_dirty) {
        return false;
      }
      if (v.minor != c.minor) {
        return true;
      }
      if (patch_dirty) {
        return v.prerelease != c.prerelease;
      }
      if (v.patch != c.patch) {
        return true;
      }
    }
    return v.compare(c) != 0;
  case Term::Op::gt:
    // >1.x: >=2.0.0; >1.2.x: >=1.3.0; >* is >0.0.0.
    if (!dirty || term.wild == Term::Wild::major) {
      return v.compare(c) > 0;
    }
    if (v.major != c.major) {
      return v.major > c.major;
    }
    return patch_dirty && v.minor > c.minor;
  case Term::Op::ge:
    // >=1.2.x is >=1.2.0: the zeros stand.
    return v.compare(c) >= 0;
  case Term::Op::lt:
    // <1.2.x is <1.2.0: the zeros stand.
    return v.compare(c) < 0;
  case Term::Op::le:
    // <=1.x: <2.0.0; <=1.2.x: <1.3.0 (pre-releases of those bounds included); <=* is 0.0.*.
    if (!dirty) {
      return v.compare(c) <= 0;
    }
    if (v.major != c.major) {
      return v.major < c.major;
    }
    return minor_dirty || v.minor <= c.minor;
  }
  return false;
}

bool Constraint::allows(const Version& version, bool include_prereleases) const {
  for (const auto& group : m_any) {
    // Masterminds v3.4 (#267): a pre-release is considered only by a group in which some
    // comparator names a pre-release (any version's, not only the same major.minor.patch,
    // unlike npm), or when pre-releases are asked for (Constraints.IncludePrerelease).
    if (version.is_prerelease() && !group.names_prerelease && !include_prereleases) {
      continue;
    }
    if (std::all_of(group.terms.begin(), group.terms.end(),
                    [&](const Term& term) { return term_allows(term, version); })) {
      return true;
    }
  }
  return false;
}

std::optional<Version> best_match(const Constraint& constraint, const std::vector<std::string>& versions,
                                  bool include_prereleases) {
  std::optional<Version> best;
  for (const auto& text : versions) {
    auto v = Version::parse(text);
    if (!v || !constraint.allows(*v, include_prereleases)) {
      continue;
    }
    // Equal precedence ("1.0.0" and "v1.0.0+b"): the first one listed stays.
    if (!best || v->compare(*best) > 0) {
      best = std::move(v);
    }
  }
  return best;
}

} // namespace ferry::chart

// Tests for chart/semver: versions, precedence and constraints as Masterminds/semver v3.4
// (Helm 3) reads them. Rules are cited from its README and constraints.go.
// SPDX-License-Identifier: Apache-2.0
#include "chart/semver.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <string>
#include <vector>

using ferry::chart::best_match;
using ferry::chart::Constraint;
using ferry::chart::Version;
using ferry::core::ExitCode;
using ferry::core::UsageError;
using ferry::test::contains;

namespace {

struct Case {
  const char* constraint;
  const char* version;
  bool expected;
};

void check_cases(const std::vector<Case>& cases, bool include_prereleases = false) {
  for (const auto& c : cases) {
    CAPTURE(c.constraint);
    CAPTURE(c.version);
    const auto version = Version::parse(c.version);
    REQUIRE(version.has_value());
    CHECK(Constraint::parse(c.constraint).allows(*version, include_prereleases) == c.expected);
  }
}

// The UsageError text for `text`; fails the test when parsing succeeds.
std::string parse_error(const std::string& text) {
  try {
    (void)Constraint::parse(text);
  } catch (const UsageError& e) {
    CHECK(e.code() == ExitCode::usage);
    CHECK_FALSE(e.hint().empty());
    return e.what();
  }
  FAIL("no error for constraint \"" << text << "\"");
  return {};
}

} // namespace

TEST_SUITE("chart") {

TEST_CASE("Version::parse reads SemVer 2 and NewVersion's lenient forms") {
  SUBCASE("a full version with pre-release and build metadata") {
    const auto v = Version::parse("1.2.3-rc.1+build.5");
    REQUIRE(v.has_value());
    CHECK(v->major == 1);
    CHECK(v->minor == 2);
    CHECK(v->patch == 3);
    CHECK(v->prerelease == std::vector<std::string>{"rc", "1"});
    CHECK(v->build == "build.5");
    CHECK(v->original == "1.2.3-rc.1+build.5");
    CHECK(v->is_prerelease());
  }
  SUBCASE("a leading v, and missing minor and patch read as 0") {
    const auto v = Version::parse("v1.2");
    REQUIRE(v.has_value());
    CHECK(v->str() == "1.2.0");
    CHECK(v->original == "v1.2");
    CHECK(Version::parse("1")->str() == "1.0.0");
    CHECK(Version::parse("v7")->str() == "7.0.0");
  }
  SUBCASE("a pre-release may follow a partial version: 1.2-5 is 1.2.0-5") {
    CHECK(Version::parse("1.2-5")->str() == "1.2.0-5");
    CHECK(Version::parse("1.2-beta.5")->str() == "1.2.0-beta.5");
  }
  SUBCASE("leading zeros in the numbers are coerced (CoerceNewVersion, the v3.4 default)") {
    CHECK(Version::parse("01.02.003")->str() == "1.2.3");
  }
  SUBCASE("pre-release words may start with 0 and contain hyphens") {
    CHECK(Version::parse("1.2.3-0abc123")->prerelease == std::vector<std::string>{"0abc123"});
    CHECK(Version::parse("1.2.3-rc1-with-hyphen")->prerelease == std::vector<std::string>{"rc1-with-hyphen"});
    CHECK(Version::parse("1.2.3+test.01")->build == "test.01"); // build numbers may have leading zeros
  }
  SUBCASE("the largest 64-bit number fits; one more does not") {
    CHECK(Version::parse("18446744073709551615.0.0")->major == 18446744073709551615ULL);
    CHECK_FALSE(Version::parse("18446744073709551616.0.0").has_value());
  }
}

TEST_CASE("Version::parse refuses texts that are not versions") {
  for (const char* text : {"", "foo", "latest", "1.2.3.4", "v1.2.3.4", "V1.2.3", " 1.2.3", "1.2.3 ", "\n1.2",
                           "1.2.beta", "1.2.3-", "1.2.3+", "1.2.3-beta.01", "1.0.0-alpha_beta", "1.0.0-alpha..1",
                           "1.1.2+.123", "9.8.7+meta+meta", "1..2", "1.2.", "v", "-1.2.3", "1.2.3-beta."}) {
    CAPTURE(text);
    CHECK_FALSE(Version::parse(text).has_value());
  }
}

TEST_CASE("Version::str normalises the text Helm prints") {
  CHECK(Version::parse("v1.2")->str() == "1.2.0");
  CHECK(Version::parse("v01.2.3-alpha.1+exp.sha.5114f85")->str() == "1.2.3-alpha.1+exp.sha.5114f85");
  CHECK(Version::parse("2+meta")->str() == "2.0.0+meta");
}

TEST_CASE("Version::compare follows SemVer 2 precedence") {
  SUBCASE("the chain of SemVer §11.4") {
    const std::vector<std::string> ordered = {"1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                              "1.0.0-beta",   "1.0.0-beta.2",  "1.0.0-beta.11",
                                              "1.0.0-rc.1",   "1.0.0",         "1.0.1",
                                              "1.1.0",        "1.9.0",         "1.10.0",
                                              "2.0.0-0",      "2.0.0",         "10.0.0"};
    for (std::size_t i = 0; i < ordered.size(); ++i) {
      for (std::size_t j = 0; j < ordered.size(); ++j) {
        CAPTURE(ordered[i]);
        CAPTURE(ordered[j]);
        const int expected = i < j ? -1 : (i > j ? 1 : 0);
        CHECK(Version::parse(ordered[i])->compare(*Version::parse(ordered[j])) == expected);
      }
    }
  }
  SUBCASE("build metadata and the v prefix are ignored") {
    CHECK(Version::parse("1.2.3+a")->compare(*Version::parse("v1.2.3+b")) == 0);
    CHECK(Version::parse("1.2")->compare(*Version::parse("1.2.0")) == 0);
  }
  SUBCASE("numeric identifiers sort below words; words in ASCII order (upper case first)") {
    CHECK(Version::parse("1.0.0-9")->compare(*Version::parse("1.0.0-a")) < 0);
    CHECK(Version::parse("1.0.0-999")->compare(*Version::parse("1.0.0-1000")) < 0);
    CHECK(Version::parse("1.0.0-BETA")->compare(*Version::parse("1.0.0-alpha")) < 0);
    CHECK(Version::parse("4.2.0-beta2")->compare(*Version::parse("4.2.0-beta10")) > 0); // a word, not a number
    // "-2" is not a number (it has a hyphen): a word, above any number.
    CHECK(Version::parse("1.0.0-beta.-2")->compare(*Version::parse("1.0.0-beta.5")) > 0);
  }
}

TEST_CASE("Constraint::allows: exact versions, wildcards and partial versions") {
  check_cases({
      // A full version with no operator, or "=", is an exact match; build metadata is ignored.
      {"1.2.3", "1.2.3", true},
      {"=1.2.3", "1.2.4", false},
      {"= 1.2.3", "v1.2.3", true},
      {"v1.2.3", "1.2.3", true},
      {"1.2.3+build.1", "1.2.3+build.2", true},
      // README "Wildcards In Comparisons": 1.2.x is >= 1.2.0, < 1.3.0 (an = with a wildcard falls
      // back to ~), and so is a partial version: "1.2" is ~1.2, "1" is ~1 (constraintTildeOrEqual).
      {"1.2.x", "1.2.0", true},
      {"1.2.x", "1.2.99", true},
      {"1.2.x", "1.3.0", false},
      {"1.2.x", "1.1.9", false},
      {"1.2.X", "1.2.4", true},
      {"1.2.*", "1.2.4", true},
      {"1.2", "1.2.7", true},
      {"1.2", "1.3.0", false},
      {"=2.0", "2.0.1", true},
      {"1", "1.9.9", true},
      {"1", "2.0.0", false},
      {"1.x", "0.9.0", false},
      {"1.*", "2.0.0", false},
      // Parts after the first wildcard are not read: 1.x.5 is 1.x.
      {"1.x.5", "1.0.0", true},
      {"1.x.5", "1.9.0", true},
      // "*" is >= 0.0.0.
      {"*", "0.0.0", true},
      {"*", "42.1.0", true},
      {"x", "3.0.0", true},
      {"X.X.X", "3.0.0", true},
      // README: ">= 1.2.x" is ">= 1.2.0" and "<= 2.x" is "< 3".
      {">=1.2.x", "1.2.0", true},
      {">=1.2.x", "1.1.9", false},
      {"<=2.x", "2.99.0", true},
      {"<=2.x", "3.0.0", false},
      {"<=1.2.x", "1.2.9", true},
      {"<=1.2.x", "1.3.0", false},
      // constraintGreaterThan: ">1.x" needs the next major, ">1.2.x" the next minor; ">11" is
      // not met by 11.1.0. constraintLessThan keeps the zeros: "<1.2.x" is "<1.2.0".
      {">1.x", "1.9.0", false},
      {">1.x", "2.0.0", true},
      {">1.2.x", "1.2.9", false},
      {">1.2.x", "1.3.0", true},
      {">11", "11.1.0", false},
      {">11", "12.0.0", true},
      {"<1.2.x", "1.1.9", true},
      {"<1.2.x", "1.2.0", false},
      {"<11", "10.9.9", true},
      {"<11", "11.0.1", false},
      // Partial versions with <=, >=, >, <: ">=1.1" is ">=1.1.0", ">1.1" means ">=1.2.0",
      // "<=1.1" means "<1.2.0", "<1.1" is "<1.1.0".
      {">=1.1", "1.1.0", true},
      {">=1.1", "1.0.9", false},
      {">1.1", "1.1.9", false},
      {">1.1", "1.2.0", true},
      {"<=1.1", "1.1.9", true},
      {"<=1.1", "1.2.0", false},
      {"<1.1", "1.0.9", true},
      {"<1.1", "1.1.0", false},
      // "=>" and "=<" are >= and <=; spaces may follow an operator.
      {"=> 1.2", "1.2.0", true},
      {"=< 1.2", "1.2.9", true},
      {"=< 1.2", "1.3.0", false},
  });
}

TEST_CASE("Constraint::allows: tilde and caret ranges") {
  check_cases({
      // README "Tilde Range Comparisons": ~1.2.3 is >= 1.2.3, < 1.3.0; ~1 is >= 1, < 2;
      // ~2.3 is >= 2.3, < 2.4; ~1.x is >= 1, < 2; "~>" is "~".
      {"~1.2.3", "1.2.3", true},
      {"~1.2.3", "1.2.2", false},
      {"~1.2.3", "1.2.99", true},
      {"~1.2.3", "1.3.0", false},
      {"~1.2", "1.2.0", true},
      {"~1.2", "1.2.9", true},
      {"~1.2", "1.3.0", false},
      {"~1.2", "1.1.9", false},
      {"~1", "1.0.0", true},
      {"~1", "1.9.9", true},
      {"~1", "2.0.0", false},
      {"~1", "0.9.9", false},
      {"~1.x", "1.4.0", true},
      {"~1.x", "2.1.1", false},
      {"~>1.2", "1.2.5", true},
      {"~>1.2", "1.3.0", false},
      {"~0.2.3", "0.2.5", true},
      {"~0.2.3", "0.3.0", false},
      // constraintTilde: ~0.0.0 and ~* allow any version.
      {"~0.0.0", "5.0.0", true},
      {"~*", "2.1.1", true},
      // README "Caret Range Comparisons": ^1.2.3 is >= 1.2.3, < 2.0.0; ^1.2.x is >= 1.2.0, < 2.0.0;
      // ^2.3 is >= 2.3, < 3; ^2.x is >= 2.0.0, < 3.
      {"^1.2.3", "1.2.3", true},
      {"^1.2.3", "1.9.9", true},
      {"^1.2.3", "2.0.0", false},
      {"^1.2.3", "1.2.2", false},
      {"^1.2.x", "1.9.0", true},
      {"^1.2.x", "1.1.0", false},
      {"^2.3", "2.3.0", true},
      {"^2.3", "2.99.0", true},
      {"^2.3", "3.0.0", false},
      {"^2.x", "2.0.0", true},
      {"^2.x", "1.9.0", false},
      // Before 1.0.0 the minor is the API level: ^0.2.3 is >=0.2.3 <0.3.0, ^0.2 is >=0.2.0 <0.3.0.
      {"^0.2.3", "0.2.3", true},
      {"^0.2.3", "0.2.9", true},
      {"^0.2.3", "0.3.0", false},
      {"^0.2.3", "0.2.2", false},
      {"^0.2", "0.2.0", true},
      {"^0.2", "0.3.0", false},
      // ^0.0.3 is >=0.0.3 <0.0.4: that patch only.
      {"^0.0.3", "0.0.3", true},
      {"^0.0.3", "0.0.4", false},
      {"^0.0.3", "0.0.2", false},
      {"^0.0.3", "0.1.0", false},
      // ^0.0 (and ^0.0.x) is >=0.0.0 <0.1.0; ^0 (and ^0.x) is >=0.0.0 <1.0.0.
      {"^0.0", "0.0.9", true},
      {"^0.0", "0.1.0", false},
      {"^0.0.x", "0.0.5", true},
      {"^0.0.x", "0.1.0", false},
      {"^0", "0.9.9", true},
      {"^0", "1.0.0", false},
      {"^0.x", "0.5.0", true},
      {"^0.x", "1.0.0", false},
      {"^0.0.0", "1.2.3", false},
      // constraintCaret reads "^*" as 0.0.0 with no minor or patch wildcard, so despite its
      // doc comment ("any") it allows 0.0.0 alone; Helm behaves the same.
      {"^*", "0.0.0", true},
      {"^*", "0.0.1", false},
      {"^*", "1.0.0", false},
  });
}

TEST_CASE("Constraint::allows: != with and without wildcards") {
  check_cases({
      // constraintNotEqual: a full version excludes only itself (build metadata ignored) ...
      {"!=1.2.3", "1.2.3", false},
      {"!=1.2.3", "1.2.4", true},
      {"!=1.2.3", "1.2.3+meta", false},
      // ... a wildcard or partial version excludes the whole range it names ...
      {"!=1.2.x", "1.2.0", false},
      {"!=1.2.x", "1.2.9", false},
      {"!=1.2.x", "1.3.0", true},
      {"!=1.2.x", "1.1.0", true},
      {"!=1.2", "1.2.5", false},
      {"!=1.x", "1.9.0", false},
      {"!=1.x", "2.0.0", true},
      {"!=1.x", "0.9.0", true},
      // ... except that with a patch wildcard only the same pre-release is excluded ...
      {"!=1.2.x-alpha", "1.2.5-alpha", false},
      {"!=1.2.x-alpha", "1.2.5-beta", true},
      {"!=1.2.x-alpha", "1.2.5", true},
      {"!=4.1-alpha", "4.1.0", true},
      // ... and "!=*" (read as 0.0.0 with only a major wildcard) excludes 0.0.0 alone.
      {"!=*", "0.0.0", false},
      {"!=*", "1.0.0", true},
      // Combined with other comparators in an AND group.
      {">=1.1, <2, !=1.2.3", "1.2.3", false},
      {">=1.1 <2 !=1.2.3", "1.2.4", true},
      {">=1.0 !=1.2.x", "1.2.5", false},
      {">=1.0 !=1.2.x", "1.3.0", true},
  });
}

TEST_CASE("Constraint::allows: AND groups, OR groups and hyphen ranges") {
  check_cases({
      // README "Basic Comparisons": space or comma separated comparators are ANDed, "||" ORs groups.
      {">=1.2.3 <2.0.0", "1.5.0", true},
      {">=1.2.3 <2.0.0", "2.0.0", false},
      {">=1.2.3,<2.0.0", "1.2.2", false},
      {">= 1.2.3 ,  < 2.0.0", "1.9.0", true},
      {">1.1    <3", "4.3.2", false},
      {"^1.2 || ^3.1", "2.0.0", false},
      {"^1.2 || ^3.1", "3.5.0", true},
      {"^1.2 || ^3.1", "1.3.0", true},
      {"<1.0.0||>=2.0.0", "1.5.0", false},
      {"<1.0.0||>=2.0.0", "2.1.0", true},
      {">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true},
      {">=1.1, <2, !=1.2.3 || > 3", "3.0.0", false},
      // README "Hyphen Range Comparisons": "1.2 - 1.4.5" is ">= 1.2 <= 1.4.5" ...
      {"1.2 - 1.4.5", "1.2.0", true},
      {"1.2 - 1.4.5", "1.1.9", false},
      {"1.2 - 1.4.5", "1.4.5", true},
      {"1.2 - 1.4.5", "1.4.6", false},
      // ... and "2.3.4 - 4.5" is ">= 2.3.4 <= 4.5", where "<= 4.5" takes every 4.5.x.
      {"2.3.4 - 4.5", "4.5.9", true},
      {"2.3.4 - 4.5", "4.6.0", false},
      {"2.3.4 - 4.5", "2.3.3", false},
      {"1 - 2", "2.9.9", true},
      {"1 - 2", "3.0.0", false},
      {"1.x - 2.x", "2.5.0", true},
      {"1 - 2 || 5 - 6", "5.5.0", true},
      {"1 - 2 || 5 - 6", "3.0.0", false},
      {"1.0.0 - 2.0.0, <=1.5.0", "1.6.0", false},
      {"1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true},
      {"1 - 2 4 - 5", "1.5.0", false}, // two ranges ANDed: nothing is in both
      // README: without spaces it is no range: "1.2-1.4.5" is 1.2 with pre-release 1.4.5 (so ~1.2).
      {"1.2-1.4.5", "1.3.0", false},
      {"1.2-1.4.5", "1.2.5", true},
  });
}

TEST_CASE("Constraint::allows: pre-releases only where a comparator of the group names one") {
  check_cases({
      // README "Working With Prerelease Versions": a constraint without a pre-release skips them.
      {">=1.2.3", "1.2.4-beta", false},
      {"*", "1.0.0-rc.1", false},
      {"^1.0", "1.5.0-alpha", false},
      {"~1.1", "1.1.1-alpha", false},
      {"<1.2.3", "1.2.3-rc.1", false},
      {"!=1.2.3", "1.2.4-rc.1", false},
      // With one, pre-releases are compared by SemVer precedence: 1.2.3-alpha < 1.2.3-beta ...
      {">=1.2.3-beta", "1.2.3-alpha", false},
      {">=1.2.3-beta", "1.2.3-beta", true},
      {">=1.2.3-beta", "1.2.3-beta.2", true},
      {">=1.2.3-beta", "1.2.3", true},
      // ... and, unlike npm, not only for the same major.minor.patch (Masterminds' tests:
      // "~1.2.3-beta.2" allows 1.2.4-beta.2).
      {">=1.2.3-beta", "1.2.4-beta", true},
      {">=1.2.3-beta", "2.0.0-alpha", true},
      {"~1.2.3-beta.2", "1.2.3-beta.4", true},
      {"~1.2.3-beta.2", "1.2.4-beta.2", true},
      {"~1.2.3-beta.2", "1.3.0-beta.2", false},
      {"^0.2.3-beta.2", "0.2.4-beta.2", true},
      {"^0.2.3-beta.2", "0.3.0-beta", false},
      {"^1.2.0-alpha.2", "1.2.0-alpha.1", false},
      {">1.2.3-alpha.1", "1.2.3-alpha.2", true},
      // "-0" is the lowest pre-release: >=1.2.3-0 takes every pre-release of 1.2.3 on; "*-0" all.
      {">=1.2.3-0", "1.2.3-alpha", true},
      {"*-0", "1.2.3-alpha.1", true},
      {">=0.0.0-0", "0.0.0-alpha", true},
      // v3.4 (#267): one comparator naming a pre-release opens its whole AND group ...
      {">= 1.0.0 <= 2.0.0-beta", "1.0.1-beta", true},
      {">= 1.0.0-0 <= 2.0.0", "1.0.1-beta", true},
      {"1.0.0-alpha - 2.0.0", "1.5.0-rc.1", true},
      // ... but not the other OR groups.
      {">= 1.0.0 <= 2.0.0-beta || > 3", "3.0.1-beta", false},
      {">= 1.0.0 <= 2.0.0-beta != 1.0.1-beta || > 3", "1.0.1-beta", false},
  });
}

TEST_CASE("Constraint::allows with include_prereleases considers every pre-release") {
  // Constraints.IncludePrerelease (what `helm --devel` is for): the filter goes, the ranges stay.
  check_cases(
      {
          {">=1.1", "4.1.0-beta", true},
          {"*", "1.2.3-alpha", true},
          {"~1.1", "1.1.1-alpha", true},
          {"= 2.0", "2.0.1-beta", true},
          {"^1.x", "1.1.1-beta1", true},
          {"^1.2.3", "2.0.0-alpha", false},
          {">=1.2.3-beta", "1.2.3-alpha", false},
          // Precedence, not the release's range: 2.0.0-alpha is below 2.0.0.
          {"<2.0.0", "2.0.0-alpha", true},
          {"1.2.3", "1.2.3-rc.1", false},
          // Releases are unaffected.
          {">=1.1", "1.1.0", true},
          {"<1.1", "1.1.0", false},
      },
      true);
  const auto pre = *Version::parse("1.5.0-rc.1");
  CHECK_FALSE(Constraint::parse("^1.2").allows(pre));
  CHECK(Constraint::parse("^1.2").allows(pre, true));
  // `helm pull --devel` with no version uses ">0.0.0-0".
  CHECK(Constraint::parse(">0.0.0-0").allows(*Version::parse("0.0.1-alpha")));
  CHECK(Constraint::parse(">0.0.0-0").allows(*Version::parse("3.4.5")));
}

TEST_CASE("Constraint::parse reads an empty constraint as \"*\", as Helm does") {
  for (const char* text : {"", "  "}) {
    CAPTURE(text);
    const auto c = Constraint::parse(text);
    CHECK(c.str() == text);
    CHECK(c.allows(*Version::parse("0.0.0")));
    CHECK(c.allows(*Version::parse("99.1.2")));
    CHECK_FALSE(c.allows(*Version::parse("1.0.0-rc.1")));
    CHECK(c.allows(*Version::parse("1.0.0-rc.1"), true));
  }
}

TEST_CASE("Constraint::str gives the text as written") {
  CHECK(Constraint::parse(">= 1.2, <2 || ~3").str() == ">= 1.2, <2 || ~3");
}

TEST_CASE("Constraint::parse accepts the separators and range positions Masterminds accepts") {
  // Ranges may start a group, follow a comma, or follow another range (validConstraintRegex
  // after rewriteRange).
  for (const char* text : {"1.0.0 - 2.0.0, <=2.0.0", "<=3, 1 - 2", "1 - 2 3 - 4", "3 || 1 - 2", " >=1.0 ",
                           "12.3.34 ~1.2.3", "v1.2.3-0abc", "v2.3.5-20161202202307-sha.e8fc5e5", ">=1.0 , <2"}) {
    CAPTURE(text);
    CHECK_NOTHROW((void)Constraint::parse(text));
  }
}

TEST_CASE("Constraint::parse names the constraint and the problem") {
  struct Bad {
    const char* text;
    const char* problem;
  };
  const std::vector<Bad> bad = {
      {"foo", "expected a version at \"foo\""},
      {">= bar", "expected a version after \">=\" at \"bar\""},
      {"BAR >= 1.2.3", "expected a version at \"BAR\""},
      {"> = 1.0", "expected a version after \">\" at \"=\""},
      {"V1.2.3", "expected a version at \"V1.2.3\""},
      {"1.2.3.4", "\"1.2.3.4\" has more than three parts"},
      {"v1.2.3-beta.01", "pre-release identifier \"01\" has a leading zero"},
      {"1.2x", "\"2x\" is neither a number nor a wildcard"},
      {"1.2.xx", "\"xx\" is neither a number nor a wildcard"},
      {"99999999999999999999", "\"99999999999999999999\" is too large"},
      {"12.3.34~ 1.2.3", "unexpected \"~\" after \"12.3.34\""},
      {"1.0 ||", "empty"},
      {"|| 1.0", "empty"},
      {"1.0 |||| 2.0", "empty"},
      {"1.0 | 2.0", "expected a version at \"|\""},
      {"1.0,", "expected a version at the end"},
      {"1.0,,2.0", "expected a version at \",2.0\""},
      {",1.0", "expected a version at \",1.0\""},
      {"1 -2", "expected a version at \"-2\""},
      {"1 - ", "expected a version after \" - \" at the end"},
      {"1 - >2", "expected a version after \" - \" at \">2\""},
      {"~1 - 2", "expected a version at \"-\""},
      {">=1 1 - 2", "the hyphen range starting at \"1\" must start a group or follow a comma"},
      {"1 - 2 - 3", "expected a version at \"-\""},
  };
  for (const auto& b : bad) {
    CAPTURE(b.text);
    const std::string message = parse_error(b.text);
    CHECK(contains(message, std::string("version constraint \"") + b.text + "\" is not valid: "));
    CHECK(contains(message, b.problem));
  }
}

TEST_CASE("best_match picks the highest allowed version and skips non-versions") {
  const std::vector<std::string> versions = {"1.2.3",  "not-a-version", "1.4.0", "v1.5.0",  "2.0.0",
                                             "latest", "1.9.0-rc.1",    "1.0",   "1.4.0+b", "0.9.0"};
  SUBCASE("the highest release in range, wherever it is listed, as written") {
    const auto best = best_match(Constraint::parse("^1.2"), versions);
    REQUIRE(best.has_value());
    CHECK(best->str() == "1.5.0");
    CHECK(best->original == "v1.5.0");
  }
  SUBCASE("pre-releases only when asked for or named") {
    CHECK(best_match(Constraint::parse("^1.2"), versions, true)->str() == "1.9.0-rc.1");
    CHECK(best_match(Constraint::parse(">=1.9.0-0 <2"), versions)->str() == "1.9.0-rc.1");
  }
  SUBCASE("among versions of equal precedence the first listed stays") {
    CHECK(best_match(Constraint::parse("~1.4"), versions)->original == "1.4.0");
  }
  SUBCASE("partial versions in the list count") {
    CHECK(best_match(Constraint::parse("<1.1"), versions)->original == "1.0");
  }
  SUBCASE("nothing allowed, or nothing listed") {
    CHECK_FALSE(best_match(Constraint::parse(">=3"), versions).has_value());
    CHECK_FALSE(best_match(Constraint::parse("*"), {}).has_value());
    CHECK_FALSE(best_match(Constraint::parse("*"), {"latest", "stable"}).has_value());
  }
}

} // TEST_SUITE

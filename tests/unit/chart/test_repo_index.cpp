// Tests for chart/repo_index: index.yaml parsing, version selection, chart URLs.
// SPDX-License-Identifier: Apache-2.0
#include "chart/repo_index.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <string>
#include <vector>

using ferry::chart::chart_url;
using ferry::chart::index_url;
using ferry::chart::IndexEntry;
using ferry::chart::RepositoryIndex;
using ferry::core::UsageError;
using ferry::test::contains;

namespace {

const std::string k_display = "https://charts.example.com/index.yaml";

// Shaped like `helm repo index` output (Helm 3.10): entries sorted by name, versions
// newest first, every field Helm writes.
const std::string k_index = R"(apiVersion: v1
entries:
  demo:
  - apiVersion: v2
    appVersion: "2.0"
    created: "2026-01-05T10:00:00.000000000Z"
    description: A demo chart
    digest: 1111111111111111111111111111111111111111111111111111111111111111
    name: demo
    type: application
    urls:
    - demo-2.0.0.tgz
    version: 2.0.0
  - apiVersion: v2
    appVersion: "1.3"
    created: "2026-01-04T10:00:00.000000000Z"
    digest: 2222222222222222222222222222222222222222222222222222222222222222
    name: demo
    urls:
    - demo-1.3.0-rc.1.tgz
    version: 1.3.0-rc.1
  - apiVersion: v2
    appVersion: "1.2"
    created: "2026-01-03T10:00:00.000000000Z"
    digest: 3333333333333333333333333333333333333333333333333333333333333333
    name: demo
    urls:
    - https://mirror.example.org/demo/demo-1.2.0.tgz
    - demo-1.2.0.tgz
    version: 1.2.0
  - apiVersion: v2
    created: "2026-01-02T10:00:00.000000000Z"
    name: demo
    urls:
    - demo-1.0.0.tgz
    version: 1.0.0
  demo-operator:
  - apiVersion: v2
    deprecated: true
    name: demo-operator
    urls:
    - ops/demo-operator-0.4.0.tgz
    version: 0.4.0
  redis:
  - apiVersion: v2
    name: redis
    urls:
    - redis-17.3.1.tgz
    version: 17.3.1
  - apiVersion: v2
    name: redis
    urls:
    - redis-latest.tgz
    version: latest
generated: "2026-01-05T10:00:00.000000000Z"
)";

std::vector<std::string> versions(const RepositoryIndex& index, const std::string& name) {
  std::vector<std::string> out;
  for (const IndexEntry* e : index.versions_of(name)) out.push_back(e->version);
  return out;
}

// The message of the UsageError `fn` throws (fails the test when it throws nothing).
template <typename Fn>
std::string usage_error(Fn&& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  FAIL("no UsageError was thrown");
  return {};
}

} // namespace

TEST_SUITE("chart") {

TEST_CASE("RepositoryIndex::parse reads every chart and version of a helm repo index") {
  const RepositoryIndex index = RepositoryIndex::parse(k_index, k_display);
  CHECK(index.display() == k_display);
  CHECK(versions(index, "demo") == std::vector<std::string>{"2.0.0", "1.3.0-rc.1", "1.2.0", "1.0.0"});
  CHECK(versions(index, "redis") == std::vector<std::string>{"17.3.1", "latest"});
  CHECK(index.versions_of("nothing").empty());

  const IndexEntry& two = *index.versions_of("demo").front();
  CHECK(two.name == "demo");
  CHECK(two.app_version == "2.0");
  CHECK(two.created == "2026-01-05T10:00:00.000000000Z");
  CHECK(two.digest == std::string(64, '1'));
  CHECK(two.urls == std::vector<std::string>{"demo-2.0.0.tgz"});
  CHECK_FALSE(two.deprecated);
  const IndexEntry& mirrored = *index.versions_of("demo")[2];
  CHECK(mirrored.urls == std::vector<std::string>{"https://mirror.example.org/demo/demo-1.2.0.tgz", "demo-1.2.0.tgz"});
  SUBCASE("missing optional fields stay empty") {
    const IndexEntry& oldest = *index.versions_of("demo").back();
    CHECK(oldest.digest.empty());
    CHECK(oldest.app_version.empty());
  }
  SUBCASE("deprecated is read") { CHECK(index.versions_of("demo-operator").front()->deprecated); }
}

TEST_CASE("RepositoryIndex::parse skips versions without a version or a URL, and names entries by their key") {
  const RepositoryIndex index = RepositoryIndex::parse("apiVersion: v1\n"
                                                       "entries:\n"
                                                       "  app:\n"
                                                       "  - version: 1.0.0\n"          // no urls: skipped
                                                       "  - urls: [app-0.9.0.tgz]\n"   // no version: skipped
                                                       "  -\n"                         // empty item: skipped
                                                       "  - version: 0.8.0\n"
                                                       "    urls: [app-0.8.0.tgz]\n"
                                                       "  - version: 0.7.0\n"
                                                       "    urls: []\n"
                                                       "  empty:\n",
                                                       k_display);
  REQUIRE(versions(index, "app") == std::vector<std::string>{"0.8.0"});
  CHECK(index.versions_of("app").front()->name == "app");
  CHECK(index.versions_of("empty").empty());
  SUBCASE("selecting from a chart that has no usable version says so") {
    const std::string message = usage_error([&] { index.select("empty", "", false); });
    CHECK(contains(message, "chart 'empty' in " + k_display + " has no version that can be downloaded"));
  }
}

TEST_CASE("RepositoryIndex::parse names the index and the line of a YAML error") {
  const std::string message = usage_error([] {
    RepositoryIndex::parse("apiVersion: v1\n"
                           "entries:\n"
                           "  demo:\n"
                           "  - version: 1.0.0\n"
                           "    urls: [demo-1.0.0.tgz\n"
                           "  - version: \"2\n",
                           k_display);
  });
  CHECK(contains(message, k_display + ":"));
  CHECK(contains(message, "YAML syntax error"));
  // yaml-cpp reports the unterminated flow sequence where it gives up: line 6.
  CHECK(contains(message, k_display + ":6:"));
}

TEST_CASE("RepositoryIndex::parse refuses documents that are not an index") {
  SUBCASE("not a map") {
    CHECK(contains(usage_error([] { RepositoryIndex::parse("- a\n- b\n", k_display); }),
                   k_display + " is not a Helm repository index (not a YAML map)"));
  }
  SUBCASE("no entries") {
    CHECK(contains(usage_error([] { RepositoryIndex::parse("apiVersion: v1\n", k_display); }),
                   k_display + " is not a Helm repository index (it has no 'entries')"));
  }
  SUBCASE("an HTML page") {
    CHECK(contains(usage_error([] { RepositoryIndex::parse("<html><body>Not here</body></html>\n", k_display); }),
                   "is not a Helm repository index"));
  }
  SUBCASE("entries is a list") {
    CHECK(contains(usage_error([] { RepositoryIndex::parse("apiVersion: v1\nentries:\n  - demo\n", k_display); }),
                   k_display + ":3: 'entries' must be a map"));
  }
  SUBCASE("a version that is not a map, with its line") {
    CHECK(contains(usage_error([] {
                     RepositoryIndex::parse("apiVersion: v1\nentries:\n  demo:\n  - version: 1.0.0\n    urls: [x.tgz]\n"
                                            "  - just text\n",
                                            k_display);
                   }),
                   k_display + ":6: a version of chart 'demo' is not a map"));
  }
  SUBCASE("the versions of a chart are not a list") {
    CHECK(contains(usage_error([] { RepositoryIndex::parse("entries:\n  demo: 1.0.0\n", k_display); }),
                   k_display + ":2: the versions of chart 'demo' must be a list"));
  }
  SUBCASE("an empty entries map is an empty repository") {
    CHECK(RepositoryIndex::parse("apiVersion: v1\nentries: {}\n", k_display).versions_of("demo").empty());
    CHECK(RepositoryIndex::parse("apiVersion: v1\nentries:\n", k_display).versions_of("demo").empty());
  }
}

TEST_CASE("RepositoryIndex::select picks the highest release the constraint allows") {
  const RepositoryIndex index = RepositoryIndex::parse(k_index, k_display);
  CHECK(index.select("demo", "^1.0.0", false).version == "1.2.0"); // not 2.0.0, not 1.3.0-rc.1
  CHECK(index.select("demo", "~1.0.0", false).version == "1.0.0");
  CHECK(index.select("demo", ">=1.0.0 <2.0.0", false).version == "1.2.0");
  CHECK(index.select("demo", "", false).version == "2.0.0");
  CHECK(index.select("demo", "*", false).version == "2.0.0");
  CHECK(index.select("demo", "1.2.0", false).urls.front() == "https://mirror.example.org/demo/demo-1.2.0.tgz");
  SUBCASE("pre-releases only when asked for") {
    CHECK(index.select("demo", "^1.0.0", true).version == "1.3.0-rc.1");
    CHECK(index.select("demo", "1.3.0-rc.1", false).version == "1.3.0-rc.1");
    CHECK(index.select("demo", "^1.3.0-0", false).version == "1.3.0-rc.1");
  }
  SUBCASE("an exact version that is not SemVer is matched as text, as Helm does") {
    CHECK(index.select("redis", "latest", false).urls.front() == "redis-latest.tgz");
    CHECK(index.select("redis", "", false).version == "17.3.1");
  }
}

TEST_CASE("RepositoryIndex::select lists the versions there are when none satisfies the constraint") {
  const RepositoryIndex index = RepositoryIndex::parse(k_index, k_display);
  const std::string message = usage_error([&] { index.select("demo", "^3.0.0", false); });
  CHECK(message == "no version of chart 'demo' in " + k_display +
                       " satisfies \"^3.0.0\"; it has 2.0.0, 1.2.0, 1.0.0 (pre-releases left out: 1.3.0-rc.1)");
  SUBCASE("with pre-releases included they are listed with the rest") {
    const std::string devel = usage_error([&] { index.select("demo", "^3.0.0", true); });
    CHECK(contains(devel, "it has 2.0.0, 1.3.0-rc.1, 1.2.0, 1.0.0"));
    CHECK_FALSE(contains(devel, "left out"));
  }
  SUBCASE("long lists are cut after the ten newest") {
    std::string yaml = "entries:\n  many:\n";
    for (int minor = 0; minor < 14; ++minor) {
      yaml += "  - version: 1." + std::to_string(minor) + ".0\n    urls: [m.tgz]\n";
    }
    const std::string cut = usage_error([&] { RepositoryIndex::parse(yaml, k_display).select("many", "^2", false); });
    CHECK(contains(cut, "it has 1.13.0, 1.12.0, 1.11.0, 1.10.0, 1.9.0, 1.8.0, 1.7.0, 1.6.0, 1.5.0, 1.4.0 and 4 older"));
  }
}

TEST_CASE("RepositoryIndex::select names an unknown chart and suggests similar names") {
  const RepositoryIndex index = RepositoryIndex::parse(k_index, k_display);
  const std::string message = usage_error([&] { index.select("dem", "^1.0.0", false); });
  CHECK(contains(message, "chart 'dem' is not in " + k_display));
  CHECK(contains(message, "similar names there: "));
  CHECK(contains(message, "demo"));
  CHECK(contains(message, "demo-operator"));
  CHECK_FALSE(contains(message, "redis"));
  SUBCASE("without any similar name the message lists none") {
    const std::string other = usage_error([&] { index.select("postgresql", "", false); });
    CHECK(other == "chart 'postgresql' is not in " + k_display);
  }
}

TEST_CASE("RepositoryIndex::select refuses a malformed constraint naming the chart") {
  const RepositoryIndex index = RepositoryIndex::parse(k_index, k_display);
  CHECK_THROWS_AS(index.select("demo", "^^1", false), UsageError);
  try {
    index.select("demo", ">=x.y.z <", false);
    FAIL("no error");
  } catch (const UsageError& e) {
    REQUIRE_FALSE(e.context().empty());
    CHECK(contains(e.context().front(), "chart demo from " + k_display));
  }
}

TEST_CASE("index_url appends index.yaml to the repository URL") {
  CHECK(index_url("https://h/p") == "https://h/p/index.yaml");
  CHECK(index_url("https://h/p/") == "https://h/p/index.yaml");
  CHECK(index_url("https://h") == "https://h/index.yaml");
  CHECK(index_url("http://127.0.0.1:8080//") == "http://127.0.0.1:8080/index.yaml");
  CHECK(index_url("https://h/p?token=1") == "https://h/p/index.yaml?token=1");
}

TEST_CASE("chart_url makes an index URL absolute as Helm does") {
  SUBCASE("absolute URLs stay as they are") {
    CHECK(chart_url("https://h/p/", "https://cdn.example.org/x-1.0.0.tgz") == "https://cdn.example.org/x-1.0.0.tgz");
    CHECK(chart_url("https://h/p", "http://other:81/a/x.tgz?sig=1") == "http://other:81/a/x.tgz?sig=1");
  }
  SUBCASE("relative URLs resolve under the repository path, with or without its trailing slash") {
    CHECK(chart_url("https://h/p/", "charts/x-1.0.0.tgz") == "https://h/p/charts/x-1.0.0.tgz");
    CHECK(chart_url("https://h/p", "charts/x-1.0.0.tgz") == "https://h/p/charts/x-1.0.0.tgz");
    CHECK(chart_url("https://h", "x-1.0.0.tgz") == "https://h/x-1.0.0.tgz");
    CHECK(chart_url("http://127.0.0.1:8080/repo", "./x.tgz") == "http://127.0.0.1:8080/repo/x.tgz");
  }
  SUBCASE("a leading slash starts at the host's root, dot segments are resolved") {
    CHECK(chart_url("https://h/p/q/", "/x.tgz") == "https://h/x.tgz");
    CHECK(chart_url("https://h/p/q/", "../x.tgz") == "https://h/p/x.tgz");
    CHECK(chart_url("https://h/p/", "../../../x.tgz") == "https://h/x.tgz");
  }
  SUBCASE("a network-path reference keeps the scheme") {
    CHECK(chart_url("https://h/p/", "//cdn.example.org/x.tgz") == "https://cdn.example.org/x.tgz");
  }
  SUBCASE("the repository URL's query goes with relative URLs") {
    CHECK(chart_url("https://h/p?token=abc", "x.tgz") == "https://h/p/x.tgz?token=abc");
  }
}

} // TEST_SUITE

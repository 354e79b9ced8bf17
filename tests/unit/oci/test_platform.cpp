// Tests for oci/platform: parsing, containerd normalisation, matching, filters.
// SPDX-License-Identifier: Apache-2.0
#include "oci/platform.hpp"

#include "core/error.hpp"
#include "support/test_support.hpp"

#include <string>
#include <vector>

using ferry::oci::Platform;
using ferry::oci::PlatformFilter;

namespace {

Platform platform(std::string os, std::string architecture, std::string variant = {}) {
  Platform p;
  p.os = std::move(os);
  p.architecture = std::move(architecture);
  p.variant = std::move(variant);
  return p;
}

} // namespace

TEST_SUITE("oci") {

TEST_CASE("Platform::parse splits os, architecture and variant") {
  const Platform two = Platform::parse("linux/amd64");
  CHECK(two.os == "linux");
  CHECK(two.architecture == "amd64");
  CHECK(two.variant.empty());
  CHECK(two.os_version.empty());

  const Platform three = Platform::parse("linux/arm64/v8");
  CHECK(three.os == "linux");
  CHECK(three.architecture == "arm64");
  CHECK(three.variant == "v8");

  SUBCASE("keeps the text as written") { CHECK(Platform::parse("Linux/x86_64").architecture == "x86_64"); }
}

TEST_CASE("Platform::parse rejects text that is not os/architecture[/variant]") {
  for (const std::string text : {"", "linux", "linux/", "/amd64", "linux/amd64/", "linux/arm/v7/x", "linux/amd 64",
                                 "linux//amd64", "linux/amd64:v2"}) {
    CAPTURE(text);
    try {
      Platform::parse(text);
      FAIL("no exception");
    } catch (const ferry::core::UsageError& e) {
      CHECK(std::string(e.what()) == "platform '" + text + "' is not os/architecture[/variant]");
      CHECK(e.hint().find("linux/amd64") != std::string::npos);
    }
  }
}

TEST_CASE("Platform::str writes os/architecture[/variant]") {
  CHECK(platform("linux", "amd64").str() == "linux/amd64");
  CHECK(platform("linux", "arm", "v7").str() == "linux/arm/v7");
  SUBCASE("round trips through parse") {
    for (const std::string text : {"linux/amd64", "linux/arm64/v8", "windows/amd64"}) {
      CHECK(Platform::parse(text).str() == text);
    }
  }
}

TEST_CASE("Platform::normalized follows containerd's architecture aliases") {
  struct Row {
    std::string in;
    std::string out;
  };
  const std::vector<Row> rows = {
      {"linux/amd64", "linux/amd64"},
      {"linux/x86_64", "linux/amd64"},
      {"linux/x86-64", "linux/amd64"},
      {"linux/amd64/v1", "linux/amd64"},
      {"linux/amd64/v3", "linux/amd64/v3"},
      {"linux/i386", "linux/386"},
      {"linux/aarch64", "linux/arm64/v8"},
      {"linux/arm64", "linux/arm64/v8"},
      {"linux/arm64/8", "linux/arm64/v8"},
      {"linux/arm64/v9", "linux/arm64/v9"},
      {"linux/armhf", "linux/arm/v7"},
      {"linux/armel", "linux/arm/v6"},
      {"linux/arm", "linux/arm/v7"},
      {"linux/arm/7", "linux/arm/v7"},
      {"linux/arm/v6", "linux/arm/v6"},
      {"Linux/AMD64", "linux/amd64"},
      {"macos/arm64", "darwin/arm64/v8"},
      {"linux/s390x", "linux/s390x"},
      {"linux/ppc64le", "linux/ppc64le"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.in);
    CHECK(Platform::parse(row.in).normalized().str() == row.out);
  }
  SUBCASE("variants written with a minor version") {
    // Variants from manifests are not limited to what Platform::parse accepts.
    CHECK(platform("linux", "arm64", "v8.0").normalized().str() == "linux/arm64/v8");
    CHECK(platform("linux", "arm64", "8.2").normalized().str() == "linux/arm64/v8.2");
  }
  SUBCASE("keeps os.version") {
    Platform windows = platform("windows", "amd64");
    windows.os_version = "10.0.17763.1879";
    CHECK(windows.normalized().os_version == "10.0.17763.1879");
  }
}

TEST_CASE("matches compares normalised platforms and the variant only when wanted") {
  struct Row {
    std::string want;
    std::string have;
    bool result;
  };
  const std::vector<Row> rows = {
      {"linux/amd64", "linux/amd64", true},
      {"linux/amd64", "linux/x86_64", true},
      {"linux/x86_64", "linux/amd64", true},
      {"linux/amd64", "linux/amd64/v3", true},
      {"linux/amd64/v3", "linux/amd64", false},
      {"linux/amd64/v1", "linux/amd64", true},
      {"linux/amd64", "linux/arm64", false},
      {"linux/amd64", "windows/amd64", false},
      {"linux/arm64", "linux/arm64/v8", true},
      {"linux/arm64/v8", "linux/arm64", true},
      {"linux/aarch64", "linux/arm64/v8", true},
      {"linux/arm64/v8", "linux/aarch64", true},
      {"linux/arm", "linux/arm/v6", true},
      {"linux/arm", "linux/arm/v7", true},
      {"linux/arm/v7", "linux/arm", true},
      {"linux/arm/v7", "linux/arm/v6", false},
      {"linux/armhf", "linux/arm/v7", true},
      {"linux/armhf", "linux/arm/v6", false},
      {"linux/armel", "linux/arm/v6", true},
      {"LINUX/amd64", "linux/amd64", true},
      {"linux/386", "linux/i386", true},
      {"linux/arm", "linux/arm64", false},
  };
  for (const Row& row : rows) {
    CAPTURE(row.want);
    CAPTURE(row.have);
    CHECK(ferry::oci::matches(Platform::parse(row.want), Platform::parse(row.have)) == row.result);
  }
  SUBCASE("os.version is never compared") {
    Platform have = platform("windows", "amd64");
    have.os_version = "10.0.20348.2340";
    CHECK(ferry::oci::matches(platform("windows", "amd64"), have));
  }
}

TEST_CASE("PlatformFilter::accepts everything when empty") {
  const PlatformFilter all;
  CHECK(all.accepts_all());
  CHECK(all.accepts(platform("linux", "amd64")));
  CHECK(all.accepts(platform("windows", "arm64")));
  CHECK(all.accepts(platform("unknown", "unknown")));
  CHECK(all.str() == "all");
}

TEST_CASE("PlatformFilter::accepts a platform any wanted one matches") {
  const PlatformFilter filter({Platform::parse("linux/amd64"), Platform::parse("linux/arm64")});
  CHECK_FALSE(filter.accepts_all());
  CHECK(filter.accepts(platform("linux", "amd64")));
  CHECK(filter.accepts(platform("linux", "arm64", "v8")));
  CHECK(filter.accepts(platform("linux", "aarch64")));
  CHECK_FALSE(filter.accepts(platform("linux", "arm", "v7")));
  CHECK_FALSE(filter.accepts(platform("linux", "s390x")));
  CHECK_FALSE(filter.accepts(platform("windows", "amd64")));
  CHECK(filter.wanted().size() == 2);
  CHECK(filter.str() == "linux/amd64, linux/arm64");
}

}

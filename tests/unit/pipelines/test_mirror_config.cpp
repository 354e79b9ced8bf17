// Node mirror configuration: which registries, and what each runtime's file says.
// (The TOML files are parsed with Python's tomllib in tests/integration/test_values.cpp.)
// SPDX-License-Identifier: Apache-2.0
#include "mirror_config.hpp"

#include "core/error.hpp"
#include "support/test_support.hpp"

#include <yaml-cpp/yaml.h>

using namespace ferry;
using ferry::test::contains;

namespace {

bundle::BundleDescriptor with_images(const std::vector<std::string>& refs) {
  bundle::BundleDescriptor d;
  d.name = "demo";
  d.version = "1.0";
  for (const auto& ref : refs) d.images.push_back(bundle::ImageRecord{ref, ref, core::Digest(), std::nullopt, "", {}, 0});
  return d;
}

MirrorConfigOptions options(const std::string& registry, bool plain_http = false, const std::string& ca = "") {
  return MirrorConfigOptions{PushTarget::parse(registry), plain_http, ca, "demo 1.0"};
}

} // namespace

TEST_SUITE("mirror-config") {

TEST_CASE("source registries: each once, sorted, Docker Hub short names as docker.io") {
  const auto d = with_images({"nginx:1.27", "quay.io/minio/minio:1", "quay.io/minio/operator:2",
                              "registry.example.com:5000/team/app@sha256:" + std::string(64, 'a')});
  CHECK(source_registries(d) == std::vector<std::string>{"docker.io", "quay.io", "registry.example.com:5000"});
}

TEST_CASE("runtime names") {
  CHECK(parse_mirror_kind("containerd") == MirrorKind::containerd);
  CHECK(parse_mirror_kind("rke2") == MirrorKind::k3s);
  CHECK(parse_mirror_kind("crio") == MirrorKind::crio);
  CHECK_THROWS_AS(parse_mirror_kind("docker"), core::UsageError);
}

TEST_CASE("containerd: one hosts.toml per registry; a prefix becomes the API path with override_path") {
  const auto files = mirror_config(MirrorKind::containerd, {"docker.io", "quay.io"},
                                   options("registry.internal:5000/mirror", false, "/etc/ferry/ca.pem"));
  REQUIRE(files.size() == 2);
  CHECK(files[0].path == "certs.d/docker.io/hosts.toml");
  CHECK(contains(files[0].content, "server = \"https://registry-1.docker.io\"\n"));
  CHECK(contains(files[0].content, "[host.\"https://registry.internal:5000/v2/mirror\"]\n"));
  CHECK(contains(files[0].content, "  override_path = true\n"));
  CHECK(contains(files[0].content, "  ca = \"/etc/ferry/ca.pem\"\n"));
  CHECK(contains(files[0].content, "capabilities = [\"pull\", \"resolve\"]"));
  CHECK(files[1].path == "certs.d/quay.io/hosts.toml");
  CHECK(contains(files[1].content, "server = \"https://quay.io\"\n"));

  const auto plain = mirror_config(MirrorKind::containerd, {"quay.io"}, options("jump:5000", true, "/ca.pem"));
  CHECK(contains(plain[0].content, "[host.\"http://jump:5000\"]\n"));
  CHECK(!contains(plain[0].content, "override_path"));
  CHECK(!contains(plain[0].content, "ca ="));
}

TEST_CASE("k3s: registries.yaml that yaml-cpp reads back, with a rewrite for the prefix") {
  const auto files = mirror_config(MirrorKind::k3s, {"docker.io", "quay.io"},
                                   options("registry.internal:5000/mirror", false, "/etc/ferry/ca.pem"));
  REQUIRE(files.size() == 1);
  CHECK(files[0].path == "registries.yaml");
  const YAML::Node y = YAML::Load(files[0].content);
  for (const char* registry : {"docker.io", "quay.io"}) {
    const YAML::Node m = y["mirrors"][registry];
    REQUIRE(m.IsMap());
    CHECK(m["endpoint"][0].as<std::string>() == "https://registry.internal:5000");
    CHECK(m["rewrite"]["^(.*)$"].as<std::string>() == "mirror/$1");
  }
  CHECK(y["configs"]["registry.internal:5000"]["tls"]["ca_file"].as<std::string>() == "/etc/ferry/ca.pem");

  const YAML::Node bare = YAML::Load(mirror_config(MirrorKind::k3s, {"quay.io"}, options("jump:5000", true))[0].content);
  CHECK(bare["mirrors"]["quay.io"]["endpoint"][0].as<std::string>() == "http://jump:5000");
  CHECK(!bare["mirrors"]["quay.io"]["rewrite"]);
  CHECK(!bare["configs"]);
}

TEST_CASE("cri-o: one [[registry]] with its mirror per source registry") {
  const auto files =
      mirror_config(MirrorKind::crio, {"docker.io", "quay.io"}, options("registry.internal:5000/mirror", true));
  REQUIRE(files.size() == 1);
  CHECK(files[0].path == "registries.conf.d/50-ferry-mirrors.conf");
  const std::string& text = files[0].content;
  CHECK(contains(text, "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\n"
                       "location = \"registry.internal:5000/mirror\"\ninsecure = true\n"));
  CHECK(contains(text, "prefix = \"quay.io\""));
}

} // TEST_SUITE

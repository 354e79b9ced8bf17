// Tests for values/rewrite: each detector, rules, digests, the bundle's image list, the
// overlay (read back with yaml-cpp) and the errors.
// SPDX-License-Identifier: Apache-2.0
#include "values/rewrite.hpp"

#include "core/digest.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <vector>

using ferry::core::UsageError;
using ferry::test::contains;
namespace values = ferry::values;

namespace {

const std::string k_target = "registry.corp:5000/mirror";

values::Options no_bundle() {
  values::Options o;
  o.target = {"registry.corp:5000", "mirror"};
  return o;
}

values::Options bundle(std::vector<values::KnownImage> images) {
  values::Options o = no_bundle();
  o.images = std::move(images);
  o.images_given = true;
  return o;
}

std::string digest_of(const std::string& text) { return ferry::core::sha256_of(text).str(); }

values::Result run(const std::string& yaml, const values::Options& options) {
  return values::rewrite(yaml, options, "values.yaml");
}

const values::Change* change_at(const values::Result& r, const std::string& path) {
  auto it = std::find_if(r.changes.begin(), r.changes.end(), [&](const values::Change& c) { return c.path == path; });
  return it == r.changes.end() ? nullptr : &*it;
}

const values::Skipped* skipped_at(const values::Result& r, const std::string& path) {
  auto it = std::find_if(r.skipped.begin(), r.skipped.end(), [&](const values::Skipped& s) { return s.path == path; });
  return it == r.skipped.end() ? nullptr : &*it;
}

std::vector<std::string> paths(const values::Result& r) {
  std::vector<std::string> out;
  for (const auto& c : r.changes) out.push_back(c.path);
  return out;
}

YAML::Node overlay(const values::Result& r) { return YAML::Load(r.overlay_yaml); }

} // namespace

TEST_SUITE("values") {

// --- 1. image strings ------------------------------------------------------------------

TEST_CASE("rewrite places an image string with a registry host under TARGET/PATH, keeping the tag") {
  const auto r = run("app:\n  image: quay.io/org/app:1.0\n", no_bundle());
  REQUIRE(r.changes.size() == 1);
  CHECK(r.changes[0].path == "app.image");
  CHECK(r.changes[0].old_value == "quay.io/org/app:1.0");
  CHECK(r.changes[0].new_value == k_target + "/org/app:1.0");
  CHECK(r.changes[0].detector == "image string");
  CHECK(r.changes[0].image == "quay.io/org/app:1.0");
  CHECK(overlay(r)["app"]["image"].as<std::string>() == k_target + "/org/app:1.0");
  CHECK(r.skipped.empty());
}

TEST_CASE("rewrite puts Docker Hub short names under library/") {
  const auto r = run("image: nginx:1.25\nworker:\n  image: bitnami/redis\n", no_bundle());
  REQUIRE(r.changes.size() == 2);
  CHECK(change_at(r, "image")->new_value == k_target + "/library/nginx:1.25");
  SUBCASE("no tag is added where the value has none") {
    CHECK(change_at(r, "worker.image")->new_value == k_target + "/bitnami/redis");
  }
}

TEST_CASE("rewrite keeps a tag and digest written in an image string") {
  const std::string d = digest_of("app");
  const auto r = run("image: ghcr.io/example/tools:2.1@" + d + "\n", no_bundle());
  REQUIRE(r.changes.size() == 1);
  CHECK(r.changes[0].new_value == k_target + "/example/tools:2.1@" + d);
}

TEST_CASE("rewrite leaves strings that merely look like references alone") {
  const std::string yaml = "enabled: \"true\"\n"
                           "image: \"true\"\n"
                           "imageTag: \"1.2.3\"\n"
                           "version: 1.2.3\n"
                           "imagePullPolicy: Always\n"
                           "imageRegistry: docker.io\n"
                           "service: {type: ClusterIP}\n"
                           "url: https://quay.io/org/app\n"
                           "path: /usr/local/bin/app\n"
                           "note: \"nginx is a web server\"\n"
                           "images: none\n"
                           "mirror: quay.io/org/app:1.0\n"; // a host, but not under an image key and no bundle
  const auto r = run(yaml, no_bundle());
  CHECK(paths(r).empty());
  CHECK(r.skipped.empty());
  CHECK(r.overlay_yaml == "{}\n");
}

TEST_CASE("rewrite with a bundle places a host-qualified bundle image under any key, nothing else") {
  const auto options = bundle({{"quay.io/org/app:1.0", digest_of("app")}});
  const auto r = run("extra:\n  url: quay.io/org/app:1.0\n  other: quay.io/org/unknown:1\n  name: app\n", options);
  REQUIRE(r.changes.size() == 1);
  CHECK(r.changes[0].path == "extra.url");
  CHECK(r.changes[0].new_value == k_target + "/org/app:1.0");
  CHECK(r.changes[0].image == "quay.io/org/app:1.0");
  CHECK(r.skipped.empty()); // values under other keys are not image-looking enough to report
}

// --- 2. and 3. registry/repository maps -------------------------------------------------

TEST_CASE("rewrite sets registry to HOST/PREFIX in a registry/repository map and keeps the tag") {
  const auto r = run("image:\n  registry: docker.io\n  repository: bitnami/postgresql\n  tag: 15.4.0\n  pullPolicy: "
                     "IfNotPresent\n",
                     no_bundle());
  REQUIRE(r.changes.size() == 1); // the repository already is the source path
  CHECK(r.changes[0].path == "image.registry");
  CHECK(r.changes[0].old_value == "docker.io");
  CHECK(r.changes[0].new_value == k_target);
  CHECK(r.changes[0].detector == "registry/repository map");
  CHECK(r.changes[0].image == "docker.io/bitnami/postgresql:15.4.0");
  const YAML::Node o = overlay(r);
  CHECK(o["image"]["registry"].as<std::string>() == k_target);
  CHECK_FALSE(o["image"]["tag"]);
  CHECK_FALSE(o["image"]["repository"]);
}

TEST_CASE("rewrite writes library/NAME into the repository of a map naming a Docker Hub short name") {
  const auto r = run("image:\n  registry: docker.io\n  repository: nginx\n  tag: \"1.25\"\n", no_bundle());
  CHECK(change_at(r, "image.registry")->new_value == k_target);
  REQUIRE(change_at(r, "image.repository"));
  CHECK(change_at(r, "image.repository")->new_value == "library/nginx");
}

TEST_CASE("rewrite puts HOST/PREFIX/PATH into a repository with a host and a sibling tag") {
  const auto r = run("controller:\n  repository: quay.io/org/operator\n  tag: v1.2\n", no_bundle());
  REQUIRE(r.changes.size() == 1);
  CHECK(r.changes[0].path == "controller.repository");
  CHECK(r.changes[0].new_value == k_target + "/org/operator");
  CHECK(r.changes[0].detector == "repository+tag");
  CHECK(r.changes[0].image == "quay.io/org/operator:v1.2");
}

TEST_CASE("rewrite keeps a tag and digest written into a map's repository") {
  const std::string d = digest_of("app");
  const auto r = run("image:\n  repository: quay.io/org/app:1.0\nworker:\n  image:\n    registry: quay.io\n"
                     "    repository: org/worker@" +
                         d + "\n",
                     no_bundle());
  CHECK(change_at(r, "image.repository")->new_value == k_target + "/org/app:1.0");
  CHECK(change_at(r, "worker.image.registry")->new_value == k_target);
  CHECK(change_at(r, "worker.image.repository") == nullptr); // org/worker@digest stays as it is
}

TEST_CASE("rewrite ignores a map with only a repository under a key that names no image") {
  const auto r = run("chartSource:\n  repository: github.com/org/charts\n", no_bundle());
  CHECK(r.changes.empty());
  SUBCASE("under an image key it counts") {
    const auto r2 = run("image:\n  repository: quay.io/org/app\n", no_bundle());
    REQUIRE(r2.changes.size() == 1);
    CHECK(r2.changes[0].new_value == k_target + "/org/app");
  }
}

// --- 4. ingress-nginx ------------------------------------------------------------------

TEST_CASE("rewrite reads ingress-nginx's registry + image maps") {
  const std::string d = digest_of("controller");
  const auto r = run("controller:\n  image:\n    chroot: false\n    registry: registry.k8s.io\n    image: "
                     "ingress-nginx/controller\n    tag: \"v1.9.4\"\n    digest: " +
                         d + "\n    pullPolicy: IfNotPresent\n",
                     no_bundle());
  REQUIRE(r.changes.size() == 1);
  CHECK(r.changes[0].path == "controller.image.registry");
  CHECK(r.changes[0].new_value == k_target);
  CHECK(r.changes[0].detector == "ingress-nginx image map");
  CHECK(r.changes[0].image == "registry.k8s.io/ingress-nginx/controller:v1.9.4@" + d);
  CHECK(overlay(r)["controller"]["image"]["registry"].as<std::string>() == k_target);
  CHECK_FALSE(overlay(r)["controller"]["image"]["digest"]); // kept as it was
}

// --- 5. global.imageRegistry -------------------------------------------------------------

TEST_CASE("rewrite sets global.imageRegistry and global.image.registry when the keys exist, even empty") {
  SUBCASE("an empty string") {
    const auto r = run("global:\n  imageRegistry: \"\"\n", no_bundle());
    REQUIRE(r.changes.size() == 1);
    CHECK(r.changes[0].path == "global.imageRegistry");
    CHECK(r.changes[0].old_value.empty());
    CHECK(r.changes[0].new_value == k_target);
    CHECK(r.changes[0].detector == "global.imageRegistry");
  }
  SUBCASE("a null") {
    const auto r = run("global:\n  imageRegistry:\n", no_bundle());
    REQUIRE(r.changes.size() == 1);
    CHECK(overlay(r)["global"]["imageRegistry"].as<std::string>() == k_target);
  }
  SUBCASE("global.image.registry") {
    const auto r = run("global:\n  image:\n    registry: docker.io\n", no_bundle());
    REQUIRE(r.changes.size() == 1);
    CHECK(r.changes[0].path == "global.image.registry");
    CHECK(r.changes[0].detector == "global.image.registry");
  }
  SUBCASE("absent: not added") {
    const auto r = run("global:\n  storageClass: fast\n", no_bundle());
    CHECK(r.changes.empty());
  }
}

TEST_CASE("rewrite leaves a subchart's copy of global.imageRegistry to Helm's propagation") {
  const auto r = run("global:\n  imageRegistry: \"\"\npostgresql:\n  global:\n    imageRegistry: \"\"\n", no_bundle());
  CHECK(paths(r) == std::vector<std::string>{"global.imageRegistry"});
  SUBCASE("but sets it when the top level has none") {
    const auto r2 = run("postgresql:\n  global:\n    imageRegistry: \"\"\n", no_bundle());
    CHECK(paths(r2) == std::vector<std::string>{"postgresql.global.imageRegistry"});
  }
}

// --- lists, templates, overlay -----------------------------------------------------------

TEST_CASE("rewrite writes a list holding a changed value whole") {
  const auto r = run("sidecars:\n"
                     "  - name: shipper\n    image: quay.io/org/shipper:2\n    args: [\"--quiet\"]\n    version: \"1.10\"\n"
                     "  - name: box\n    image: busybox\n    port: 80\n"
                     "replicas: 3\n",
                     no_bundle());
  CHECK(paths(r) == std::vector<std::string>{"sidecars[0].image", "sidecars[1].image"});
  const YAML::Node o = overlay(r);
  REQUIRE(o["sidecars"].IsSequence());
  REQUIRE(o["sidecars"].size() == 2);
  CHECK(o["sidecars"][0]["name"].as<std::string>() == "shipper");
  CHECK(o["sidecars"][0]["args"][0].as<std::string>() == "--quiet");
  CHECK(o["sidecars"][0]["image"].as<std::string>() == k_target + "/org/shipper:2");
  CHECK(o["sidecars"][1]["image"].as<std::string>() == k_target + "/library/busybox");
  CHECK_FALSE(o["replicas"]);
  SUBCASE("scalars keep their YAML type") {
    CHECK(contains(r.overlay_yaml, "version: \"1.10\"")); // a string stays quoted
    CHECK(contains(r.overlay_yaml, "port: 80\n"));        // a number stays plain
  }
}

TEST_CASE("rewrite skips templated values with that reason") {
  const auto r = run("image: \"{{ .Values.global.registry }}/app:1\"\n"
                     "worker:\n  image:\n    repository: \"{{ .Values.repo }}\"\n    tag: \"1\"\n"
                     "annotation: \"{{ .Release.Name }}\"\n",
                     no_bundle());
  CHECK(r.changes.empty());
  REQUIRE(r.skipped.size() == 2);
  CHECK(r.skipped[0].path == "image");
  CHECK(contains(r.skipped[0].reason, "templated"));
  CHECK(r.skipped[1].path == "worker.image.repository");
  CHECK(contains(r.skipped[1].reason, "templated"));
}

TEST_CASE("rewrite follows YAML anchors and merge keys like Helm") {
  const auto r = run("defaults: &defaults\n  repository: quay.io/org/app\n  pullPolicy: Always\n"
                     "image:\n  <<: *defaults\n  tag: \"2.0\"\n",
                     no_bundle());
  REQUIRE(change_at(r, "image.repository"));
  CHECK(change_at(r, "image.repository")->image == "quay.io/org/app:2.0");
  CHECK(change_at(r, "image.repository")->new_value == k_target + "/org/app");
  const YAML::Node o = overlay(r);
  CHECK(o["image"]["repository"].as<std::string>() == k_target + "/org/app");
  CHECK_FALSE(o["image"]["tag"]);
}

TEST_CASE("rewrite reports changes in document order and writes the overlay deterministically") {
  const std::string yaml = "zeta:\n  image: quay.io/z/z:1\nalpha:\n  image: quay.io/a/a:1\nglobal:\n  imageRegistry: ''\n";
  const auto r1 = run(yaml, no_bundle());
  const auto r2 = run(yaml, no_bundle());
  CHECK(paths(r1) == std::vector<std::string>{"zeta.image", "alpha.image", "global.imageRegistry"});
  CHECK(r1.overlay_yaml == r2.overlay_yaml);
  CHECK(r1.overlay_yaml.find("zeta") < r1.overlay_yaml.find("alpha"));
}

TEST_CASE("rewrite skips values already under the internal registry") {
  const auto options = bundle({{"quay.io/org/app:1.0", ""}});
  const auto r = run("image: registry.corp:5000/mirror/org/app:1.0\n", options);
  CHECK(r.changes.empty());
  REQUIRE(r.skipped.size() == 1);
  CHECK(contains(r.skipped[0].reason, "already points at the internal registry"));
  CHECK(r.unplaced.empty());
}

// --- the bundle's images, digests ---------------------------------------------------------

TEST_CASE("rewrite with a bundle rewrites only its images and lists the ones it did not place") {
  const auto options = bundle({{"quay.io/org/app:1.0", digest_of("app")},
                               {"docker.io/library/redis:7.2", digest_of("redis")},
                               {"nginx:1.25", digest_of("nginx")}});
  const auto r = run("app:\n  image: quay.io/org/app:1.0\n"
                     "web:\n  image: docker.io/library/nginx:1.25\n"
                     "old:\n  image: quay.io/org/app:0.9\n"
                     "other:\n  image: quay.io/org/other:1\n",
                     options);
  CHECK(paths(r) == std::vector<std::string>{"app.image", "web.image"});
  CHECK(change_at(r, "web.image")->image == "nginx:1.25");
  CHECK(r.unplaced == std::vector<std::string>{"docker.io/library/redis:7.2"});
  REQUIRE(skipped_at(r, "old.image"));
  CHECK(contains(skipped_at(r, "old.image")->reason, "not in the bundle"));
  CHECK(contains(skipped_at(r, "old.image")->reason, "quay.io/org/app:1.0")); // what the bundle has instead
  REQUIRE(skipped_at(r, "other.image"));
  CHECK(skipped_at(r, "other.image")->reason == "not in the bundle");
}

TEST_CASE("rewrite matches a map with an empty tag to any tag of the bundle image") {
  const auto options = bundle({{"docker.io/bitnami/postgresql:15.4.0", digest_of("pg")}});
  const auto r = run("image:\n  registry: docker.io\n  repository: bitnami/postgresql\n  tag: \"\"\n", options);
  REQUIRE(r.changes.size() == 1);
  CHECK(r.changes[0].image == "docker.io/bitnami/postgresql:15.4.0");
  CHECK(r.unplaced.empty());
}

TEST_CASE("rewrite with pin_digests writes the bundle digest where the value can hold one") {
  const std::string d = digest_of("app");
  auto options = bundle({{"quay.io/org/app:1.0", d}, {"docker.io/bitnami/nginx:1.25", digest_of("nginx")}});
  options.pin_digests = true;
  SUBCASE("an image string gets @digest") {
    const auto r = run("image: quay.io/org/app:1.0\n", options);
    REQUIRE(r.changes.size() == 1);
    CHECK(r.changes[0].new_value == k_target + "/org/app:1.0@" + d);
  }
  SUBCASE("a map's digest key is set") {
    const auto r = run("image:\n  registry: quay.io\n  repository: org/app\n  tag: \"1.0\"\n  digest: \"\"\n", options);
    REQUIRE(change_at(r, "image.digest"));
    CHECK(change_at(r, "image.digest")->new_value == d);
    CHECK(overlay(r)["image"]["digest"].as<std::string>() == d);
  }
  SUBCASE("a map without a digest key is reported, not extended") {
    const auto r = run("image:\n  registry: docker.io\n  repository: bitnami/nginx\n  tag: \"1.25\"\n", options);
    CHECK(paths(r) == std::vector<std::string>{"image.registry"});
    REQUIRE(skipped_at(r, "image.repository"));
    CHECK(contains(skipped_at(r, "image.repository")->reason, "not pinned"));
  }
  SUBCASE("without pin_digests no digest is added") {
    options.pin_digests = false;
    const auto r = run("image: quay.io/org/app:1.0\n", options);
    CHECK(r.changes[0].new_value == k_target + "/org/app:1.0");
  }
}

TEST_CASE("rewrite replaces a digest that is not the bundle's") {
  const std::string bundle_digest = digest_of("filtered index");
  const std::string upstream = digest_of("upstream index");
  const auto options = bundle({{"registry.k8s.io/ingress-nginx/controller:v1.9.4", bundle_digest}});
  const auto r = run("controller:\n  image:\n    registry: registry.k8s.io\n    image: ingress-nginx/controller\n"
                     "    tag: v1.9.4\n    digest: " +
                         upstream + "\n",
                     options);
  REQUIRE(change_at(r, "controller.image.digest"));
  CHECK(change_at(r, "controller.image.digest")->old_value == upstream);
  CHECK(change_at(r, "controller.image.digest")->new_value == bundle_digest);
}

// --- 6. rules --------------------------------------------------------------------------

TEST_CASE("rewrite applies rules such as AIStor's repositories.*.hostname and pathPrefix") {
  values::Options options = no_bundle();
  options.rules = {{"repositories.*.hostname", "{registry}"}, {"repositories.*.pathPrefix", "{prefix/}{value}"}};
  const auto r = run("repositories:\n"
                     "  minio:\n    hostname: quay.io\n    pathPrefix: minio/aistor\n"
                     "  operator:\n    hostname: quay.io\n    pathPrefix: minio/aistor\n"
                     "images:\n  minio:\n    name: minio\n    tag: RELEASE.2025-05-30T11-03-39Z\n",
                     options);
  CHECK(paths(r) == std::vector<std::string>{"repositories.minio.hostname", "repositories.minio.pathPrefix",
                                              "repositories.operator.hostname", "repositories.operator.pathPrefix"});
  CHECK(change_at(r, "repositories.minio.hostname")->new_value == "registry.corp:5000");
  CHECK(change_at(r, "repositories.minio.pathPrefix")->new_value == "mirror/minio/aistor");
  CHECK(change_at(r, "repositories.minio.pathPrefix")->detector == "rule repositories.*.pathPrefix");
  const YAML::Node o = overlay(r);
  CHECK(o["repositories"]["operator"]["hostname"].as<std::string>() == "registry.corp:5000");
  CHECK(o["repositories"]["operator"]["pathPrefix"].as<std::string>() == "mirror/minio/aistor");
  CHECK_FALSE(o["images"]);
  SUBCASE("a templated value is skipped") {
    const auto r2 = run("repositories:\n  minio:\n    hostname: \"{{ .Values.host }}\"\n    pathPrefix: minio\n",
                        options);
    CHECK(paths(r2) == std::vector<std::string>{"repositories.minio.pathPrefix"});
    REQUIRE(skipped_at(r2, "repositories.minio.hostname"));
    CHECK(contains(skipped_at(r2, "repositories.minio.hostname")->reason, "templated"));
  }
  SUBCASE("without a prefix {prefix/} is empty") {
    options.target.prefix.clear();
    const auto r2 = run("repositories:\n  minio:\n    hostname: quay.io\n    pathPrefix: minio/aistor\n", options);
    CHECK(change_at(r2, "repositories.minio.pathPrefix") == nullptr);
    CHECK(change_at(r2, "repositories.minio.hostname")->new_value == "registry.corp:5000");
  }
}

TEST_CASE("rewrite counts a bundle image as placed by a rule that rewrote its registry, and no other") {
  values::Options options = no_bundle();
  options.images_given = true;
  options.images = {{"quay.io/minio/aistor/minio:RELEASE.2025-05-30T11-03-39Z", ""},
                    {"ghcr.io/example/tool:1.0", ""},
                    {"docker.io/library/busybox:1.36", ""}};
  options.rules = {{"repositories.*.hostname", "{registry}"}, {"tools.host", "{registry}"}};
  const std::string values = "repositories:\n  minio:\n    hostname: quay.io\n    pathPrefix: minio/aistor\n"
                             "tools:\n  host: ghcr.io/example\n";
  const auto r = run(values, options);
  REQUIRE(r.by_rules.size() == 2);
  CHECK(r.by_rules[0].image == options.images[0].ref);
  CHECK(r.by_rules[0].rule == "repositories.*.hostname");
  CHECK(r.by_rules[0].path == "repositories.minio.hostname");
  // A leading part of the reference, up to a '/', counts too.
  CHECK(r.by_rules[1].image == options.images[1].ref);
  CHECK(r.by_rules[1].path == "tools.host");
  // Nothing rewrote docker.io: that image is still unplaced.
  CHECK(r.unplaced == std::vector<std::string>{"docker.io/library/busybox:1.36"});
  SUBCASE("a value that is only a prefix of the host, not up to a '/', does not count") {
    options.rules = {{"tools.host", "{registry}"}};
    const auto r2 = run("tools:\n  host: ghcr.io/exam\n", options);
    CHECK(r2.by_rules.empty());
    CHECK(r2.unplaced.size() == 3);
  }
}

TEST_CASE("rewrite refuses a rule whose path matches nothing, naming it") {
  values::Options options = no_bundle();
  options.rules = {{"repositories.*.hostnme", "{registry}"}};
  try {
    run("repositories:\n  minio:\n    hostname: quay.io\n", options);
    FAIL("no error");
  } catch (const UsageError& e) {
    CHECK(contains(e.what(), "repositories.*.hostnme"));
    CHECK(contains(e.what(), "matches nothing in values.yaml"));
    CHECK(contains(e.hint(), "hostname"));
  }
}

TEST_CASE("rewrite refuses a rule with an unknown placeholder or one ending at a map") {
  values::Options options = no_bundle();
  SUBCASE("unknown placeholder") {
    options.rules = {{"repositories.*.hostname", "{host}"}};
    CHECK_THROWS_WITH_AS(run("repositories:\n  a:\n    hostname: x\n", options),
                         doctest::Contains("unknown placeholder {host}"), UsageError);
  }
  SUBCASE("a map") {
    options.rules = {{"repositories.*", "{registry}"}};
    CHECK_THROWS_WITH_AS(run("repositories:\n  a:\n    hostname: x\n", options), doctest::Contains("which is a map"),
                         UsageError);
  }
}

TEST_CASE("rewrite lets a rule address list items") {
  values::Options options = no_bundle();
  options.rules = {{"mirrors[1].host", "{registry/prefix}"}};
  const auto r = run("mirrors:\n  - host: a.example\n  - host: b.example\n", options);
  CHECK(paths(r) == std::vector<std::string>{"mirrors[1].host"});
  CHECK(overlay(r)["mirrors"][0]["host"].as<std::string>() == "a.example");
  CHECK(overlay(r)["mirrors"][1]["host"].as<std::string>() == k_target);
}

// --- errors ------------------------------------------------------------------------------

TEST_CASE("rewrite names the document and line of a YAML syntax error") {
  try {
    run("image:\n  repository: nginx\n  tag: [1.25\nother: 1\n", no_bundle());
    FAIL("no error");
  } catch (const UsageError& e) {
    // The unclosed flow sequence of line 3 is found where the next key starts.
    CHECK(contains(e.what(), "values.yaml:4:6: YAML syntax error"));
  }
  SUBCASE("a document that is not a map") {
    CHECK_THROWS_WITH_AS(run("- a\n- b\n", no_bundle()), doctest::Contains("values.yaml is not a YAML map"), UsageError);
  }
}

TEST_CASE("rewrite refuses a bundle image list entry that is not a reference") {
  CHECK_THROWS_AS(run("image: nginx\n", bundle({{"Not A Ref", ""}})), UsageError);
}

} // TEST_SUITE

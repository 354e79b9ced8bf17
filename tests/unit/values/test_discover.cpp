// Tests for values/discover: image annotations (artifacthub.io and helm.sh), images named
// by values (every convention, subcharts, globals, appVersion tags), rendered manifests
// (Deployments, CronJobs, init and ephemeral containers, custom resources) and the merged
// list with how each image was found.
// SPDX-License-Identifier: Apache-2.0
#include "values/discover.hpp"
#include "values/rewrite.hpp"

#include "chart/chart_archive.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <algorithm>
#include <string>
#include <vector>

using ferry::chart::ArchiveFile;
using ferry::core::UsageError;
using ferry::test::contains;
namespace values = ferry::values;
using values::Method;

namespace {

std::string tgz(const std::string& name, std::vector<ArchiveFile> files) {
  return ferry::chart::write_chart_archive(name, std::move(files), 0, name + ".tgz");
}

ArchiveFile file(std::string path, std::string data) { return {std::move(path), std::move(data), false}; }

const values::DiscoveredImage* image(const values::Discovery& d, const std::string& ref) {
  const auto& images = d.images();
  auto it = std::find_if(images.begin(), images.end(), [&](const auto& i) { return i.ref == ref; });
  return it == images.end() ? nullptr : &*it;
}

std::vector<std::string> refs(const values::Discovery& d) {
  std::vector<std::string> out;
  for (const auto& i : d.images()) out.push_back(i.ref);
  return out;
}

const values::RenderedImage* rendered(const std::vector<values::RenderedImage>& images, const std::string& field) {
  auto it = std::find_if(images.begin(), images.end(), [&](const auto& i) { return i.field == field; });
  return it == images.end() ? nullptr : &*it;
}

// An application chart in the shape of DataChain Studio's: registry maps with empty tags
// (the templates use appVersion), a redis subchart as a directory with a helm.sh/images
// annotation, a postgresql subchart as a nested archive under an alias, and an
// artifacthub.io/images annotation on the top chart.
std::string studio_chart() {
  const std::string postgresql = tgz(
      "postgresql",
      {file("Chart.yaml", "apiVersion: v2\nname: postgresql\nversion: 12.5.8\nappVersion: 15.3.0\n"),
       file("values.yaml", "global:\n  imageRegistry: \"\"\nimage:\n  registry: docker.io\n  repository: bitnami/postgresql\n"
                           "  tag: 15.3.0-debian-11-r7\n  digest: \"\"\n  pullPolicy: IfNotPresent\n"
                           "metrics:\n  image:\n    registry: docker.io\n    repository: bitnami/postgres-exporter\n"
                           "    tag: \"\"\n")});
  return tgz("studio",
             {file("Chart.yaml", "apiVersion: v2\nname: studio\nversion: 2.150.0\nappVersion: v2.150.0\n"
                                 "annotations:\n"
                                 "  artifacthub.io/images: |\n"
                                 "    - name: backend\n"
                                 "      image: docker.io/iterativeai/studio-backend:v2.150.0\n"
                                 "      platforms: [linux/amd64]\n"
                                 "dependencies:\n"
                                 "  - {name: postgresql, version: 12.5.8, alias: db}\n"
                                 "  - {name: redis, version: 17.11.3}\n"),
              file("values.yaml", "global:\n  imageRegistry: \"\"\n"
                                  "backend:\n  image:\n    registry: docker.io\n    repository: iterativeai/studio-backend\n"
                                  "    tag: \"\"\n"
                                  "worker:\n  image: quay.io/iterative/worker:1.4\n"
                                  "ingress:\n  controller:\n    image:\n      registry: registry.k8s.io\n"
                                  "      image: ingress-nginx/controller\n      tag: v1.9.4\n"
                                  "proxy:\n  image:\n    repository: ghcr.io/example/proxy\n    tag: \"2.0\"\n"
                                  "hook:\n  image: \"{{ .Values.global.hookImage }}\"\n"),
              file("charts/db-12.5.8.tgz", postgresql),
              file("charts/redis/Chart.yaml", "apiVersion: v2\nname: redis\nversion: 17.11.3\nappVersion: 7.0.11\n"
                                              "annotations:\n"
                                              "  helm.sh/images: |\n"
                                              "    - name: redis\n"
                                              "      image: docker.io/bitnami/redis:7.0.11-debian-11-r12\n"
                                              "      condition: redis.enabled\n"),
              file("charts/redis/values.yaml", "image:\n  registry: docker.io\n  repository: bitnami/redis\n"
                                               "  tag: 7.0.11-debian-11-r12\n"),
              file("templates/deployment.yaml", "kind: Deployment\n")});
}

} // namespace

TEST_SUITE("values") {

// --- annotations -------------------------------------------------------------------------

TEST_CASE("parse_image_annotations reads artifacthub.io/images with names and platforms") {
  const auto r = values::parse_image_annotations(
      {{"artifacthub.io/images", "- name: operator\n  image: quay.io/minio/operator:v5.0.1\n  platforms:\n"
                                 "    - linux/amd64\n    - linux/arm64\n"
                                 "- name: sidecar\n  image: quay.io/minio/sidecar:v0.1\n  whitelisted: true\n"},
       {"artifacthub.io/license", "Apache-2.0"}},
      "chart operator");
  REQUIRE(r.images.size() == 2);
  CHECK(r.problems.empty());
  CHECK(r.images[0].annotation == "artifacthub.io/images");
  CHECK(r.images[0].name == "operator");
  CHECK(r.images[0].image == "quay.io/minio/operator:v5.0.1");
  CHECK(r.images[0].platforms == std::vector<std::string>{"linux/amd64", "linux/arm64"});
  CHECK(r.images[1].image == "quay.io/minio/sidecar:v0.1");
  CHECK(r.images[1].platforms.empty());
}

TEST_CASE("parse_image_annotations reads helm.sh/images with conditions, after artifacthub.io/images") {
  const auto r = values::parse_image_annotations(
      {{"helm.sh/images", "- name: keycloak\n  image: registry1.example.mil/keycloak:21.1.1\n"
                          "- name: postgres\n  condition: postgresql.enabled\n  image: docker.io/library/postgres:15\n"},
       {"artifacthub.io/images", "[{name: a, image: quay.io/a/a:1}]"}},
      "chart keycloak");
  REQUIRE(r.images.size() == 3);
  CHECK(r.images[0].annotation == "artifacthub.io/images");
  CHECK(r.images[1].annotation == "helm.sh/images");
  CHECK(r.images[1].image == "registry1.example.mil/keycloak:21.1.1");
  CHECK(r.images[2].condition == "postgresql.enabled");
}

TEST_CASE("parse_image_annotations reports a broken annotation without throwing") {
  SUBCASE("not YAML") {
    const auto r = values::parse_image_annotations({{"artifacthub.io/images", "- name: [a\n"}}, "chart x");
    CHECK(r.images.empty());
    REQUIRE(r.problems.size() == 1);
    CHECK(contains(r.problems[0], "artifacthub.io/images of chart x is not YAML"));
  }
  SUBCASE("not a list") {
    const auto r = values::parse_image_annotations({{"helm.sh/images", "image: nginx\n"}}, "chart x");
    REQUIRE(r.problems.size() == 1);
    CHECK(contains(r.problems[0], "not a list of images"));
  }
  SUBCASE("an entry without image is skipped and named, the others kept") {
    const auto r =
        values::parse_image_annotations({{"helm.sh/images", "- name: a\n- name: b\n  image: nginx:1.25\n- plain\n"}}, "chart x");
    REQUIRE(r.images.size() == 1);
    CHECK(r.images[0].image == "nginx:1.25");
    REQUIRE(r.problems.size() == 2);
    CHECK(contains(r.problems[0], "entry 1 (a) has no `image`"));
    CHECK(contains(r.problems[1], "entry 3 is not a map"));
  }
}

TEST_CASE("discover_from_annotations reads the chart's and its subcharts' annotations, naming each chart") {
  values::Discovery d;
  values::discover_from_annotations(studio_chart(), "studio.tgz", d);
  CHECK(refs(d) == std::vector<std::string>{"docker.io/iterativeai/studio-backend:v2.150.0",
                                            "docker.io/bitnami/redis:7.0.11-debian-11-r12"});
  REQUIRE(d.images().size() == 2);
  CHECK(d.images()[0].found_by[0].method == Method::annotation);
  CHECK(d.images()[0].found_by[0].where == "artifacthub.io/images of chart studio: backend");
  CHECK(d.images()[1].found_by[0].where == "helm.sh/images of chart studio/redis: redis");
  CHECK(d.unresolved().empty());
}

// --- values ------------------------------------------------------------------------------

TEST_CASE("detect_images lists what the detectors recognise, with the map's registry and whether a tag is written") {
  const auto r = values::detect_images("a:\n  image: {registry: docker.io, repository: bitnami/redis, tag: \"\"}\n"
                                       "b:\n  image: quay.io/org/b:1.0\n"
                                       "list:\n  - image: nginx\n",
                                       "values.yaml");
  REQUIRE(r.images.size() == 3);
  CHECK(r.images[0].path == "a.image.repository");
  CHECK(r.images[0].keys == std::vector<std::string>{"a", "image", "repository"});
  CHECK(r.images[0].reference == "docker.io/bitnami/redis");
  CHECK(r.images[0].registry == std::optional<std::string>("docker.io"));
  CHECK_FALSE(r.images[0].tag_written);
  CHECK(r.images[1].detector == "image string");
  CHECK(r.images[1].tag_written);
  CHECK_FALSE(r.images[1].registry.has_value());
  CHECK(r.images[2].keys == std::vector<std::string>{"list", "[0]", "image"});
}

TEST_CASE("discover_from_values finds every convention, in subcharts too, with appVersion tags from the right chart") {
  values::Discovery d;
  values::discover_from_values(studio_chart(), {}, "", "studio.tgz", d);
  CHECK(refs(d) == std::vector<std::string>{
                       "docker.io/iterativeai/studio-backend:v2.150.0", // tag from the top chart's appVersion
                       "quay.io/iterative/worker:1.4",                   // image string
                       "registry.k8s.io/ingress-nginx/controller:v1.9.4", // ingress-nginx map
                       "ghcr.io/example/proxy:2.0",                      // repository + tag
                       "docker.io/bitnami/postgresql:15.3.0-debian-11-r7",
                       "docker.io/bitnami/postgres-exporter:15.3.0", // tag from the subchart's appVersion
                       "docker.io/bitnami/redis:7.0.11-debian-11-r12",
                   });
  const auto* backend = image(d, "docker.io/iterativeai/studio-backend:v2.150.0");
  REQUIRE(backend);
  REQUIRE(backend->found_by.size() == 1);
  CHECK(backend->found_by[0].method == Method::values);
  CHECK(backend->found_by[0].where ==
        "backend.image.repository (registry/repository map; tag from appVersion of studio)");
  CHECK(backend->found_by[0].tag_guessed);
  const auto* postgresql = image(d, "docker.io/bitnami/postgresql:15.3.0-debian-11-r7");
  REQUIRE(postgresql);
  CHECK(postgresql->found_by[0].where == "db.image.repository (registry/repository map)"); // under the alias
  CHECK_FALSE(postgresql->found_by[0].tag_guessed);
  const auto* exporter = image(d, "docker.io/bitnami/postgres-exporter:15.3.0");
  REQUIRE(exporter);
  CHECK(contains(exporter->found_by[0].where, "tag from appVersion of studio/db"));
  // The templated value is reported, not listed.
  REQUIRE(d.unresolved().size() == 1);
  CHECK(d.unresolved()[0].text == "{{ .Values.global.hookImage }}");
  CHECK(d.unresolved()[0].found.where == "hook.image");
  CHECK(contains(d.unresolved()[0].reason, "templated"));
}

TEST_CASE("discover_from_values takes the release's values files, later ones winning, and records the release") {
  values::Discovery d;
  values::discover_from_values(studio_chart(),
                               {{"values/a.yaml", "worker:\n  image: quay.io/iterative/worker:1.5\nbackend:\n  image:\n"
                                                  "    tag: v2.151.0\n"},
                                {"values/b.yaml", "worker:\n  image: quay.io/iterative/worker:1.6\n"}},
                               "studio-prod", "studio.tgz", d);
  CHECK(image(d, "quay.io/iterative/worker:1.6"));
  CHECK_FALSE(image(d, "quay.io/iterative/worker:1.4"));
  CHECK_FALSE(image(d, "quay.io/iterative/worker:1.5"));
  const auto* backend = image(d, "docker.io/iterativeai/studio-backend:v2.151.0");
  REQUIRE(backend);
  CHECK(backend->found_by[0].release == "studio-prod");
  CHECK_FALSE(backend->found_by[0].tag_guessed);
}

TEST_CASE("discover_from_values replaces a map's registry with global.imageRegistry, in subcharts too") {
  values::Discovery d;
  values::discover_from_values(studio_chart(), {{"site.yaml", "global:\n  imageRegistry: harbor.corp/hub\n"}}, "rel",
                               "studio.tgz", d);
  CHECK(image(d, "harbor.corp/hub/iterativeai/studio-backend:v2.150.0"));
  const auto* postgresql = image(d, "harbor.corp/hub/bitnami/postgresql:15.3.0-debian-11-r7");
  REQUIRE(postgresql);
  CHECK(contains(postgresql->found_by[0].where, "registry from global.imageRegistry"));
  CHECK(image(d, "harbor.corp/hub/bitnami/redis:7.0.11-debian-11-r12"));
  // Image strings and maps without a registry key are not the convention's.
  CHECK(image(d, "quay.io/iterative/worker:1.4"));
  CHECK(image(d, "ghcr.io/example/proxy:2.0"));
  CHECK_FALSE(image(d, "docker.io/bitnami/postgresql:15.3.0-debian-11-r7"));
}

TEST_CASE("discover_from_values refuses values that do not parse, naming the file") {
  values::Discovery d;
  CHECK_THROWS_WITH_AS(values::discover_from_values(studio_chart(), {{"bad.yaml", "a: : b\n"}}, "", "studio.tgz", d),
                       doctest::Contains("bad.yaml:1"), UsageError);
}

// --- rendered manifests ------------------------------------------------------------------

const std::string k_rendered = R"(---
# Source: app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rel-app
  annotations:
    image: docker.io/library/not-an-image-field:1.0
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: quay.io/prometheus/busybox:latest
      containers:
        - name: app
          image: "nginx:1.25"
          imagePullPolicy: IfNotPresent
        - name: tools
          image: ghcr.io/example/tools:2.1
---
# Source: app/templates/cronjob.yaml
apiVersion: batch/v1
kind: CronJob
metadata:
  name: rel-backup
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: backup
              image: docker.io/library/postgres:15.3
---
apiVersion: v1
kind: Pod
metadata:
  name: rel-debug
spec:
  containers:
    - name: main
      image: docker.io/library/alpine:3.19
  ephemeralContainers:
    - name: debugger
      image: docker.io/library/busybox:1.36
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: rel-prometheus
spec:
  image: quay.io/prometheus/prometheus:v2.48.0
  imagePullPolicy: Always
  thanos:
    baseImage: quay.io/thanos/thanos
    image:
      repository: quay.io/thanos/thanos
      tag: v0.32.5
  containers:
    - name: config-reloader
      resources: {limits: {cpu: 100m}}
  replicas: 2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: rel-config
data:
  enabled: "true"
  image: "none"
)";

TEST_CASE("parse_rendered_images reads containers of Deployments, CronJobs and Pods, init and ephemeral ones included") {
  const auto images = values::parse_rendered_images(k_rendered, "helm template rel");
  const auto* init = rendered(images, "spec.template.spec.initContainers[init].image");
  REQUIRE(init);
  CHECK(init->image == "quay.io/prometheus/busybox:latest");
  CHECK(init->object == "Deployment/rel-app");
  CHECK(init->container);
  const auto* app = rendered(images, "spec.template.spec.containers[app].image");
  REQUIRE(app);
  CHECK(app->image == "nginx:1.25");
  CHECK(rendered(images, "spec.template.spec.containers[tools].image"));
  const auto* backup = rendered(images, "spec.jobTemplate.spec.template.spec.containers[backup].image");
  REQUIRE(backup);
  CHECK(backup->object == "CronJob/rel-backup");
  CHECK(backup->image == "docker.io/library/postgres:15.3");
  const auto* debugger = rendered(images, "spec.ephemeralContainers[debugger].image");
  REQUIRE(debugger);
  CHECK(debugger->object == "Pod/rel-debug");
  CHECK(debugger->image == "docker.io/library/busybox:1.36");
  CHECK(rendered(images, "spec.containers[main].image"));
}

TEST_CASE("parse_rendered_images reads image fields of custom resources, strings and repository maps") {
  const auto images = values::parse_rendered_images(k_rendered, "helm template rel");
  const auto* prometheus = rendered(images, "spec.image");
  REQUIRE(prometheus);
  CHECK(prometheus->object == "Prometheus/rel-prometheus");
  CHECK(prometheus->image == "quay.io/prometheus/prometheus:v2.48.0");
  CHECK_FALSE(prometheus->container);
  const auto* thanos = rendered(images, "spec.thanos.image");
  REQUIRE(thanos);
  CHECK(thanos->image == "quay.io/thanos/thanos:v0.32.5");
  CHECK(rendered(images, "spec.thanos.baseImage"));
  // A container without an image (a patch of the operator's container) adds nothing;
  // metadata and words of configuration are not images.
  CHECK_FALSE(rendered(images, "spec.containers[config-reloader].image"));
  CHECK_FALSE(rendered(images, "metadata.annotations.image"));
  CHECK_FALSE(rendered(images, "data.image"));
  CHECK(images.size() == 9);
}

TEST_CASE("parse_rendered_images refuses text that is not YAML, naming it") {
  CHECK_THROWS_WITH_AS(values::parse_rendered_images("kind: Pod\nspec: [\n", "helm template rel"),
                       doctest::Contains("helm template rel"), UsageError);
}

TEST_CASE("discover_from_render normalises and merges what it finds, and reports container images that are no references") {
  values::Discovery d;
  const std::string manifests = k_rendered + "---\nkind: Job\nmetadata: {name: rel-migrate}\nspec:\n  template:\n"
                                             "    spec:\n      containers:\n        - name: a\n          image: nginx:1.25\n"
                                             "        - name: b\n          image: \"docker.io/example/app:\"\n";
  values::discover_from_render(manifests, "rel", "helm template rel", d);
  const auto* nginx = image(d, "docker.io/library/nginx:1.25");
  REQUIRE(nginx);
  REQUIRE(nginx->found_by.size() == 2);
  CHECK(nginx->found_by[0].method == Method::render);
  CHECK(nginx->found_by[0].where == "Deployment/rel-app spec.template.spec.containers[app].image");
  CHECK(nginx->found_by[0].release == "rel");
  CHECK(nginx->found_by[1].where == "Job/rel-migrate spec.template.spec.containers[a].image");
  CHECK(image(d, "quay.io/thanos/thanos:v0.32.5"));
  CHECK(image(d, "quay.io/thanos/thanos:latest")); // baseImage, as written
  REQUIRE(d.unresolved().size() == 1);
  CHECK(d.unresolved()[0].text == "docker.io/example/app:");
  CHECK(contains(d.unresolved()[0].reason, "not an image reference"));
}

// --- the merged list ---------------------------------------------------------------------

TEST_CASE("Discovery::add merges the same image found twice and keeps the reference with a digest") {
  const std::string digest = "sha256:" + std::string(64, 'a');
  values::Discovery d;
  d.add("nginx", {Method::values, "image"});
  d.add("docker.io/library/nginx:latest", {Method::render, "Pod/x spec.containers[a].image", "rel"});
  d.add("nginx:latest@" + digest, {Method::annotation, "artifacthub.io/images of chart x"});
  d.add("nginx:1.25", {Method::values, "other"});
  REQUIRE(d.images().size() == 2);
  CHECK(d.images()[0].ref == "docker.io/library/nginx:latest@" + digest);
  CHECK(d.images()[0].found_by.size() == 3);
  CHECK(d.images()[1].ref == "docker.io/library/nginx:1.25");
  // The very same finding again adds nothing.
  d.add("nginx:1.25", {Method::values, "other"});
  CHECK(d.images()[1].found_by.size() == 1);
}

TEST_CASE("Discovery::add keeps templated leftovers and non-references apart") {
  values::Discovery d;
  d.add("{{ .Values.registry }}/app:1.0", {Method::annotation, "helm.sh/images of chart x"});
  d.add("Not/A/Reference", {Method::annotation, "helm.sh/images of chart x"});
  CHECK(d.images().empty());
  REQUIRE(d.unresolved().size() == 2);
  CHECK(contains(d.unresolved()[0].reason, "templated"));
  CHECK(contains(d.unresolved()[1].reason, "not an image reference"));
}

TEST_CASE("Discovery::drop_unconfirmed_guesses drops an appVersion tag the render contradicts") {
  values::Discovery d;
  d.add("example/app:1.0", {Method::values, "image.repository", "", true});
  d.add("example/app:latest", {Method::render, "Deployment/x spec.template.spec.containers[a].image"});
  d.add("example/other:2.0", {Method::values, "other.repository", "", true}); // nothing rendered it: kept
  d.add("example/kept:1.0", {Method::values, "kept.repository", "", true});
  d.add("example/kept:1.0", {Method::annotation, "helm.sh/images of chart x"}); // confirmed another way
  d.add("example/kept:2.0", {Method::render, "Deployment/x spec.template.spec.containers[b].image"});
  d.drop_unconfirmed_guesses();
  CHECK(refs(d) == std::vector<std::string>{"docker.io/example/app:latest", "docker.io/example/other:2.0",
                                            "docker.io/example/kept:1.0", "docker.io/example/kept:2.0"});
}

TEST_CASE("same_image compares names, tags and digests") {
  const std::string a = "sha256:" + std::string(64, 'a');
  const std::string b = "sha256:" + std::string(64, 'b');
  CHECK(values::same_image("nginx", "docker.io/library/nginx:latest"));
  CHECK(values::same_image("nginx:1.25", "nginx:1.25@" + a));
  CHECK(values::same_image("app@" + a, "app:1.0@" + a));
  CHECK_FALSE(values::same_image("nginx:1.25@" + a, "nginx:1.25@" + b));
  CHECK_FALSE(values::same_image("nginx:1.25", "nginx:1.26"));
  CHECK_FALSE(values::same_image("nginx:1.25", "quay.io/nginx:1.25"));
  CHECK_FALSE(values::same_image("app:1.0", "app@" + a));
  CHECK_FALSE(values::same_image("{{ x }}", "{{ x }}"));
}

} // TEST_SUITE

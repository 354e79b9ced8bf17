// Tests for the pure parts of ferry check: image fields of rendered manifests, images
// against the bundle under the target, values leaves, sentinels and their bookkeeping.
// SPDX-License-Identifier: Apache-2.0
#include "check.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <algorithm>

using ferry::image_problem;
using ferry::PushedImage;
using ferry::PushTarget;
using ferry::RenderAttempt;
using ferry::RenderedImage;
using ferry::SentinelMap;
using ferry::ValueLeaf;
using ferry::test::contains;

namespace {

const std::string k_stream = R"(---
# Source: app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rel-app
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: "reg.corp/busybox:1.36"
      containers:
        - name: app
          image: reg.corp/app:1.0
          env:
            - name: IMAGE
              value: not-an-image-field
        - name: sidecar
          image: reg.corp/sidecar@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
---
# Source: app/templates/cronjob.yaml
apiVersion: batch/v1
kind: CronJob
metadata:
  name: rel-backup
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: backup
              image: docker.io/library/alpine:3.19
---
# Source: app/templates/debug.yaml
apiVersion: v1
kind: Pod
metadata: {name: rel-debug}
spec:
  containers:
    - name: main
      image:
  ephemeralContainers:
    - name: shell
      image: reg.corp/tools:2
---
# Source: app/templates/objectstore.yaml
apiVersion: example.com/v1
kind: ObjectStore
metadata:
  name: primary
spec:
  image: quay.io/minio/minio:RELEASE.1
  sidecar:
    image: {repository: quay.io/minio/sidecar, tag: v1}
  pools:
    - servers: 4
      image: quay.io/minio/pool:2
---
# Source: app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rel-second
spec:
  template:
    spec:
      containers:
        - name: app
          image: reg.corp/app:2.0
)";

const RenderedImage* find_field(const std::vector<RenderedImage>& images, const std::string& name,
                                const std::string& field) {
  for (const auto& i : images) {
    if (i.name == name && i.field == field) return &i;
  }
  return nullptr;
}

PushTarget target(const std::string& text) { return PushTarget::parse(text); }

const std::string k_digest = "sha256:" + std::string(64, 'b');

std::vector<PushedImage> pushed_fixture() {
  return ferry::pushed_images({{"docker.io/library/nginx:1.25", k_digest},
                               {"quay.io/minio/aistor/minio:RELEASE.2025-05-30T11-03-39Z", "sha256:" + std::string(64, 'c')},
                               {"ghcr.io/example/tools@sha256:" + std::string(64, 'd'), "sha256:" + std::string(64, 'd')}},
                              target("registry.corp:5000/mirror"));
}

} // namespace

TEST_SUITE("pipelines") {

TEST_CASE("rendered_images finds container images of every pod spec and image strings of custom resources") {
  const auto images = ferry::rendered_images(k_stream, "test");
  std::vector<std::string> values;
  for (const auto& i : images) values.push_back(i.image);
  CHECK(values == std::vector<std::string>{
                      "reg.corp/busybox:1.36", "reg.corp/app:1.0",
                      "reg.corp/sidecar@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                      "docker.io/library/alpine:3.19", "", "reg.corp/tools:2", "quay.io/minio/minio:RELEASE.1",
                      "quay.io/minio/pool:2", "reg.corp/app:2.0"});

  const RenderedImage* init = find_field(images, "rel-app", "spec.template.spec.initContainers[0].image");
  REQUIRE(init);
  CHECK(init->kind == "Deployment");
  CHECK(init->container == "init");
  CHECK(init->source == "app/templates/deployment.yaml");
  CHECK(init->label() == "Deployment/rel-app container init");

  const RenderedImage* backup =
      find_field(images, "rel-backup", "spec.jobTemplate.spec.template.spec.containers[0].image");
  REQUIRE(backup);
  CHECK(backup->kind == "CronJob");
  CHECK(backup->container == "backup");

  SUBCASE("a container without an image is an empty image field") {
    const RenderedImage* main = find_field(images, "rel-debug", "spec.containers[0].image");
    REQUIRE(main);
    CHECK(main->image.empty());
    const RenderedImage* shell = find_field(images, "rel-debug", "spec.ephemeralContainers[0].image");
    REQUIRE(shell);
    CHECK(shell->container == "shell");
  }
  SUBCASE("image strings outside containers have no container; maps named image are not image strings") {
    const RenderedImage* spec = find_field(images, "primary", "spec.image");
    REQUIRE(spec);
    CHECK(spec->container.empty());
    CHECK(spec->label() == "ObjectStore/primary field spec.image");
    CHECK(find_field(images, "primary", "spec.pools[0].image"));
    CHECK_FALSE(find_field(images, "primary", "spec.sidecar.image"));
  }
}

TEST_CASE("RenderedImage::key tells documents of one template apart and ignores resource names") {
  const auto images = ferry::rendered_images(k_stream, "test");
  const RenderedImage* first = find_field(images, "rel-app", "spec.template.spec.containers[0].image");
  const RenderedImage* second = find_field(images, "rel-second", "spec.template.spec.containers[0].image");
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->occurrence == 0);
  CHECK(second->occurrence == 1);
  CHECK(first->key() != second->key());

  std::string renamed = k_stream;
  renamed.replace(renamed.find("name: rel-app"), 13, "name: sentinel-app");
  const auto again = ferry::rendered_images(renamed, "test");
  const RenderedImage* moved = find_field(again, "sentinel-app", "spec.template.spec.containers[0].image");
  REQUIRE(moved);
  CHECK(moved->key() == first->key());
}

TEST_CASE("rendered_images refuses a document that does not parse, naming it") {
  try {
    (void)ferry::rendered_images("---\n# Source: x/templates/a.yaml\nkind: [unclosed\n", "helm template of release r");
    FAIL("no error");
  } catch (const ferry::core::Error& e) {
    CHECK(e.code() == ferry::core::ExitCode::failure);
    CHECK(contains(e.what(), "helm template of release r"));
    CHECK(contains(e.what(), "x/templates/a.yaml"));
  }
}

TEST_CASE("image_problem accepts the bundle's images under the target by tag or digest") {
  const auto pushed = pushed_fixture();
  const auto t = target("registry.corp:5000/mirror");
  CHECK(pushed[0].repository == "registry.corp:5000/mirror/library/nginx");
  CHECK(pushed[0].tag == "1.25");
  CHECK_FALSE(image_problem("registry.corp:5000/mirror/library/nginx:1.25", t, pushed));
  CHECK_FALSE(image_problem("registry.corp:5000/mirror/library/nginx@" + k_digest, t, pushed));
  CHECK_FALSE(image_problem("registry.corp:5000/mirror/library/nginx:1.25@" + k_digest, t, pushed));
  CHECK_FALSE(image_problem("registry.corp:5000/mirror/minio/aistor/minio:RELEASE.2025-05-30T11-03-39Z", t, pushed));
  CHECK_FALSE(image_problem("registry.corp:5000/mirror/example/tools@sha256:" + std::string(64, 'd'), t, pushed));
}

TEST_CASE("image_problem says what is wrong with an image the bundle does not hold there") {
  const auto pushed = pushed_fixture();
  const auto t = target("registry.corp:5000/mirror");
  SUBCASE("outside the target") {
    const auto p = image_problem("docker.io/library/nginx:1.25", t, pushed);
    REQUIRE(p);
    CHECK(contains(*p, "not under registry.corp:5000/mirror/"));
    // The host alone is not enough when the target has a prefix.
    CHECK(image_problem("registry.corp:5000/library/nginx:1.25", t, pushed));
  }
  SUBCASE("another tag") {
    const auto p = image_problem("registry.corp:5000/mirror/library/nginx:1.26", t, pushed);
    REQUIRE(p);
    CHECK(contains(*p, "tag 1.26"));
    CHECK(contains(*p, "1.25"));
  }
  SUBCASE("no tag means latest") {
    const auto p = image_problem("registry.corp:5000/mirror/library/nginx", t, pushed);
    REQUIRE(p);
    CHECK(contains(*p, "tag latest"));
  }
  SUBCASE("another digest") {
    const auto p = image_problem("registry.corp:5000/mirror/library/nginx:1.25@sha256:" + std::string(64, 'e'), t, pushed);
    REQUIRE(p);
    CHECK(contains(*p, "digest sha256:eee"));
  }
  SUBCASE("a repository the bundle lacks") {
    const auto p = image_problem("registry.corp:5000/mirror/library/nginy:1.25", t, pushed);
    REQUIRE(p);
    CHECK(contains(*p, "repository registry.corp:5000/mirror/library/nginy is not one of the bundle's images"));
    CHECK(contains(*p, "did you mean registry.corp:5000/mirror/library/nginx"));
  }
  SUBCASE("an image pushed by digest only has no tag") {
    CHECK(image_problem("registry.corp:5000/mirror/example/tools:2.1", t, pushed));
  }
  SUBCASE("an empty image") { CHECK(image_problem("", t, pushed) == std::optional<std::string>("the container has no image")); }
}

TEST_CASE("pushed_images places images as push does: Docker Hub short names under library/, no prefix") {
  const auto pushed = ferry::pushed_images({{"docker.io/library/nginx:1.25", k_digest}}, target("localhost:5000"));
  REQUIRE(pushed.size() == 1);
  CHECK(pushed[0].repository == "localhost:5000/library/nginx");
  CHECK_FALSE(image_problem("localhost:5000/library/nginx:1.25", target("localhost:5000"), pushed));
}

TEST_CASE("string_leaves lists the values Helm reads as strings, with their paths") {
  const auto leaves = ferry::string_leaves("image:\n  registry: docker.io\n  tag: '1.0'\n  pull: 1.0\n"
                                           "replicas: 3\nenabled: true\nempty: \"\"\nnothing:\n"
                                           "sidecars:\n  - image: fluent/fluent-bit:2.2\n  - name: x\n"
                                           "dotted.key: v\n");
  std::vector<std::string> paths;
  for (const auto& l : leaves) paths.push_back(l.path + "=" + l.value);
  CHECK(paths == std::vector<std::string>{"image.registry=docker.io", "image.tag=1.0", "empty=",
                                          "sidecars[0].image=fluent/fluent-bit:2.2", "sidecars[1].name=x",
                                          "dotted.key=v"});
  CHECK_THROWS_AS(ferry::string_leaves("- a\n- b\n"), ferry::core::UsageError);
}

TEST_CASE("sentinel_candidates takes values found in rendered images and empty image parts") {
  const std::vector<ValueLeaf> leaves = {{"image.registry", "docker.io"},   {"image.repository", "bitnami/nginx"},
                                         {"image.tag", ""},                {"image.digest", ""},
                                         {"service.type", "ClusterIP"},    {"fullnameOverride", ""},
                                         {"repositories.minio.hostname", ""}, {"global.imageRegistry", ""},
                                         {"sidecars[0]", ""}};
  RenderedImage image;
  image.image = "docker.io/bitnami/nginx:1.25";
  const auto candidates = ferry::sentinel_candidates(leaves, {image});
  CHECK(candidates == std::vector<std::size_t>{0, 1, 2, 3, 6, 7});
}

TEST_CASE("sentinel and sentinels_in: each sentinel is a valid image and found again, inside longer text too") {
  CHECK(ferry::sentinel(7) == "sentinel.invalid/ferry-sentinel-7/s7");
  CHECK(ferry::sentinels_in(ferry::sentinel(1)) == std::set<std::size_t>{1});
  CHECK(ferry::sentinels_in(ferry::sentinel(12)) == std::set<std::size_t>{12});
  const std::string composed = ferry::sentinel(3) + "/" + ferry::sentinel(40) + ":" + ferry::sentinel(5);
  CHECK(ferry::sentinels_in(composed) == std::set<std::size_t>{3, 5, 40});
  CHECK(ferry::sentinels_in("docker.io/library/nginx:1.25").empty());
  CHECK(ferry::sentinels_in("ferry-sentinel-").empty());
}

TEST_CASE("with_sentinels replaces exactly the given paths and keeps every other value's type") {
  const std::string values = "image:\n  registry: \"docker.io\"\n  tag: \"1.0\"\n  pull: 1.0\nflag: true\n"
                             "nothing: ~\nlist:\n  - a\n  - b\n";
  const std::string out = ferry::with_sentinels(values, {{"image.registry", 0}, {"list[1]", 4}});
  const auto leaves = ferry::string_leaves(out);
  std::vector<std::string> paths;
  for (const auto& l : leaves) paths.push_back(l.path + "=" + l.value);
  // tag stays a string (quoted); pull and flag stay a number and a boolean.
  CHECK(paths == std::vector<std::string>{"image.registry=" + ferry::sentinel(0), "image.tag=1.0", "list[0]=a",
                                          "list[1]=" + ferry::sentinel(4)});
  CHECK(contains(out, "pull: 1.0"));
  CHECK(contains(out, "flag: true"));
  CHECK(contains(out, "nothing: ~"));
}

TEST_CASE("probe_sentinels maps each value to the image fields it feeds and isolates values helm rejects") {
  // A chart stand-in: one Deployment whose image is registry/repository:tag, one Job
  // whose image is hard-coded; a sentinel in `mode` makes the "render" fail (as a
  // `fail` or a schema would), and one in `tag` hides nothing.
  const std::vector<ValueLeaf> leaves = {{"image.registry", "reg"}, {"image.repository", "app"}, {"image.tag", "1.0"},
                                         {"mode", "fast"},          {"name", "x"}};
  SentinelMap map(leaves);
  std::vector<std::vector<std::size_t>> batches;
  auto render = [&](const std::vector<std::size_t>& batch) {
    batches.push_back(batch);
    std::vector<std::string> values;
    for (const auto& l : leaves) values.push_back(l.value);
    for (const std::size_t n : batch) values[n] = ferry::sentinel(n);
    RenderAttempt attempt;
    if (values[3] != "fast") {
      attempt.failure = "mode must be fast";
      return attempt;
    }
    RenderedImage app;
    app.source = "c/templates/app.yaml";
    app.kind = "Deployment";
    app.name = values[4];
    app.container = "app";
    app.field = "spec.template.spec.containers[0].image";
    app.image = values[0] + "/" + values[1] + ":" + values[2];
    RenderedImage job = app;
    job.source = "c/templates/job.yaml";
    job.image = "docker.io/library/alpine:3.19";
    attempt.images = std::vector<RenderedImage>{app, job};
    return attempt;
  };
  const std::size_t renders = ferry::probe_sentinels(map, {0, 1, 2, 3}, render);
  // All four fail together, then halves: {0,1} renders, {2,3} fails, then {2} and {3}.
  CHECK(renders == 5);
  REQUIRE(batches.size() == 5);
  CHECK(batches[0] == std::vector<std::size_t>{0, 1, 2, 3});
  CHECK(map.unprobed_paths() == std::vector<std::pair<std::string, std::string>>{{"mode", "mode must be fast"}});

  RenderedImage app;
  app.source = "c/templates/app.yaml";
  app.field = "spec.template.spec.containers[0].image";
  CHECK(map.feeding(app.key()) == std::vector<std::string>{"image.registry", "image.repository", "image.tag"});
  RenderedImage job = app;
  job.source = "c/templates/job.yaml";
  CHECK(map.feeding(job.key()).empty());
  CHECK(map.feeds_any("image.tag"));
  CHECK_FALSE(map.feeds_any("mode"));
  CHECK_FALSE(map.feeds_any("name"));
  CHECK(map.feeds().size() == 3);
  CHECK(map.feeds()[0] == std::pair<std::string, std::string>{"image.registry", app.key()});
}

TEST_CASE("probe_sentinels probes empty values after the others, so a branch they switch on hides nothing") {
  // image = digest ? repo@digest : repo:tag — a sentinel in the empty digest would hide the tag.
  const std::vector<ValueLeaf> leaves = {{"image.digest", ""}, {"image.repository", "app"}, {"image.tag", "1.0"}};
  SentinelMap map(leaves);
  std::vector<std::vector<std::size_t>> batches;
  const std::size_t renders = ferry::probe_sentinels(map, {0, 1, 2}, [&](const std::vector<std::size_t>& batch) {
    batches.push_back(batch);
    std::vector<std::string> values = {"", "app", "1.0"};
    for (const std::size_t n : batch) values[n] = ferry::sentinel(n);
    RenderedImage image;
    image.field = "image";
    image.image = values[0].empty() ? values[1] + ":" + values[2] : values[1] + "@" + values[0];
    return RenderAttempt{std::vector<RenderedImage>{image}, ""};
  });
  CHECK(renders == 2);
  CHECK(batches == std::vector<std::vector<std::size_t>>{{1, 2}, {0}});
  RenderedImage image;
  image.field = "image";
  CHECK(map.feeding(image.key()) == std::vector<std::string>{"image.digest", "image.repository", "image.tag"});
}

TEST_CASE("set_values_yaml nests --set keys, types values as helm --set does, and fills required keys on request") {
  const std::map<std::string, std::string> set = {
      {"license", ""}, {"ingress.host", "s3.corp"}, {"replicas", "3"}, {"tls\\.enabled", "true"}, {"version", "1.10"}};
  std::vector<std::string> placeholders;
  const std::string with = ferry::set_values_yaml(set, true, &placeholders);
  CHECK(placeholders == std::vector<std::string>{"license"});
  const auto leaves = ferry::string_leaves(with);
  std::vector<std::string> paths;
  for (const auto& l : leaves) paths.push_back(l.path + "=" + l.value);
  // Integers and booleans are typed; "1.10" stays a string, as helm --set keeps it.
  CHECK(paths == std::vector<std::string>{"ingress.host=s3.corp", std::string("license=") + ferry::k_check_placeholder,
                                          "version=1.10"});
  CHECK(contains(with, "replicas: 3"));
  CHECK(contains(with, "tls.enabled: true"));

  const std::string without = ferry::set_values_yaml(set, false);
  CHECK_FALSE(contains(without, "license"));
  CHECK(ferry::set_values_yaml({{"license", ""}}, false) == "{}\n");
}

}

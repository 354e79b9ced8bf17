// Tests for site values: Helm's --set syntax and typing, precedence of the values files
// handed to helm, required keys, the overlay's overrides, and secrets kept out of
// messages and logs. --reuse-values runs the helm stand-in of tests/data/standin.
// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"
#include "site_values.hpp"
#include "support/test_support.hpp"
#include "values/tree.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <optional>

namespace fs = std::filesystem;
using ferry::BundleRelease;
using ferry::helm_set;
using ferry::KubeTools;
using ferry::LiveValues;
using ferry::resolve_site_values;
using ferry::SiteValueOptions;
using ferry::SiteValues;
using ferry::core::Error;
using ferry::core::ExitCode;
using ferry::core::UsageError;
using ferry::test::CaptureLog;
using ferry::test::contains;
using ferry::test::data_path;
using ferry::test::TestDir;
using ferry::test::write_file;
using ferry::values::Node;

using ferry::test::ScopedEnv;

namespace {

const std::string k_secret = "s3cr3t-Licence-7f9a";

// helm_set over `base`, parsed back.
Node set_tree(const std::string& assignments, const std::string& base = "{}") {
  return ferry::values::parse_values(helm_set(base, assignments, "--set"), "result");
}

const Node& at(const Node& root, std::initializer_list<std::string> keys) {
  const Node* node = &root;
  for (const auto& key : keys) {
    node = node->find(key);
    REQUIRE_MESSAGE(node, "no key " << key);
  }
  return *node;
}

// Whether helm reads `node` as null (our reader keeps a plain `null` in a list as a scalar).
bool reads_as_null(const Node& node) { return node.is_null() || (!node.is_string() && node.text == "null"); }

// The two releases of manifests/aistor.yaml, with a bundle values file for the second.
std::vector<BundleRelease> aistor_releases() {
  BundleRelease operator_release;
  operator_release.name = "aistor-operator";
  operator_release.namespace_name = "aistor";
  operator_release.chart = "aistor-operator";
  BundleRelease store;
  store.name = "aistor";
  store.namespace_name = "aistor";
  store.chart = "aistor-objectstore";
  store.values = {{"values/store.yaml", "objectStore:\n  servers: 4\n  size: 1Ti\nlicense: \"\"\n"}};
  store.set = {{"license", ""}, {"objectStore.tier", "gold"}};
  return {operator_release, store};
}

std::vector<SiteValues> resolve(const SiteValueOptions& options, ferry::core::LogSink& log,
                                LiveValues live = LiveValues::read, const KubeTools& tools = {}) {
  return resolve_site_values(aistor_releases(), options, tools, live, "bundle aistor 2025.05.30", log);
}

std::string error_text(const Error& e) {
  std::string text = std::string(e.what()) + "\n" + e.hint();
  for (const auto& c : e.context()) text += "\n" + c;
  return text;
}

// Runs fn, which must throw a ferry Error; returns its message, hint and context.
template <typename Fn>
std::string error_of(Fn&& fn, ExitCode code = ExitCode::usage) {
  try {
    fn();
  } catch (const Error& e) {
    CHECK(e.code() == code);
    return error_text(e);
  }
  FAIL("no error thrown");
  return {};
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

} // namespace

TEST_SUITE("pipelines") {

TEST_CASE("helm_set types values as helm --set does") {
  const Node root = set_tree("t=true,T=TRUE,f=False,n=null,zero=0,i=12,neg=-3,plus=+7,lead=007,fl=1.5,exp=1e3,"
                             "empty=,word=abc,big=99999999999999999999");
  SUBCASE("booleans, in any case, become YAML booleans") {
    for (const char* key : {"t", "T", "f"}) {
      CAPTURE(key);
      CHECK_FALSE(at(root, {key}).is_string());
    }
    CHECK(at(root, {"T"}).text == "true");
    CHECK(at(root, {"f"}).text == "false");
  }
  SUBCASE("null is a null (helm then deletes the key)") { CHECK(reads_as_null(at(root, {"n"}))); }
  SUBCASE("integers without a leading zero are numbers") {
    CHECK(at(root, {"zero"}).text == "0");
    CHECK(at(root, {"i"}).text == "12");
    CHECK(at(root, {"neg"}).text == "-3");
    CHECK(at(root, {"plus"}).text == "7");
    for (const char* key : {"zero", "i", "neg", "plus"}) {
      CAPTURE(key);
      CHECK_FALSE(at(root, {key}).is_string());
    }
  }
  SUBCASE("everything else stays a string, quoted where YAML would read it otherwise") {
    for (const char* key : {"lead", "fl", "exp", "empty", "word", "big"}) {
      CAPTURE(key);
      CHECK(at(root, {key}).is_string());
    }
    CHECK(at(root, {"lead"}).text == "007");
    CHECK(at(root, {"big"}).text == "99999999999999999999");
    const std::string yaml = helm_set("{}", "lead=007,fl=1.5", "--set");
    CHECK(contains(yaml, "lead: \"007\""));
    CHECK(contains(yaml, "fl: \"1.5\""));
  }
}

TEST_CASE("helm_set follows helm's key paths: dots, list indexes, escapes, list values") {
  SUBCASE("dots nest maps") {
    const Node root = set_tree("a.b.c=1,a.d=x");
    CHECK(at(root, {"a", "b", "c"}).text == "1");
    CHECK(at(root, {"a", "d"}).text == "x");
  }
  SUBCASE("an escaped dot stays in the key; an escaped comma stays in the value; '=' in a value is kept") {
    const Node root = set_tree("a\\.b=1,p=x\\,y,q=k=v");
    CHECK(at(root, {"a.b"}).text == "1");
    CHECK(at(root, {"p"}).text == "x,y");
    CHECK(at(root, {"q"}).text == "k=v");
  }
  SUBCASE("an index into a list below keeps its other items, and the whole list is written") {
    const Node root = set_tree("list[1].name=new", "list:\n  - {name: a, x: 1}\n  - {name: b, y: 2}\nother: 1\n");
    const Node& list = at(root, {"list"});
    REQUIRE(list.items.size() == 2);
    CHECK(list.items[0].find("name")->text == "a");
    CHECK(list.items[0].find("x")->text == "1");
    CHECK(list.items[1].find("name")->text == "new");
    CHECK(list.items[1].find("y")->text == "2");
    CHECK(root.find("other") == nullptr); // only what --set touched
  }
  SUBCASE("a new list is padded with nulls up to the index") {
    const Node root = set_tree("l[2]=x");
    const Node& list = at(root, {"l"});
    REQUIRE(list.items.size() == 3);
    CHECK(reads_as_null(list.items[0]));
    CHECK(reads_as_null(list.items[1]));
    CHECK(list.items[2].text == "x");
  }
  SUBCASE("nested indexes") {
    const Node root = set_tree("m[0][1]=z");
    const Node& list = at(root, {"m"});
    REQUIRE(list.items.size() == 1);
    REQUIRE(list.items[0].items.size() == 2);
    CHECK(list.items[0].items[1].text == "z");
  }
  SUBCASE("{a,b} is a list of typed values; {} is an empty list") {
    const Node root = set_tree("tags={a,b,3},none={}");
    const Node& tags = at(root, {"tags"});
    REQUIRE(tags.items.size() == 3);
    CHECK(tags.items[0].text == "a");
    CHECK(tags.items[2].text == "3");
    CHECK_FALSE(tags.items[2].is_string());
    CHECK(at(root, {"none"}).kind == Node::Kind::sequence);
    CHECK(at(root, {"none"}).items.empty());
  }
  SUBCASE("a later key replaces an earlier value of another kind") {
    const Node root = set_tree("a=1,a.b=2");
    CHECK(at(root, {"a", "b"}).text == "2");
  }
}

TEST_CASE("helm_set refuses bad syntax naming the key") {
  struct Bad {
    const char* text;
    const char* message;
  };
  for (const Bad& bad : {Bad{"novalue", "--set novalue: no '=VALUE'"}, Bad{"a[x]=1", "a[x]: a list index is not"},
                         Bad{"a[70000]=1", "above helm's limit of 65536"}, Bad{".a=1", "a key is empty"},
                         Bad{"a..b=1", "a part of the key is empty"}, Bad{"a[0=1", "not closed with ']'"},
                         Bad{"l={a,b", "not closed with '}'"}, Bad{"l={a}x", "text follows the '}'"}}) {
    CAPTURE(bad.text);
    const std::string text = error_of([&] { (void)helm_set("{}", bad.text, "--set"); });
    CHECK(contains(text, bad.message));
  }
}

TEST_CASE("helm_set never shows a value that held an unescaped comma") {
  const std::string text = error_of([&] { (void)helm_set("{}", "password=" + k_secret + ",tail-Xq", "--set"); });
  CHECK(contains(text, "--set password=…"));
  CHECK(contains(text, "'\\,'"));
  CHECK_FALSE(contains(text, k_secret));
  CHECK_FALSE(contains(text, "tail-Xq"));
}

TEST_CASE("resolve_site_values refuses a release the bundle does not have, with a suggestion") {
  CaptureLog log;
  SUBCASE("--set") {
    const std::string text = error_of([&] { (void)resolve({.set = {"aistr:license=" + k_secret}}, log); });
    CHECK(contains(text, "--set aistr:license=…: 'aistr' is not a release of bundle aistor 2025.05.30"));
    CHECK(contains(text, "did you mean 'aistor'?"));
    CHECK(contains(text, "aistor-operator, aistor"));
    CHECK_FALSE(contains(text, k_secret));
  }
  SUBCASE("--values") {
    const std::string text = error_of([&] { (void)resolve({.values = {"aistor-operater=site.yaml"}}, log); });
    CHECK(contains(text, "'aistor-operater' is not a release"));
    CHECK(contains(text, "did you mean 'aistor-operator'?"));
  }
  SUBCASE("--set-file") {
    const std::string text = error_of([&] { (void)resolve({.set_file = {"nope:license=lic.txt"}}, log); });
    CHECK(contains(text, "--set-file nope:license=…: 'nope' is not a release"));
  }
  SUBCASE("a --set without RELEASE: says how to write it") {
    const std::string text = error_of([&] { (void)resolve({.set = {"license=" + k_secret}}, log); });
    CHECK(contains(text, "--set license=… names no release"));
    CHECK(contains(text, "--set RELEASE:KEY=VALUE"));
    CHECK_FALSE(contains(text, k_secret));
  }
}

TEST_CASE("resolve_site_values: a required key must get a non-empty value from the site") {
  TestDir dir;
  CaptureLog log;
  SUBCASE("missing everywhere: every missing key of every release is listed") {
    auto releases = aistor_releases();
    releases[0].set = {{"operator.token", ""}, {"operator.region", ""}};
    const auto sites = resolve_site_values(releases, {}, {}, LiveValues::read, "bundle aistor", log);
    CHECK(sites[0].missing == std::vector<std::string>{"operator.region", "operator.token"});
    CHECK(sites[1].missing == std::vector<std::string>{"license"});
    const std::string text = error_of([&] { ferry::require_site_values(sites, log); });
    CHECK(contains(text, "release aistor-operator (namespace aistor): operator.region, operator.token"));
    CHECK(contains(text, "release aistor (namespace aistor): license"));
    CHECK(contains(text, "nothing was pushed or changed"));
    CHECK(contains(text, "--set aistor-operator:operator.region=…"));
  }
  SUBCASE("the bundle's own value does not count") {
    // values/store.yaml holds license: "" and the chart may hold a default: the site must say.
    const auto sites = resolve({}, log);
    CHECK(sites[1].missing == std::vector<std::string>{"license"});
  }
  SUBCASE("an empty --set value does not count") {
    const auto sites = resolve({.set = {"aistor:license="}}, log);
    CHECK(sites[1].missing == std::vector<std::string>{"license"});
  }
  SUBCASE("--set supplies it") {
    const auto sites = resolve({.set = {"aistor:license=" + k_secret}}, log);
    CHECK(sites[1].missing.empty());
    CHECK_NOTHROW(ferry::require_site_values(sites, log));
  }
  SUBCASE("--set-file supplies it") {
    write_file(dir / "lic.txt", k_secret);
    const auto sites = resolve({.set_file = {"aistor:license=" + (dir / "lic.txt").string()}}, log);
    CHECK(sites[1].missing.empty());
    CHECK(sites[1].set_file_keys == std::vector<std::string>{"license"});
  }
  SUBCASE("a site values file supplies it") {
    write_file(dir / "site.yaml", "license: " + k_secret + "\n");
    const auto sites = resolve({.values = {"aistor=" + (dir / "site.yaml").string()}}, log);
    CHECK(sites[1].missing.empty());
  }
  CHECK_FALSE(contains(log.text(), k_secret));
}

TEST_CASE("resolve_site_values: the --set file holds --set over --set-file over the files below") {
  TestDir dir;
  CaptureLog log;
  write_file(dir / "site.yaml", "objectStore: {servers: 8, size: 2Ti}\nlicense: from-file\n");
  write_file(dir / "cert.pem", "-----BEGIN X-----\nMIIB\n-----END X-----\n");
  const auto sites = resolve({.values = {"aistor=" + (dir / "site.yaml").string()},
                              .set = {"aistor:objectStore.servers=16,license=" + k_secret},
                              .set_file = {"aistor:tls.cert=" + (dir / "cert.pem").string()}},
                             log);
  const SiteValues& s = sites[1];
  CHECK(s.set_keys == std::vector<std::string>{"objectStore.servers", "license"});
  const Node set = ferry::values::parse_values(s.set_yaml, "set");
  CHECK(at(set, {"objectStore", "servers"}).text == "16");
  CHECK(at(set, {"objectStore"}).find("size") == nullptr); // left to the file
  CHECK(at(set, {"license"}).text == k_secret);
  CHECK(at(set, {"tls", "cert"}).text == "-----BEGIN X-----\nMIIB\n-----END X-----\n");
  CHECK(at(set, {"tls", "cert"}).is_string());
  // The manifest's non-empty set: entry (objectStore.tier: gold) rides with the bundle's values.
  CHECK(at(ferry::values::parse_values(s.bundle_set_yaml, "bundle set"), {"objectStore", "tier"}).text == "gold");
  // The site's documents for the overlay, lowest first, named without their contents.
  REQUIRE(s.documents().size() == 3);
  CHECK(s.documents()[0] == s.bundle_set_yaml);
  CHECK(s.documents()[1] == s.file_yamls[0]);
  CHECK(s.documents()[2] == s.set_yaml);
  for (const auto& name : s.names()) CHECK_FALSE(contains(name, k_secret));
  CHECK(sites[0].set_yaml == "{}\n");
}

TEST_CASE("write_release_values hands helm the files in precedence order, private, overlay last") {
  TestDir dir;
  CaptureLog log;
  write_file(dir / "site.yaml", "objectStore: {servers: 8}\n");
  const auto releases = aistor_releases();
  const auto sites = resolve_site_values(releases,
                                         {.values = {"aistor=" + (dir / "site.yaml").string()},
                                          .set = {"aistor:license=" + k_secret}},
                                         {}, LiveValues::read, "bundle aistor", log);
  const fs::path out = dir / "private" / "aistor";
  const auto files = ferry::write_release_values(releases[1], sites[1], "repositories: {minio: {hostname: r}}\n", out);
  REQUIRE(files.size() == 5);
  CHECK(files[0] == out / "bundle-1-store.yaml");
  CHECK(ferry::test::read_file(files[0]) == releases[1].values[0].content);
  CHECK(files[1] == out / "bundle-set.yaml");
  CHECK(files[2] == fs::absolute(dir / "site.yaml")); // the operator's file, where it is
  CHECK(files[3] == out / "site-set.yaml");
  CHECK(contains(ferry::test::read_file(files[3]), k_secret));
  CHECK(files[4] == out / "overlay.yaml");
  CHECK(ferry::test::read_file(files[4]) == "repositories: {minio: {hostname: r}}\n");
  CHECK(mode_of(out) == 0700);
  for (const auto& f : {files[0], files[1], files[3], files[4]}) {
    CAPTURE(f);
    CHECK(mode_of(f) == 0600);
  }
  SUBCASE("a release without site values gets its bundle files and the overlay only") {
    const auto plain = ferry::write_release_values(releases[0], sites[0], "{}\n", dir / "private" / "op");
    CHECK(plain.empty());
  }
}

TEST_CASE("resolve_site_values --reuse-values starts from helm get values; an absent release has none") {
  TestDir dir;
  CaptureLog log;
  const fs::path rules = dir / "rules.tsv";
  const fs::path calls = dir / "calls.jsonl";
  write_file(dir / "live.yaml", "license: " + k_secret + "\nobjectStore: {servers: 6}\n");
  write_file(rules, "helm get values aistor \t0\tlive.yaml\t-\n"
                    "helm get values aistor-operator \t1\t-\tError: release: not found\n");
  ScopedEnv rules_env("FERRY_STANDIN_RULES", rules.string());
  ScopedEnv log_env("FERRY_STANDIN_LOG", calls.string());
  KubeTools tools;
  tools.helm = data_path("standin/helm").string();
  tools.kubeconfig = "/site/kube";
  tools.kube_context = "prod";

  SUBCASE("read") {
    const auto sites =
        resolve({.set = {"aistor:objectStore.servers=9"}, .reuse_values = true}, log, LiveValues::read, tools);
    REQUIRE(sites[1].live_yaml);
    CHECK(contains(*sites[1].live_yaml, k_secret));
    CHECK(sites[1].missing.empty()); // the licence came from the live release
    CHECK_FALSE(sites[0].live_yaml);
    // --set still wins over the live values.
    CHECK(at(ferry::values::parse_values(sites[1].set_yaml, "set"), {"objectStore", "servers"}).text == "9");
    const std::string recorded = ferry::test::read_file(calls);
    CHECK(contains(recorded, R"("argv":["get","values","aistor","-n","aistor","-o","yaml",)"
                             R"("--kubeconfig","/site/kube","--kube-context","prod"])"));
    const auto files = ferry::write_release_values(aistor_releases()[1], sites[1], "{}\n", dir / "p");
    REQUIRE(files.size() == 4);
    CHECK(files[2] == dir / "p" / "live-values.yaml"); // above the bundle's, below the site's
    CHECK(files[3] == dir / "p" / "site-set.yaml");
    CHECK_FALSE(contains(log.text(), k_secret));
  }
  SUBCASE("not read with LiveValues::skip (--plan): required keys it may hold are only warned about") {
    const auto sites = resolve({.reuse_values = true}, log, LiveValues::skip, tools);
    CHECK(sites[1].live_skipped);
    CHECK_FALSE(fs::exists(calls));
    CHECK_NOTHROW(ferry::require_site_values(sites, log));
    CHECK(contains(log.text(), "aistor: required key license must come from the live release's values"));
  }
  SUBCASE("helm failing otherwise is an upgrade failure that shows no values") {
    write_file(rules, "helm get values \t1\tlive.yaml\tError: Kubernetes cluster unreachable\n");
    const std::string text = error_of([&] { (void)resolve({.reuse_values = true}, log, LiveValues::read, tools); },
                                      ExitCode::upgrade);
    CHECK(contains(text, "cannot read the live values of release aistor-operator"));
    CHECK(contains(text, "Kubernetes cluster unreachable"));
    CHECK_FALSE(contains(text, k_secret));
  }
}

TEST_CASE("overlay_overrides lists the keys the overlay takes from the site, with both values") {
  TestDir dir;
  CaptureLog log;
  write_file(dir / "site.yaml", "repositories:\n  minio: {hostname: harbor.old.corp, pathPrefix: minio}\n"
                                "sidecars:\n  - {image: harbor.old.corp/x:1}\n");
  const auto sites = resolve({.values = {"aistor=" + (dir / "site.yaml").string()},
                              .set = {"aistor:license=" + k_secret + ",repositories.sidecar.hostname=reg.internal:5000"}},
                             log);
  ferry::values::Result overlay;
  overlay.changes = {{"repositories.minio.hostname", "harbor.old.corp", "reg.internal:5000", "rule", ""},
                     {"repositories.sidecar.hostname", "reg.internal:5000", "reg.internal:5000", "rule", ""},
                     {"sidecars[0].image", "harbor.old.corp/x:1", "reg.internal:5000/x:1", "image string", ""},
                     {"operator.image.repository", "quay.io/op", "reg.internal:5000/op", "repository+tag", ""}};
  const auto overrides = ferry::overlay_overrides(sites[1], overlay);
  REQUIRE(overrides.size() == 2);
  CHECK(overrides[0].key == "repositories.minio.hostname");
  CHECK(overrides[0].site_value == "harbor.old.corp");
  CHECK(overrides[0].overlay_value == "reg.internal:5000");
  CHECK(overrides[1].key == "sidecars[0].image");
  CHECK(overrides[1].site_value == "harbor.old.corp/x:1");
  // Same value (sidecar) and not set by the site (operator.image): no override.
  for (const auto& o : overrides) CHECK_FALSE(contains(o.site_value, k_secret));
  const std::set<std::string> paths = ferry::site_paths(sites[1]);
  CHECK(paths.count("license") == 1);
  CHECK(paths.count("repositories.minio") == 1);
  CHECK(paths.count("sidecars[0].image") == 1);
  CHECK(paths.count("operator.image.repository") == 0);
  CHECK(paths.count("objectStore.servers") == 0); // the bundle's, not the site's
}

TEST_CASE("resolve_site_values names unreadable inputs, never their contents") {
  TestDir dir;
  CaptureLog log;
  SUBCASE("a missing --values file") {
    const std::string text = error_of([&] { (void)resolve({.values = {"aistor=" + (dir / "none.yaml").string()}}, log); });
    CHECK(contains(text, "none.yaml"));
  }
  SUBCASE("a --values file that is not YAML names FILE:LINE") {
    write_file(dir / "bad.yaml", "license: " + k_secret + "\n  - broken: [\n");
    const std::string text = error_of([&] { (void)resolve({.values = {"aistor=" + (dir / "bad.yaml").string()}}, log); });
    CHECK(contains(text, (dir / "bad.yaml").string() + ":"));
  }
  SUBCASE("a missing --set-file file") {
    const std::string text =
        error_of([&] { (void)resolve({.set_file = {"aistor:license=" + (dir / "lic.txt").string()}}, log); });
    CHECK(contains(text, "lic.txt"));
    CHECK(contains(text, "--set-file aistor:license"));
  }
}

}

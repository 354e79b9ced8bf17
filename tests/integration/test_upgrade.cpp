// ferry unpack end to end, modelled on manifests/aistor.yaml (an operator chart with CRDs,
// then an object store that needs a licence from the site): images made with umoci and
// pushed into a real docker-registry; helm and kubectl are the recording stand-ins of
// tests/data/standin (no cluster here), except `helm template`, which the real helm runs
// for the check stage. A wrapper around the helm stand-in copies each -f file of
// `helm upgrade` (and its mode) while ferry runs, so the files' contents can be checked
// after ferry removed them.
// SPDX-License-Identifier: Apache-2.0
#include "common/standin_calls.hpp"
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::RegistryServer;
using nlohmann::json;
using Strings = std::vector<std::string>;

namespace {

const Strings k_tools = {"docker-registry", "umoci", "skopeo", "helm", "openssl", "base64"};
const std::string k_secret = "LICENCE-e1f0-4c2b-SECRET";
const std::string k_tag = "RELEASE.2025-05-30T11-03-39Z";
constexpr int k_usage = 2;
constexpr int k_upgrade_failure = 5;

fs::path data_dir() {
  const char* data = std::getenv("FERRY_TEST_DATA");
  REQUIRE_MESSAGE(data, "FERRY_TEST_DATA is not set (run the tests with `meson test`)");
  return fs::path(data);
}

// The repository's manifests/charts/NAME.
fs::path example_chart(const std::string& name) {
  return data_dir().parent_path().parent_path() / "manifests/charts" / name;
}

// One recorded stand-in call.
using Call = ferry::test::StandinCall;

// A bundle like manifests/aistor.yaml from local images, the internal registry, and the
// stand-ins, all in one test directory.
class Site {
public:
  Site() : m_fixtures(make_fixtures(m_dir.path())) {
    const std::string layout = m_fixtures.layout.string();
    write_file(m_dir / "content/side.txt", "sidecar\n");
    must({"umoci", "new", "--image", layout + ":sidecar"});
    must({"umoci", "insert", "--image", layout + ":sidecar", (m_dir / "content/side.txt").string(), "/side.txt"});
    for (const char* chart : {"aistor-operator", "aistor-objectstore"}) {
      fs::copy(example_chart(chart), m_dir / "charts" / chart, fs::copy_options::recursive);
    }
    write_file(m_dir / "values/aistor.yaml", "objectStore:\n  servers: 8\n");
    write_file(m_dir / "aistor.yaml",
               "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: aistor, version: \"2025.05.30\"}\n"
               "images:\n"
               "  - {ref: \"oci:" + layout + ":app1\", name: \"quay.io/minio/aistor/operator:" + k_tag + "\"}\n"
               "  - {ref: \"oci:" + layout + ":app2\", name: \"quay.io/minio/aistor/minio:" + k_tag + "\"}\n"
               "  - {ref: \"oci:" + layout + ":sidecar\", name: \"quay.io/minio/aistor/minio-sidecar:v1.0.5\"}\n"
               "charts:\n"
               "  - {name: aistor-operator, path: ./charts/aistor-operator, version: 5.2.1,\n"
               "     images: [\"quay.io/minio/aistor/operator:" + k_tag + "\"]}\n"
               "  - {name: aistor-objectstore, path: ./charts/aistor-objectstore, version: 5.2.1,\n"
               "     images: [\"quay.io/minio/aistor/minio:" + k_tag + "\", quay.io/minio/aistor/minio-sidecar:v1.0.5]}\n"
               "releases:\n"
               "  - {name: aistor-operator, namespace: aistor, chart: aistor-operator, createNamespace: true,\n"
               "     upgradeCRDs: true, wait: true, timeout: 5m}\n"
               "  - name: aistor\n    namespace: aistor\n    chart: aistor-objectstore\n"
               "    values: [values/aistor.yaml]\n    set: {license: \"\"}\n"
               "    imagePullSecrets: [private-repo-pull-secret]\n"
               "    rules:\n"
               "      - {path: \"repositories.*.hostname\", set: \"{registry}\"}\n"
               "      - {path: \"repositories.*.pathPrefix\", set: \"{prefix/}{value}\"}\n"
               "    wait: true\n    timeout: 10m\n");
    const RunResult packed = run_ferry({"pack", "-f", (m_dir / "aistor.yaml").string(), "-o", bundle().string(),
                                        "--key", m_fixtures.key.string()});
    INFO(packed.err);
    REQUIRE(packed.exit_code == 0);

    // helm: `template` by the real one, everything else by the stand-in, with the -f files
    // of `upgrade` copied to CAPTURE/RELEASE/N (content), N.mode and N.path.
    const std::string real_helm = must({"sh", "-c", "command -v helm"});
    write_file(m_dir / "bin/helm",
               "#!/bin/sh\n"
               "if [ \"$1\" = template ]; then exec '" + real_helm.substr(0, real_helm.find('\n')) + "' \"$@\"; fi\n"
               "if [ \"$1\" = upgrade ]; then\n"
               "  d=\"$FERRY_TEST_CAPTURE/$3\"; rm -rf \"$d\"; mkdir -p \"$d\"; n=0; prev=\n"
               "  for a in \"$@\"; do\n"
               "    if [ \"$prev\" = -f ]; then\n"
               "      n=$((n+1)); cp \"$a\" \"$d/$n\"\n"
               "      stat -c %a \"$a\" >\"$d/$n.mode\"; printf %s \"$a\" >\"$d/$n.path\"\n"
               "    fi\n"
               "    prev=$a\n"
               "  done\n"
               "fi\n"
               "exec '" + (data_dir() / "standin/helm").string() + "' \"$@\"\n");
    fs::permissions(m_dir / "bin/helm", fs::perms::owner_all);
    write_file(m_rules, "");
    fs::create_directories(m_dir / "tmp");
    fs::create_directories(m_dir / "capture");
  }

  fs::path bundle() const { return m_dir / "aistor-2025.05.30.tar.zst"; }
  const TestDir& dir() const { return m_dir; }
  const RegistryServer& registry() const { return m_registry; }
  std::string target() const { return m_registry.host() + "/mirror"; }
  fs::path state_dir() const { return m_dir / "state"; }
  const fs::path& pub() const { return m_fixtures.pub; }

  // Adds a stand-in rule (see standin.sh): calls containing `match` exit with `exit`,
  // printing `out` and `err`.
  void rule(const std::string& match, const std::string& exit, const std::string& out = "", const std::string& err = "") {
    std::string out_field = "-";
    if (!out.empty()) {
      out_field = "out-" + std::to_string(m_outputs++) + ".txt";
      write_file(m_dir / out_field, out);
    }
    m_rule_text += match + "\t" + exit + "\t" + out_field + "\t" + (err.empty() ? "-" : err) + "\n";
    write_file(m_rules, m_rule_text);
  }
  void clear_rules() {
    m_rule_text.clear();
    write_file(m_rules, "");
  }
  void upgrade_succeeds(const std::string& release, int revision) {
    rule("helm upgrade --install " + release + " ", "0",
         json{{"name", release}, {"version", revision}, {"info", {{"status", "deployed"}}}}.dump());
  }

  RunResult unpack(Strings extra, const std::string& input = {}) const {
    Strings args = {"unpack", bundle().string(), "--registry", target(), "--plain-http", "--pubkey",
                    m_fixtures.pub.string(), "--helm", (m_dir / "bin/helm").string(), "--kubectl",
                    (data_dir() / "standin/kubectl").string(), "--kubeconfig", "/site/kubeconfig",
                    "--state-dir", state_dir().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_ferry(args, {.cwd = {},
                            .env = {{"FERRY_STANDIN_RULES", m_rules.string()},
                                    {"FERRY_STANDIN_LOG", (m_dir / "calls.jsonl").string()},
                                    {"FERRY_TEST_CAPTURE", (m_dir / "capture").string()},
                                    {"TMPDIR", (m_dir / "tmp").string()}},
                            .input = input});
  }

  std::vector<Call> calls() const { return ferry::test::read_standin_calls(m_dir / "calls.jsonl"); }
  std::vector<Call> calls_of(const std::string& prefix) const { return ferry::test::calls_starting(calls(), prefix); }
  void forget_calls() const { fs::remove(m_dir / "calls.jsonl"); }

  // The -f files helm upgrade of `release` got, in order: {content, mode, path}.
  struct Captured {
    std::string content;
    std::string mode;
    fs::path path;
  };
  std::vector<Captured> captured(const std::string& release) const {
    std::vector<Captured> out;
    const fs::path d = m_dir / "capture" / release;
    for (int n = 1; fs::exists(d / std::to_string(n)); ++n) {
      const std::string base = (d / std::to_string(n)).string();
      std::string mode = read_file(base + ".mode");
      while (!mode.empty() && mode.back() == '\n') mode.pop_back();
      out.push_back({read_file(base), mode, read_file(base + ".path")});
    }
    return out;
  }

  // Whether the registry holds any repository at all.
  bool registry_empty() const {
    return !fs::exists(m_registry.dir() / "storage/docker/registry/v2/repositories");
  }

private:
  TestDir m_dir;
  Fixtures m_fixtures;
  RegistryServer m_registry;
  fs::path m_rules = m_dir / "rules.tsv";
  std::string m_rule_text;
  int m_outputs = 0;
};

// Every file below `dir`, as text, joined: for "is the secret anywhere here?".
std::string all_text_below(const fs::path& dir) {
  std::string text;
  if (!fs::exists(dir)) return text;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) text += read_file(entry.path()) + "\n";
  }
  return text;
}

} // namespace

TEST_SUITE("upgrade") {

TEST_CASE("unpack --plan runs nothing, changes nothing and lists every stage") {
  require_tools(k_tools);
  Site site;
  const RunResult r = site.unpack({"--plan", "--set", "aistor:license=" + k_secret});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  // No helm or kubectl ran (not even helm template for check), nothing was pushed.
  CHECK(site.calls().empty());
  CHECK(site.registry_empty());
  if (fs::exists(site.state_dir())) {
    for (const auto& entry : fs::recursive_directory_iterator(site.state_dir())) {
      CHECK_MESSAGE(entry.path().filename().string().rfind("upgrade-", 0) != 0, entry.path());
    }
  }
  // Every stage says what it would do.
  CHECK(contains(r.out, "dry run, nothing pushed to " + site.target()));
  CHECK(contains(r.out, "manifests  would push 5"));
  CHECK(contains(r.out, "values     for " + site.target()));
  CHECK(contains(r.out, "repositories.minio.hostname: quay.io -> " + site.registry().host()));
  CHECK(contains(r.out, "repositories.minio.pathPrefix: minio/aistor -> mirror/minio/aistor"));
  CHECK(contains(r.out, "operator.image.repository: quay.io/minio/aistor/operator -> " + site.target() +
                            "/minio/aistor/operator"));
  CHECK(contains(r.out, "site values: --set license"));
  CHECK(contains(r.out, "check      skipped: --plan"));
  CHECK(contains(r.out, "upgrade    plan"));
  CHECK(contains(r.out, "pre-flight: " + (site.dir() / "bin/helm").string() + " version --short"));
  CHECK(contains(r.out, "kubectl apply --server-side --force-conflicts -f '<crds/ of aistor-operator-5.2.1.tgz>'"));
  CHECK(contains(r.out, "upgrade --install aistor-operator "));
  CHECK(contains(r.out, "upgrade --install aistor "));
  // The licence is in none of it, nor in the JSON report.
  CHECK_FALSE(contains(r.out + r.err, k_secret));
  const RunResult j = site.unpack({"--plan", "--set", "aistor:license=" + k_secret, "--output", "json"});
  REQUIRE(j.exit_code == 0);
  CHECK_FALSE(contains(j.out + j.err, k_secret));
  const json doc = json::parse(j.out);
  CHECK(doc["push"]["dryRun"] == true);
  CHECK(doc["check"]["ran"] == false);
  REQUIRE(doc["upgrade"]["releases"].size() == 2);
  CHECK(doc["upgrade"]["releases"][1]["status"] == "planned");
  CHECK(doc["values"][1]["site"]["setKeys"] == json::array({"license"}));
  // The private files for the plan are gone.
  CHECK(fs::is_empty(site.dir() / "tmp"));
}

TEST_CASE("unpack without the required licence stops before anything is pushed") {
  require_tools(k_tools);
  Site site;
  const RunResult r = site.unpack({"--set", "aistor:objectStore.servers=4"});
  INFO(r.out, r.err);
  CHECK(r.exit_code == k_usage);
  CHECK(contains(r.err, "required site values are missing"));
  CHECK(contains(r.err, "release aistor (namespace aistor): license"));
  CHECK(contains(r.err, "--set aistor:license=…"));
  CHECK(site.registry_empty());
  CHECK(site.calls().empty());

  SUBCASE("a release name the bundle lacks is refused as early, with a suggestion") {
    const RunResult typo = site.unpack({"--set", "aistr:license=" + k_secret});
    CHECK(typo.exit_code == k_usage);
    CHECK(contains(typo.err, "did you mean 'aistor'?"));
    CHECK_FALSE(contains(typo.err, k_secret));
    CHECK(site.registry_empty());
  }
}

TEST_CASE("unpack pushes, checks, and runs helm upgrade with bundle values, site values and the overlay last") {
  require_tools(k_tools);
  Site site;
  write_file(site.dir() / "site-values.yaml",
             "objectStore:\n  size: 8Ti\nrepositories:\n  minio: {hostname: harbor.old.corp}\n");
  const json containers = json::array({{{"name", "minio"}, {"image", site.target() + "/minio/aistor/minio:" + k_tag}},
                                       {{"name", "debug"}, {"image", "docker.io/library/busybox:1.36"}}});
  write_file(site.dir() / "pods.json", json{{"items", json::array({{{"spec", {{"containers", containers}}}}})}}.dump());
  site.upgrade_succeeds("aistor-operator", 1);
  site.upgrade_succeeds("aistor", 1);
  site.rule("kubectl get pods -n aistor -l app.kubernetes.io/instance=aistor ", "0", read_file(site.dir() / "pods.json"));
  site.rule("kubectl get secret private-repo-pull-secret ", "1", "",
            "Error from server (NotFound): secrets private-repo-pull-secret not found");
  const RunResult r = site.unpack({"--values", "aistor=" + (site.dir() / "site-values.yaml").string(), "--set",
                                   "aistor:license=" + k_secret, "--create-pull-secrets", "--username", "puller",
                                   "--password-stdin"},
                                  "pull-password\n");
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);

  // push: the images are in the registry under the prefix.
  CHECK_FALSE(site.registry_empty());
  CHECK(ferry::test::registry_digest(site.registry(), "mirror/minio/aistor/minio:" + k_tag).rfind("sha256:", 0) == 0);
  // check: the real helm rendered the charts with the overlays; every image is internal.
  CHECK(contains(r.out, "check      aistor-operator: 1 rendered image from the bundle under " + site.target()));
  CHECK(contains(r.out, "check      aistor: 3 rendered images from the bundle under " + site.target()));
  // values: the overlay overrides the site's own registry, and says so.
  CHECK(contains(r.out, "overrides the site's repositories.minio.hostname: harbor.old.corp -> " + site.registry().host()));

  // upgrade: operator first, then the object store; kube flags passed on.
  const auto upgrades = site.calls_of("helm upgrade --install");
  REQUIRE(upgrades.size() == 2);
  CHECK(upgrades[0].argv[2] == "aistor-operator");
  CHECK(upgrades[1].argv[2] == "aistor");
  CHECK(contains(upgrades[1].line, "--kubeconfig /site/kubeconfig"));
  CHECK(contains(upgrades[1].line, "--wait --timeout 10m"));

  const auto files = site.captured("aistor");
  REQUIRE(files.size() == 4);
  // 1: the bundle's values file; 2: the site's file, used where it is; 3: --set; 4: the overlay.
  CHECK(files[0].content == "objectStore:\n  servers: 8\n");
  CHECK(files[1].path == site.dir() / "site-values.yaml");
  CHECK(contains(files[2].content, "license: " + k_secret));
  CHECK(files[2].mode == "600");
  CHECK(contains(files[3].content, "hostname: \"" + site.registry().host() + "\""));
  CHECK(contains(files[3].content, "pathPrefix: mirror/minio/aistor"));
  CHECK(files[3].mode == "600");
  // The secret is in the --set file alone; the temporary files are gone.
  for (std::size_t n = 0; n < files.size(); ++n) {
    CAPTURE(n);
    if (n != 2) CHECK_FALSE(contains(files[n].content, k_secret));
    if (n != 1) CHECK_FALSE(fs::exists(files[n].path));
  }
  CHECK(fs::is_empty(site.dir() / "tmp"));
  const auto operator_files = site.captured("aistor-operator");
  REQUIRE(operator_files.size() == 1); // the overlay alone
  CHECK(contains(operator_files[0].content, "repository: " + site.target() + "/minio/aistor/operator"));

  // The pull secret was created from the credentials, on standard input only.
  const auto created = site.calls_of("kubectl create -f -");
  REQUIRE(created.size() == 1);
  const json secret = json::parse(created[0].stdin_text);
  const std::string config =
      must({"sh", "-c", "printf %s '" + secret["data"][".dockerconfigjson"].get<std::string>() + "' | base64 -d"});
  CHECK(json::parse(config)["auths"][site.registry().host()]["username"] == "puller");
  CHECK(json::parse(config)["auths"][site.registry().host()]["password"] == "pull-password");

  // Report: statuses, rollback commands, the pod image not from the registry.
  CHECK(contains(r.out, "aistor: upgraded, revision 1"));
  CHECK(contains(r.out, "rollback: " + (site.dir() / "bin/helm").string() + " uninstall aistor -n aistor"));
  CHECK(contains(r.out, "pod image not from " + site.target() + ": docker.io/library/busybox:1.36"));
  // No secret in the output, the calls' arguments or the state directory.
  CHECK_FALSE(contains(r.out + r.err, k_secret));
  for (const auto& c : site.calls()) CHECK_FALSE(contains(c.line, k_secret));
  CHECK_FALSE(contains(all_text_below(site.state_dir()), k_secret));
  CHECK_FALSE(contains(all_text_below(site.state_dir()), "pull-password"));
}

TEST_CASE("a failing release stops unpack with exit 5 and the rollback command; a re-run skips the finished one") {
  require_tools(k_tools);
  Site site;
  site.upgrade_succeeds("aistor-operator", 4);
  site.rule("helm status aistor ", "0",
            json{{"name", "aistor"}, {"version", 3}, {"info", {{"status", "deployed"}}}}.dump());
  site.rule("helm upgrade --install aistor ", "1", "", "Error: UPGRADE FAILED: context deadline exceeded");
  const RunResult failed = site.unpack({"--set", "aistor:license=" + k_secret, "--skip-check"});
  INFO(failed.out, failed.err);
  CHECK(failed.exit_code == k_upgrade_failure);
  CHECK(contains(failed.err, "helm upgrade of release aistor (namespace aistor) failed"));
  CHECK(contains(failed.err, "UPGRADE FAILED: context deadline exceeded"));
  CHECK(contains(failed.err, "helm rollback aistor 3 -n aistor"));
  CHECK(contains(failed.err, "releases already upgraded (aistor-operator) are skipped on the next run"));
  CHECK_FALSE(contains(failed.out + failed.err, k_secret));
  CHECK(fs::is_empty(site.dir() / "tmp"));

  site.clear_rules();
  site.upgrade_succeeds("aistor", 4);
  site.forget_calls();
  const RunResult again = site.unpack({"--set", "aistor:license=" + k_secret, "--skip-check"});
  INFO(again.out, again.err);
  REQUIRE(again.exit_code == 0);
  const auto upgrades = site.calls_of("helm upgrade --install");
  REQUIRE(upgrades.size() == 1);
  CHECK(upgrades[0].argv[2] == "aistor");
  CHECK(contains(again.out, "aistor-operator: already-done, revision 4"));
  CHECK(contains(again.out, "aistor: upgraded, revision 4"));
  // Nothing left to push on the re-run.
  CHECK(contains(again.out, "manifests  pushed 0, 5 already there"));
}

TEST_CASE("ferry upgrade alone takes the same site values and plan") {
  require_tools(k_tools);
  Site site;
  const RunResult r = run_ferry({"upgrade", site.bundle().string(), "--registry", site.target(), "--pubkey",
                                 site.pub().string(), "--plan", "--set", "aistor:license=" + k_secret,
                                 "--helm", "helm-not-needed-for-a-plan"});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "upgrade    plan"));
  CHECK(contains(r.out, "helm-not-needed-for-a-plan upgrade --install aistor "));
  CHECK_FALSE(contains(r.out, "check "));
  CHECK_FALSE(contains(r.out + r.err, k_secret));
  CHECK(site.registry_empty());
}

}

// Tests for the upgrade stage, against the helm/kubectl stand-ins of tests/data/standin
// (no Kubernetes API server runs here): they record every call and answer from rules.
// SPDX-License-Identifier: Apache-2.0
#include "common/standin_calls.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"
#include "upgrade.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <vector>

namespace fs = std::filesystem;
using ferry::ReleaseOutcome;
using ferry::ReleasePlan;
using ferry::run_upgrade;
using ferry::shell_quote;
using ferry::UpgradeOptions;
using ferry::UpgradeResult;
using ferry::core::Error;
using ferry::core::ExitCode;
using ferry::core::UsageError;
using ferry::test::CaptureLog;
using ferry::test::contains;
using ferry::test::data_path;
using ferry::test::TestDir;
using ferry::test::write_file;
using nlohmann::json;
using Strings = std::vector<std::string>;

using ferry::test::ScopedEnv;

namespace {

// One call a stand-in recorded.
using Call = ferry::test::StandinCall;

const Strings k_helm_kube = {"--kubeconfig", "/site/kube config", "--kube-context", "prod"};
const Strings k_kubectl_kube = {"--kubeconfig", "/site/kube config", "--context", "prod"};
const std::string k_registry = "registry.internal:5000/mirror";

// A log nobody reads.
ferry::core::LogSink& quiet() {
  static ferry::core::NullLog log;
  return log;
}

Strings concat(Strings a, const Strings& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A test directory with the stand-ins wired up: rules, call log, state directory.
class Cluster {
public:
  Cluster()
      : m_rules(m_dir / "rules.tsv"), m_calls(m_dir / "calls.jsonl"),
        m_rules_env("FERRY_STANDIN_RULES", m_rules.string()), m_log_env("FERRY_STANDIN_LOG", m_calls.string()) {
    write_file(m_rules, "");
  }

  const TestDir& dir() const { return m_dir; }

  UpgradeOptions options() const {
    UpgradeOptions o;
    o.tools.helm = data_path("standin/helm").string();
    o.tools.kubectl = data_path("standin/kubectl").string();
    o.tools.kubeconfig = "/site/kube config";
    o.tools.kube_context = "prod";
    o.bundle_id = "sha256:" + std::string(64, 'a');
    o.state_dir = m_dir / "state";
    o.registry = k_registry;
    o.helm_timeout_margin = std::chrono::milliseconds(500);
    return o;
  }

  ReleasePlan release(const std::string& name, const std::string& ns) const {
    ReleasePlan r;
    r.name = name;
    r.namespace_name = ns;
    r.chart_name = name + "-chart";
    r.chart_version = "1.2.3";
    r.chart_archive = m_dir / "charts" / (name + "-chart-1.2.3.tgz");
    if (!fs::exists(r.chart_archive)) write_file(r.chart_archive, "not read unless CRDs are asked for");
    r.timeout = "5m";
    return r;
  }

  // Adds a rule: calls whose "tool args…" contain `match` exit with `exit` ("hang": never),
  // printing `out` and `err`. Earlier rules win.
  void rule(const std::string& match, const std::string& exit, const std::string& out = "",
            const std::string& err = "") {
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
  // helm upgrade of `name` succeeds and reports `revision`.
  void upgrade_succeeds(const std::string& name, int revision) {
    rule("helm upgrade --install " + name + " ", "0",
         json{{"name", name}, {"version", revision}, {"info", {{"status", "deployed"}}}}.dump());
  }
  // kubectl get KIND NAME answers NotFound ("namespaces", "caching").
  void absent(const std::string& kind, const std::string& name) {
    const std::string singular = kind == "namespaces" ? "namespace" : "secret";
    rule("kubectl get " + singular + " " + name + " ", "1", "",
         "Error from server (NotFound): " + kind + " \"" + name + "\" not found");
  }
  // helm status of `name` says it is at `revision`.
  void installed(const std::string& name, int revision) {
    rule("helm status " + name + " ", "0",
         json{{"name", name}, {"version", revision}, {"info", {{"status", "deployed"}}}}.dump());
  }

  std::vector<Call> calls() const { return ferry::test::read_standin_calls(m_calls); }
  // The calls whose line starts with `prefix` ("helm upgrade").
  std::vector<Call> calls_of(const std::string& prefix) const { return ferry::test::calls_starting(calls(), prefix); }
  // Index of the first call whose line starts with `prefix`, or -1.
  int index_of(const std::string& prefix) const {
    const auto all = calls();
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (all[i].line.rfind(prefix, 0) == 0) return static_cast<int>(i);
    }
    return -1;
  }
  void forget_calls() const { fs::remove(m_calls); }

private:
  TestDir m_dir;
  fs::path m_rules;
  fs::path m_calls;
  ScopedEnv m_rules_env;
  ScopedEnv m_log_env;
  std::string m_rule_text;
  int m_outputs = 0;
};

Strings helm_upgrade(const std::string& tool, const Strings& middle) {
  return concat(concat({tool, "upgrade", "--install"}, middle), k_helm_kube);
}

template <typename Fn>
Error error_of(Fn&& fn) {
  try {
    fn();
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    return e;
  }
  FAIL("nothing was thrown");
  return Error(ExitCode::ok, "");
}

json state_of(const UpgradeOptions& o) {
  return json::parse(ferry::test::read_file(o.state_dir / ("upgrade-sha256_" + o.bundle_id.substr(7) + ".json")));
}

Strings state_names(const json& state) {
  Strings names;
  for (const auto& r : state.at("releases")) names.push_back(r.at("name").get<std::string>());
  return names;
}

// A chart .tgz made with tar(1), not with ferry's code.
fs::path make_chart_tgz(const TestDir& dir, const std::string& name,
                        const std::vector<std::pair<std::string, std::string>>& files) {
  const fs::path src = dir / ("src-" + std::to_string(files.size()));
  write_file(src / name / "Chart.yaml", "apiVersion: v2\nname: " + name + "\nversion: 1.2.3\n");
  for (const auto& [path, data] : files) write_file(src / name / path, data);
  const fs::path tgz = dir / (name + "-1.2.3.tgz");
  const auto r = ferry::test::run_shell("tar -czf " + ferry::test::shell_quote(tgz) + " -C " +
                                        ferry::test::shell_quote(src) + " " + name);
  REQUIRE_MESSAGE(r.status == 0, r.output);
  return tgz;
}

} // namespace

TEST_SUITE("pipelines") {

TEST_CASE("shell_quote leaves plain words alone and single-quotes the rest") {
  CHECK(shell_quote({"helm", "upgrade", "--install", "web", "./charts/web-1.0.0+build.tgz", "-n", "shop"}) ==
        "helm upgrade --install web ./charts/web-1.0.0+build.tgz -n shop");
  CHECK(shell_quote({"helm", "-f", "my values.yaml", "", "it's", "$HOME", "a;b"}) ==
        "helm -f 'my values.yaml' '' 'it'\\''s' '$HOME' 'a;b'");
}

TEST_CASE("run_upgrade runs helm for each release in plan order with the exact argv") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  ReleasePlan first = cluster.release("web", "shop");
  first.values_files = {cluster.dir() / "bundle.yaml", cluster.dir() / "site values.yaml", cluster.dir() / "overlay.yaml"};
  for (const auto& f : first.values_files) write_file(f, "a: 1\n");
  first.timeout = "7m30s";
  first.atomic = true;
  first.create_namespace = true;
  ReleasePlan second = cluster.release("db", "data");
  second.wait = false;
  o.releases = {first, second};
  cluster.upgrade_succeeds("web", 1);
  cluster.upgrade_succeeds("db", 4);
  cluster.installed("db", 3);

  CaptureLog log;
  const UpgradeResult result = run_upgrade(o, log);

  const auto upgrades = cluster.calls_of("helm upgrade");
  REQUIRE(upgrades.size() == 2);
  const std::string helm = o.tools.helm;
  CHECK(concat({helm}, upgrades[0].argv) ==
        helm_upgrade(helm, {"web", first.chart_archive.string(), "-n", "shop", "-f", first.values_files[0].string(), "-f",
                            first.values_files[1].string(), "-f", first.values_files[2].string(), "--create-namespace",
                            "--wait", "--timeout", "7m30s", "--atomic", "-o", "json"}));
  CHECK(concat({helm}, upgrades[1].argv) ==
        helm_upgrade(helm, {"db", second.chart_archive.string(), "-n", "data", "--timeout", "5m", "-o", "json"}));

  // Pre-flight before the first upgrade, then per release: status, upgrade, pod images.
  Strings order;
  for (const auto& c : cluster.calls()) {
    order.push_back(c.tool + " " + c.argv[0] + " " + (c.argv.size() > 1 ? c.argv[1] : ""));
  }
  CHECK(order == Strings{"helm version --short", "kubectl version -o", "kubectl get namespace", "kubectl get namespace",
                         "helm status web", "helm upgrade --install", "kubectl get pods", "helm status db",
                         "helm upgrade --install", "kubectl get pods"});

  // The kube flags reach every call of both tools.
  for (const auto& c : cluster.calls()) {
    const Strings& flags = c.tool == "helm" ? k_helm_kube : k_kubectl_kube;
    CAPTURE(c.line);
    REQUIRE(c.argv.size() >= flags.size());
    CHECK(Strings(c.argv.end() - static_cast<std::ptrdiff_t>(flags.size()), c.argv.end()) == flags);
  }

  REQUIRE(result.releases.size() == 2);
  CHECK(result.releases[0].name == "web");
  CHECK(result.releases[0].status == ReleaseOutcome::Status::upgraded);
  CHECK(result.releases[0].revision == 1);
  CHECK(result.releases[0].rollback == shell_quote(concat({helm, "uninstall", "web", "-n", "shop"}, k_helm_kube)));
  CHECK(result.releases[1].revision == 4);
  CHECK(result.releases[1].rollback == shell_quote(concat({helm, "rollback", "db", "3", "-n", "data"}, k_helm_kube)));
  CHECK(std::count(result.releases[1].commands.begin(), result.releases[1].commands.end(),
                   shell_quote(concat({helm}, upgrades[1].argv))) == 1);

  // The state file records both, with what was installed.
  const json state = state_of(o);
  CHECK(state.at("bundle") == o.bundle_id);
  REQUIRE(state_names(state) == Strings{"web", "db"});
  CHECK(state["releases"][1]["namespace"] == "data");
  CHECK(state["releases"][1]["chart"] == "db-chart");
  CHECK(state["releases"][1]["version"] == "1.2.3");
  CHECK(state["releases"][1]["revision"] == 4);
  CHECK(state["releases"][1]["time"].get<std::string>().size() == 20);
}

TEST_CASE("run_upgrade streams helm's standard error to the log while helm runs") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  ReleasePlan r = cluster.release("slow", "shop");
  r.timeout = "1s";
  o.releases = {r};
  cluster.rule("helm upgrade --install slow", "hang", "", "waiting for 1 pods to be ready");

  // Notes when each line arrives.
  struct TimedLog final : ferry::core::LogSink {
    std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> lines;
    void log(ferry::core::LogLevel, std::string_view m) override {
      lines.emplace_back(std::chrono::steady_clock::now(), m);
    }
  } log;
  const auto start = std::chrono::steady_clock::now();
  const Error e = error_of([&] { run_upgrade(o, log); });
  const auto end = std::chrono::steady_clock::now();

  // The hanging helm was stopped once its timeout and the margin had passed.
  CHECK(e.code() == ExitCode::upgrade);
  CHECK(contains(e.what(), "release slow"));
  CHECK(contains(e.what(), "did not finish within its timeout 1s"));
  CHECK(end - start >= std::chrono::milliseconds(1400));
  CHECK(end - start < std::chrono::seconds(10));
  const auto line = std::find_if(log.lines.begin(), log.lines.end(),
                                 [](const auto& l) { return l.second == "slow: waiting for 1 pods to be ready"; });
  REQUIRE(line != log.lines.end());
  CHECK(line->first - start < std::chrono::milliseconds(1400)); // long before helm was stopped
  CHECK(cluster.calls_of("kubectl get pods").empty());
}

TEST_CASE("run_upgrade --dry-run passes --dry-run to helm and changes nothing") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  o.dry_run = true;
  ReleasePlan r = cluster.release("web", "shop");
  r.image_pull_secrets = {"regcred"};
  o.releases = {r};
  o.pull_secret_dockerconfigjson = R"({"auths":{"registry.internal:5000":{"auth":"dXNlcjpwYXNz"}}})";
  cluster.absent("secrets", "regcred");

  CaptureLog log;
  const UpgradeResult result = run_upgrade(o, log);

  const auto upgrades = cluster.calls_of("helm upgrade");
  REQUIRE(upgrades.size() == 1);
  CHECK(std::count(upgrades[0].argv.begin(), upgrades[0].argv.end(), "--dry-run") == 1);
  CHECK(result.releases.at(0).status == ReleaseOutcome::Status::dry_run);
  // No secret made, no state file, no pod check.
  CHECK(cluster.calls_of("kubectl create").empty());
  CHECK(contains(log.text(), "would create image pull secret regcred"));
  CHECK_FALSE(fs::exists(o.state_dir));
  CHECK(cluster.calls_of("kubectl get pods").empty());
}

TEST_CASE("run_upgrade plan runs nothing and lists every command") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  o.plan = true;
  ReleasePlan web = cluster.release("web", "shop");
  web.values_files = {cluster.dir() / "my values.yaml"};
  write_file(web.values_files[0], "a: 1\n");
  web.image_pull_secrets = {"regcred"};
  ReleasePlan db = cluster.release("db", "data");
  o.releases = {web, db};

  SUBCASE("with the stand-ins") {}
  SUBCASE("with no helm or kubectl at all") {
    o.tools.helm = (cluster.dir() / "no-helm").string();
    o.tools.kubectl = (cluster.dir() / "no-kubectl").string();
  }
  CaptureLog log;
  const UpgradeResult result = run_upgrade(o, log);

  CHECK(cluster.calls().empty());
  CHECK_FALSE(fs::exists(o.state_dir));
  const std::string helm = o.tools.helm;
  const std::string kubectl = o.tools.kubectl;
  CHECK(result.preflight_commands ==
        Strings{shell_quote(concat({helm, "version", "--short"}, k_helm_kube)),
                shell_quote(concat({kubectl, "version", "-o", "json"}, k_kubectl_kube)),
                shell_quote(concat({kubectl, "get", "namespace", "shop", "-o", "name"}, k_kubectl_kube)),
                shell_quote(concat({kubectl, "get", "secret", "regcred", "-n", "shop", "-o", "name"}, k_kubectl_kube)),
                shell_quote(concat({kubectl, "get", "namespace", "data", "-o", "name"}, k_kubectl_kube))});
  REQUIRE(result.releases.size() == 2);
  const std::string web_upgrade =
      shell_quote(helm_upgrade(helm, {"web", web.chart_archive.string(), "-n", "shop", "-f",
                                      web.values_files[0].string(), "--wait", "--timeout", "5m", "-o", "json"}));
  CHECK(contains(web_upgrade, "'" + web.values_files[0].string() + "'"));
  CHECK(result.releases[0].status == ReleaseOutcome::Status::planned);
  CHECK(result.releases[0].commands ==
        Strings{shell_quote(concat({helm, "status", "web", "-n", "shop", "-o", "json"}, k_helm_kube)), web_upgrade,
                shell_quote(concat({kubectl, "get", "pods", "-n", "shop", "-l", "app.kubernetes.io/instance=web", "-o",
                                    "json"},
                                   k_kubectl_kube))});
  CHECK(result.releases[1].commands.size() == 3);
  CHECK(contains(result.releases[1].commands[1], " upgrade --install db "));
  // Every command is shown to the operator.
  for (const auto& c : result.preflight_commands) CHECK(contains(log.text(), c));
  CHECK(contains(log.text(), web_upgrade));
}

TEST_CASE("run_upgrade pre-flight stops before any upgrade") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  ReleasePlan web = cluster.release("web", "shop"); // fine
  ReleasePlan db = cluster.release("db", "data");
  db.image_pull_secrets = {"regcred"};
  ReleasePlan cache = cluster.release("cache", "caching");
  o.releases = {web, db, cache};

  SUBCASE("a missing namespace without createNamespace") {
    cluster.absent("namespaces", "caching");
    const Error e = error_of([&] { run_upgrade(o, quiet()); });
    CHECK(e.code() == ExitCode::upgrade);
    CHECK(contains(e.what(), "namespace caching does not exist (release cache"));
    CHECK(contains(e.hint(), "kubectl create namespace caching"));
    CHECK_FALSE(contains(e.what(), "regcred"));
  }
  SUBCASE("a missing image pull secret, without credentials") {
    cluster.absent("secrets", "regcred");
    const Error e = error_of([&] { run_upgrade(o, quiet()); });
    CHECK(e.code() == ExitCode::upgrade);
    CHECK(contains(e.what(), "image pull secret regcred does not exist in namespace data (release db"));
    CHECK(cluster.calls_of("kubectl create").empty());
  }
  SUBCASE("both at once: every problem is listed") {
    cluster.absent("namespaces", "caching");
    cluster.absent("secrets", "regcred");
    const Error e = error_of([&] { run_upgrade(o, quiet()); });
    CHECK(contains(e.what(), "2 problems"));
    CHECK(contains(e.what(), "namespace caching"));
    CHECK(contains(e.what(), "secret regcred"));
  }
  SUBCASE("a namespace it may not read: an error, not an absent namespace") {
    cluster.rule("kubectl get namespace data", "1", "",
                 "Error from server (Forbidden): namespaces \"data\" is forbidden: User \"ci\" cannot get resource");
    const Error e = error_of([&] { run_upgrade(o, quiet()); });
    CHECK(e.code() == ExitCode::upgrade);
    CHECK(contains(e.what(), "cannot check namespace data"));
    CHECK(contains(e.what(), "is forbidden"));
  }
  SUBCASE("an unreachable cluster") {
    cluster.rule("kubectl version", "1", "", "The connection to the server 10.0.0.1:6443 was refused");
    const Error e = error_of([&] { run_upgrade(o, quiet()); });
    CHECK(e.code() == ExitCode::upgrade);
    CHECK(contains(e.what(), "the cluster does not answer"));
    CHECK(contains(e.what(), "10.0.0.1:6443 was refused"));
    CHECK(contains(e.hint(), "--kubeconfig"));
  }
  CHECK(cluster.calls_of("helm upgrade").empty());
  CHECK(cluster.calls_of("helm status").empty());
  CHECK_FALSE(fs::exists(o.state_dir));
}

TEST_CASE("run_upgrade lets helm create a missing namespace when createNamespace is set") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  ReleasePlan r = cluster.release("web", "fresh");
  r.create_namespace = true;
  o.releases = {r};
  cluster.absent("namespaces", "fresh");
  (void)run_upgrade(o, quiet());
  const auto upgrades = cluster.calls_of("helm upgrade");
  REQUIRE(upgrades.size() == 1);
  CHECK(std::count(upgrades[0].argv.begin(), upgrades[0].argv.end(), "--create-namespace") == 1);
  CHECK(cluster.calls_of("kubectl create").empty());
}

TEST_CASE("run_upgrade creates a missing pull secret from the credentials, through standard input only") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  // "auth" is base64 of "robot:hunter2-7f3a".
  o.pull_secret_dockerconfigjson = R"({"auths":{"registry.internal:5000":{"auth":"cm9ib3Q6aHVudGVyMi03ZjNh"}}})";
  ReleasePlan r = cluster.release("web", "shop");
  r.image_pull_secrets = {"regcred"};
  o.releases = {r};
  cluster.absent("secrets", "regcred");
  std::string expected_namespace = "shop";

  SUBCASE("in an existing namespace") {}
  SUBCASE("in a namespace helm would create: ferry creates it first") {
    o.releases[0].create_namespace = true;
    cluster.absent("namespaces", "shop");
  }
  CaptureLog log;
  const UpgradeResult result = run_upgrade(o, log);

  const auto creates = cluster.calls_of("kubectl create -f -");
  REQUIRE(creates.size() == 1);
  CHECK(creates[0].argv == concat({"create", "-f", "-", "-n", "shop"}, k_kubectl_kube));
  const json secret = json::parse(creates[0].stdin_text);
  CHECK(secret.at("kind") == "Secret");
  CHECK(secret.at("type") == "kubernetes.io/dockerconfigjson");
  CHECK(secret.at("metadata").at("name") == "regcred");
  CHECK(secret.at("metadata").at("namespace") == expected_namespace);
  CHECK(ferry::core::base64_decode(secret.at("data").at(".dockerconfigjson").get<std::string>()) ==
        o.pull_secret_dockerconfigjson);
  if (o.releases[0].create_namespace) {
    REQUIRE(cluster.index_of("kubectl create namespace shop") >= 0);
    CHECK(cluster.index_of("kubectl create namespace shop") < cluster.index_of("kubectl create -f -"));
  } else {
    CHECK(cluster.index_of("kubectl create namespace") == -1);
  }
  CHECK(cluster.index_of("kubectl create -f -") < cluster.index_of("helm upgrade"));

  // The credentials are in no argv, no log line, no reported command.
  const std::string encoded = ferry::core::base64_encode(o.pull_secret_dockerconfigjson);
  for (const auto& secret_text : {std::string("cm9ib3Q6aHVudGVyMi03ZjNh"), std::string("hunter2"), encoded}) {
    for (const auto& c : cluster.calls()) CHECK_FALSE(contains(c.line, secret_text));
    CHECK_FALSE(contains(log.text(), secret_text));
    for (const auto& c : result.preflight_commands) CHECK_FALSE(contains(c, secret_text));
  }
  CHECK(contains(log.text(), "creating image pull secret regcred in namespace shop"));
}

TEST_CASE("run_upgrade stops at the first failing release with helm's output and the rollback command") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  o.releases = {cluster.release("web", "shop"), cluster.release("db", "data"), cluster.release("cache", "caching")};
  cluster.upgrade_succeeds("web", 2);
  const std::string helm = o.tools.helm;
  std::string rollback;

  SUBCASE("an upgrade: rollback to the revision helm status reported") {
    cluster.installed("db", 7);
    rollback = shell_quote(concat({helm, "rollback", "db", "7", "-n", "data"}, k_helm_kube));
  }
  SUBCASE("a first install: uninstall") {
    rollback = shell_quote(concat({helm, "uninstall", "db", "-n", "data"}, k_helm_kube));
  }
  cluster.rule("helm upgrade --install db", "1", "",
               "Error: UPGRADE FAILED: timed out waiting for the condition\\nhint from helm: check the pods");

  CaptureLog log;
  const Error e = error_of([&] { run_upgrade(o, log); });
  CHECK(e.code() == ExitCode::upgrade);
  CHECK(contains(e.what(), "release db (namespace data)"));
  CHECK(contains(e.what(), "exit code 1"));
  CHECK(contains(e.what(), "Error: UPGRADE FAILED: timed out waiting for the condition"));
  CHECK(contains(e.what(), "hint from helm: check the pods"));
  CHECK(contains(e.hint(), rollback));
  CHECK(contains(e.hint(), "(web)"));
  // Nothing after the failure ran; only the finished release is recorded.
  CHECK(cluster.calls_of("helm status cache").empty());
  CHECK(cluster.calls_of("helm upgrade --install cache").empty());
  CHECK(cluster.calls_of("kubectl get pods -n data").empty());
  CHECK(state_names(state_of(o)) == Strings{"web"});

  // Fixed: the re-run skips web, runs db and cache.
  cluster.clear_rules();
  cluster.upgrade_succeeds("db", 8);
  cluster.upgrade_succeeds("cache", 1);
  cluster.forget_calls();
  CaptureLog rerun_log;
  const UpgradeResult rerun = run_upgrade(o, rerun_log);
  REQUIRE(rerun.releases.size() == 3);
  CHECK(rerun.releases[0].status == ReleaseOutcome::Status::already_done);
  CHECK(rerun.releases[0].revision == 2);
  CHECK(rerun.releases[1].status == ReleaseOutcome::Status::upgraded);
  CHECK(rerun.releases[2].status == ReleaseOutcome::Status::upgraded);
  Strings upgraded;
  for (const auto& c : cluster.calls_of("helm upgrade")) upgraded.push_back(c.argv.at(2));
  CHECK(upgraded == Strings{"db", "cache"});
  CHECK(cluster.calls_of("helm status web").empty());
  CHECK(contains(rerun_log.text(), "release web (namespace shop): already upgraded"));
  CHECK(state_names(state_of(o)) == Strings{"web", "db", "cache"});

  // Once all are done nothing runs at all; another bundle starts afresh.
  cluster.forget_calls();
  const UpgradeResult third = run_upgrade(o, quiet());
  CHECK(cluster.calls().empty());
  for (const auto& r : third.releases) CHECK(r.status == ReleaseOutcome::Status::already_done);
  o.bundle_id = "sha256:" + std::string(64, 'b');
  (void)run_upgrade(o, quiet());
  CHECK(cluster.calls_of("helm upgrade").size() == 3);
}

TEST_CASE("run_upgrade with --atomic says helm rolled back itself") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  ReleasePlan r = cluster.release("web", "shop");
  r.atomic = true;
  o.releases = {r};
  cluster.installed("web", 3);
  cluster.rule("helm upgrade --install web", "1", "",
               "Error: UPGRADE FAILED: release web failed, and has been rolled back");
  const Error e = error_of([&] { run_upgrade(o, quiet()); });
  CHECK(contains(e.hint(), "--atomic"));
  CHECK(contains(e.hint(), "rollback web 3 -n shop"));
}

TEST_CASE("run_upgrade applies the chart's CRDs server-side before helm when asked") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  ReleasePlan r = cluster.release("web", "shop");
  r.chart_archive = make_chart_tgz(cluster.dir(), "web", {{"crds/a.yaml", "kind: CustomResourceDefinition # a\n"},
                                                           {"crds/nested/b.yml", "kind: CustomResourceDefinition # b\n"},
                                                           {"crds/README.md", "not a manifest\n"},
                                                           {"templates/deploy.yaml", "kind: Deployment\n"}});
  r.upgrade_crds = true;
  o.releases = {r};
  // kubectl reads the directory while it runs: a wrapper copies it for the test.
  const fs::path seen = cluster.dir() / "crds-seen";
  const fs::path wrapper = cluster.dir() / "kubectl-copying";
  write_file(wrapper, "#!/bin/sh\n"
                      "prev=\n"
                      "for a in \"$@\"; do\n"
                      "  if [ \"$prev\" = -f ] && [ -d \"$a\" ]; then cp -R \"$a\" " +
                          ferry::test::shell_quote(seen) + "; fi\n"
                      "  prev=$a\n"
                      "done\n"
                      "exec " + ferry::test::shell_quote(data_path("standin/kubectl")) + " \"$@\"\n");
  fs::permissions(wrapper, fs::perms::owner_all);
  o.tools.kubectl = wrapper.string();

  (void)run_upgrade(o, quiet());

  const auto applies = cluster.calls_of("kubectl apply");
  REQUIRE(applies.size() == 1);
  const Strings& argv = applies[0].argv;
  REQUIRE(argv.size() == 5 + k_kubectl_kube.size());
  CHECK(Strings(argv.begin(), argv.begin() + 4) == Strings{"apply", "--server-side", "--force-conflicts", "-f"});
  CHECK_FALSE(fs::exists(argv[4])); // the temporary directory is gone
  CHECK(cluster.index_of("kubectl apply") < cluster.index_of("helm upgrade"));
  const auto upgrades = cluster.calls_of("helm upgrade");
  REQUIRE(upgrades.size() == 1);
  CHECK(std::count(upgrades[0].argv.begin(), upgrades[0].argv.end(), "--skip-crds") == 1);
  // Only the YAML/JSON files of crds/, flattened, in path order, whatever order tar stored them in.
  Strings files;
  for (const auto& entry : fs::directory_iterator(seen)) files.push_back(entry.path().filename().string());
  std::sort(files.begin(), files.end());
  CHECK(files == Strings{"000-a.yaml", "001-nested_b.yml"});
  CHECK(ferry::test::read_file(seen / "001-nested_b.yml") == "kind: CustomResourceDefinition # b\n");
}

TEST_CASE("run_upgrade applies no CRDs for a chart without crds/") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  ReleasePlan r = cluster.release("web", "shop");
  r.chart_archive = make_chart_tgz(cluster.dir(), "web", {{"templates/deploy.yaml", "kind: Deployment\n"}});
  r.upgrade_crds = true;
  o.releases = {r};
  CaptureLog log;
  (void)run_upgrade(o, log);
  CHECK(cluster.calls_of("kubectl apply").empty());
  const auto upgrades = cluster.calls_of("helm upgrade");
  REQUIRE(upgrades.size() == 1);
  CHECK(std::count(upgrades[0].argv.begin(), upgrades[0].argv.end(), "--skip-crds") == 0);
  CHECK(contains(log.text(), "has no crds/"));
}

TEST_CASE("run_upgrade reports pod images that are not under the internal registry") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  o.releases = {cluster.release("web", "shop")};
  const json pods = {
      {"items",
       {{{"metadata", {{"name", "web-0"}}},
         {"spec",
          {{"initContainers", {{{"name", "init"}, {"image", "docker.io/library/busybox:1.36"}}}},
           {"containers",
            {{{"name", "app"}, {"image", k_registry + "/web/app:1.0"}},
             {{"name", "side"}, {"image", "registry.internal:5000/mirrorx/side:2"}}}},
           {"ephemeralContainers", {{{"name", "debug"}, {"image", "quay.io/tools/debug:3"}}}}}}},
        {{"metadata", {{"name", "web-1"}}},
         {"spec", {{"containers", {{{"name", "app"}, {"image", k_registry + "/web/app:1.0"}}}}}}}}}};
  cluster.rule("kubectl get pods -n shop -l app.kubernetes.io/instance=web -o json", "0", pods.dump());
  CaptureLog log;
  const UpgradeResult result = run_upgrade(o, log);
  CHECK(result.releases.at(0).foreign_images ==
        Strings{"docker.io/library/busybox:1.36", "quay.io/tools/debug:3", "registry.internal:5000/mirrorx/side:2"});
  CHECK(contains(log.text(), "quay.io/tools/debug:3, which is not under " + k_registry));

  SUBCASE("no registry: no pod check") {
    cluster.forget_calls();
    o.registry.clear();
    o.bundle_id = "sha256:" + std::string(64, 'd');
    const UpgradeResult again = run_upgrade(o, log);
    CHECK(again.releases.at(0).foreign_images.empty());
    CHECK(cluster.calls_of("kubectl get pods").empty());
  }
}

TEST_CASE("run_upgrade names --helm or --kubectl when a tool is missing") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  o.releases = {cluster.release("web", "shop")};
  SUBCASE("helm") {
    o.tools.helm = (cluster.dir() / "bin" / "helm").string();
    try {
      (void)run_upgrade(o, quiet());
      FAIL("no error");
    } catch (const UsageError& e) {
      CHECK(contains(e.what(), "helm not found"));
      CHECK(contains(e.hint(), "--helm"));
    }
  }
  SUBCASE("kubectl, by name in $PATH") {
    o.tools.kubectl = "ferry-no-such-kubectl";
    try {
      (void)run_upgrade(o, quiet());
      FAIL("no error");
    } catch (const UsageError& e) {
      CHECK(contains(e.what(), "'ferry-no-such-kubectl' is not in $PATH"));
      CHECK(contains(e.hint(), "--kubectl"));
    }
  }
  CHECK(cluster.calls().empty());
}

TEST_CASE("run_upgrade refuses a state file it cannot read, naming it") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  o.releases = {cluster.release("web", "shop")};
  const fs::path file = o.state_dir / ("upgrade-sha256_" + o.bundle_id.substr(7) + ".json");
  write_file(file, "{\"bundle\": \"sha256:");
  const Error e = error_of([&] { run_upgrade(o, quiet()); });
  CHECK(e.code() == ExitCode::failure);
  CHECK(contains(e.what(), file.string()));
  CHECK(contains(e.hint(), "remove"));
  CHECK(cluster.calls().empty());
}

TEST_CASE("run_upgrade refuses a bad release before running anything") {
  Cluster cluster;
  UpgradeOptions o = cluster.options();
  ReleasePlan r = cluster.release("web", "shop");
  SUBCASE("a timeout that is no duration") {
    r.timeout = "10 minutes";
  }
  SUBCASE("a missing values file") {
    r.values_files = {cluster.dir() / "missing.yaml"};
  }
  SUBCASE("a missing chart") {
    r.chart_archive = cluster.dir() / "missing.tgz";
  }
  o.releases = {r};
  CHECK_THROWS_AS(run_upgrade(o, quiet()), UsageError);
  CHECK(cluster.calls().empty());
}

} // TEST_SUITE

// The upgrade stage: pre-flight, CRDs, helm upgrade --install per release, state file, pod images.
// SPDX-License-Identifier: Apache-2.0
#include "upgrade.hpp"

#include "chart/chart_archive.hpp"
#include "core/digest.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/process.hpp"
#include "core/secret.hpp"
#include "image_push.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <map>
#include <set>
#include <system_error>
#include <utility>

namespace ferry {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

// helm version, kubectl get …, helm status: answers within seconds from a healthy
// cluster; kubectl's own request timeout is 32 s per attempt.
constexpr milliseconds k_query_timeout = std::chrono::minutes(2);
// Lines of helm's (or kubectl's) standard error quoted in a failure.
constexpr std::size_t k_quoted_lines = 20;

// --- small helpers -----------------------------------------------------------------

// Parses a Go duration as helm's --timeout takes it ("5m", "1h30m", "90s", "1.5h", "0").
std::optional<milliseconds> parse_go_duration(std::string_view text) {
  if (text == "0") return milliseconds(0);
  static const std::vector<std::pair<std::string_view, double>> k_units = {
      {"ns", 1e-6}, {"us", 1e-3}, {"\xC2\xB5s", 1e-3}, {"\xCE\xBCs", 1e-3}, {"ms", 1.0},
      {"s", 1e3},   {"m", 60e3},  {"h", 3600e3}};
  double total = 0;
  std::size_t i = 0;
  if (text.empty()) return std::nullopt;
  while (i < text.size()) {
    const std::size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) != 0 || text[i] == '.')) ++i;
    const std::string number(text.substr(start, i - start));
    if (number.empty() || number == "." || std::count(number.begin(), number.end(), '.') > 1) return std::nullopt;
    const std::size_t unit_start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) == 0 && text[i] != '.') ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    const auto found = std::find_if(k_units.begin(), k_units.end(), [&](const auto& u) { return u.first == unit; });
    if (found == k_units.end()) return std::nullopt;
    total += std::stod(number) * found->second;
  }
  if (!std::isfinite(total) || total > 1e15) return std::nullopt;
  return milliseconds(static_cast<std::int64_t>(std::ceil(total)));
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

// The last `count` non-empty lines of `text`, each indented for a multi-line message.
std::string last_lines(const std::string& text, std::size_t count) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
    start = end + 1;
  }
  std::string out;
  const std::size_t first = lines.size() > count ? lines.size() - count : 0;
  if (first > 0) out += "\n  (" + std::to_string(first) + " earlier lines left out)";
  for (std::size_t k = first; k < lines.size(); ++k) out += "\n  " + lines[k];
  return out;
}

// What a failed tool said, for an error message: its standard error (never its standard
// output: helm -o json prints the release's values there, site secrets included).
std::string tool_said(const core::ProcessResult& r) {
  const std::string lines = last_lines(r.err, k_quoted_lines);
  const std::string stopped = r.timed_out ? " (stopped: it did not finish in time)" : "";
  return stopped + (lines.empty() ? " (nothing on standard error)" : ":" + lines);
}

std::string replace_all(std::string text, const std::string& what, const std::string& with) {
  if (what.empty()) return text;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size())) {
    text.replace(at, what.size(), with);
  }
  return text;
}

bool is_not_found(const core::ProcessResult& r) {
  // kubectl: `Error from server (NotFound): namespaces "x" not found`;
  // helm: `Error: release: not found`.
  // Exactly these: `context "x" not found` and the like are failures, not absence.
  return r.err.find("(NotFound)") != std::string::npos || r.err.find("release: not found") != std::string::npos;
}

std::string release_label(const ReleasePlan& r) { return "release " + r.name + " (namespace " + r.namespace_name + ")"; }

// --- the state file ------------------------------------------------------------------

struct DoneRelease {
  std::string name;
  std::string namespace_name;
  std::string chart;
  std::string version;
  std::int64_t revision = 0;
  std::string time;
};

// upgrade-<bundle id>.json in the state directory: which releases a run finished for
// this bundle. Written whole, atomically, after each release.
class StateFile {
public:
  StateFile(fs::path path, std::string bundle_id) : m_path(std::move(path)), m_bundle_id(std::move(bundle_id)) {
    std::error_code ec;
    if (!fs::exists(m_path, ec)) return;
    const std::string text = core::read_file(m_path, 16u << 20);
    const std::string hint = "remove " + core::display(m_path) + " to run every release again";
    json doc;
    try {
      doc = json::parse(text);
      if (doc.value("bundle", std::string()) != m_bundle_id) {
        throw core::Error(core::ExitCode::failure,
                          "the upgrade state file " + core::display(m_path) + " is for bundle " +
                              doc.value("bundle", std::string("(none)")) + ", not " + m_bundle_id,
                          hint);
      }
      for (const auto& r : doc.at("releases")) {
        m_done.push_back(DoneRelease{r.at("name").get<std::string>(), r.at("namespace").get<std::string>(),
                                     r.value("chart", ""), r.value("version", ""), r.value("revision", std::int64_t{0}),
                                     r.value("time", "")});
      }
    } catch (const json::exception& e) {
      throw core::Error(core::ExitCode::failure,
                        "the upgrade state file " + core::display(m_path) + " is not valid: " + e.what(), hint);
    }
  }

  const fs::path& path() const noexcept { return m_path; }

  const DoneRelease* find(const ReleasePlan& r) const {
    for (const auto& d : m_done) {
      if (d.name == r.name && d.namespace_name == r.namespace_name) return &d;
    }
    return nullptr;
  }

  void record(DoneRelease done) {
    m_done.push_back(std::move(done));
    json releases = json::array();
    for (const auto& d : m_done) {
      releases.push_back({{"name", d.name},
                          {"namespace", d.namespace_name},
                          {"chart", d.chart},
                          {"version", d.version},
                          {"revision", d.revision},
                          {"time", d.time}});
    }
    const json doc = {{"format", 1}, {"bundle", m_bundle_id}, {"releases", releases}};
    std::error_code ec;
    core::create_private_directories(m_path.parent_path(), ec);
    if (ec) {
      throw core::Error(core::ExitCode::failure,
                        "cannot create the state directory " + core::display(m_path.parent_path()) + ": " + ec.message(),
                        "give a writable directory with --state-dir");
    }
    core::write_file_atomic(m_path, doc.dump(2) + "\n", 0600);
  }

private:
  fs::path m_path;
  std::string m_bundle_id;
  std::vector<DoneRelease> m_done;
};

fs::path state_file_path(const UpgradeOptions& options) {
  std::string id = options.bundle_id;
  for (char& c : id) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '-') c = '_';
  }
  // A file name stays well below NAME_MAX; an unusually long id is named by its hash.
  if (id.size() > 160) id = "sha256_" + std::string(core::sha256_of(options.bundle_id).hex());
  const fs::path dir = options.state_dir.empty() ? default_state_dir() : options.state_dir;
  return dir / ("upgrade-" + id + ".json");
}

// --- the tools ------------------------------------------------------------------------

// Builds the argv of helm and kubectl calls, each ending with the kube flags.
class Tools {
public:
  explicit Tools(const KubeTools& tools) : m_tools(tools) {}

  std::vector<std::string> helm(std::vector<std::string> args) const {
    args.insert(args.begin(), m_tools.helm);
    if (!m_tools.kubeconfig.empty()) args.insert(args.end(), {"--kubeconfig", m_tools.kubeconfig});
    if (!m_tools.kube_context.empty()) args.insert(args.end(), {"--kube-context", m_tools.kube_context});
    return args;
  }
  std::vector<std::string> kubectl(std::vector<std::string> args) const {
    args.insert(args.begin(), m_tools.kubectl);
    if (!m_tools.kubeconfig.empty()) args.insert(args.end(), {"--kubeconfig", m_tools.kubeconfig});
    if (!m_tools.kube_context.empty()) args.insert(args.end(), {"--context", m_tools.kube_context});
    return args;
  }

  // UsageError when either program cannot be found (checked before anything runs).
  void require() const {
    auto check = [](const std::string& program, const char* tool, const char* flag) {
      if (core::find_program(program)) return;
      const bool is_path = program.find('/') != std::string::npos;
      throw core::UsageError(std::string(tool) + " not found: " +
                                 (is_path ? program + " is not an executable file" : "'" + program + "' is not in $PATH"),
                             std::string("install ") + tool + " on this host or give its path with " + flag);
    };
    check(m_tools.helm, "helm", "--helm");
    check(m_tools.kubectl, "kubectl", "--kubectl");
  }

private:
  const KubeTools& m_tools;
};

// The commands of one release, built once for the plan and for the run.
struct ReleaseCommands {
  std::vector<std::string> status;
  std::vector<std::string> crds; // empty: no CRDs to apply
  std::vector<std::string> upgrade;
  std::vector<std::string> pods; // empty: no registry to compare with
};

std::vector<chart::ArchiveFile> chart_crds(const ReleasePlan& r) {
  const std::string what = core::display(r.chart_archive);
  std::vector<chart::ArchiveFile> crds;
  for (auto& f : chart::read_chart_files(core::read_file(r.chart_archive, chart::k_max_chart_size), what)) {
    // Helm reads crds/ the same way: every file below it that is YAML or JSON.
    const fs::path p(f.path);
    const std::string ext = p.extension().string();
    if (f.path.rfind("crds/", 0) == 0 && (ext == ".yaml" || ext == ".yml" || ext == ".json")) crds.push_back(std::move(f));
  }
  // By path, as `helm package` stores them, whatever tool made this archive.
  std::sort(crds.begin(), crds.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return crds;
}

ReleaseCommands release_commands(const Tools& tools, const UpgradeOptions& options, const ReleasePlan& r,
                                 const fs::path& crd_dir) {
  ReleaseCommands c;
  c.status = tools.helm({"status", r.name, "-n", r.namespace_name, "-o", "json"});
  if (!crd_dir.empty()) {
    std::vector<std::string> apply = {"apply", "--server-side", "--force-conflicts", "-f", crd_dir.string()};
    if (options.dry_run) apply.push_back("--dry-run=server");
    c.crds = tools.kubectl(std::move(apply));
  }
  std::vector<std::string> up = {"upgrade", "--install", r.name, r.chart_archive.string(), "-n", r.namespace_name};
  for (const auto& f : r.values_files) up.insert(up.end(), {"-f", f.string()});
  if (r.create_namespace) up.push_back("--create-namespace");
  if (r.wait) up.push_back("--wait");
  // Always: helm's hooks wait for it even without --wait, and ferry's own deadline
  // derives from it.
  up.insert(up.end(), {"--timeout", r.timeout});
  if (r.atomic) up.push_back("--atomic");
  if (!crd_dir.empty()) up.push_back("--skip-crds"); // applied above, server-side
  if (options.dry_run) up.push_back("--dry-run");
  up.insert(up.end(), {"-o", "json"}); // the new revision, without scraping the notes
  c.upgrade = tools.helm(std::move(up));
  if (!options.registry.empty()) {
    c.pods = tools.kubectl(
        {"get", "pods", "-n", r.namespace_name, "-l", "app.kubernetes.io/instance=" + r.name, "-o", "json"});
  }
  return c;
}

// ProcessOptions for a call that must end within `timeout`, with `input` on its standard
// input.
core::ProcessOptions within(milliseconds timeout, std::string input = {}) {
  core::ProcessOptions options;
  options.input = std::move(input);
  options.timeout = timeout;
  return options;
}

// Runs a query (nothing changes): logged at debug level.
core::ProcessResult query(const std::vector<std::string>& argv, core::LogSink& log) {
  log.debug("running: " + shell_quote(argv));
  return core::run_process(argv, within(k_query_timeout));
}

// --- pre-flight -----------------------------------------------------------------------

void preflight(const Tools& tools, const UpgradeOptions& options, const std::vector<const ReleasePlan*>& pending,
               UpgradeResult& result, core::LogSink& log) {
  auto note = [&](const std::vector<std::string>& argv) { result.preflight_commands.push_back(shell_quote(argv)); };
  tools.require();

  const auto helm_version = tools.helm({"version", "--short"});
  note(helm_version);
  const auto hv = query(helm_version, log);
  if (hv.exit_code != 0) {
    throw core::Error(core::ExitCode::upgrade, "helm does not run (" + shell_quote(helm_version) + " exited with " +
                                                   std::to_string(hv.exit_code) + ")" + tool_said(hv),
                      "give a working helm 3 with --helm");
  }
  if (const std::string v = hv.out.substr(0, hv.out.find('\n')); !v.empty()) log.info("helm " + v + " at " + options.tools.helm);

  const auto kube_version = tools.kubectl({"version", "-o", "json"});
  note(kube_version);
  const auto kv = query(kube_version, log);
  if (kv.exit_code != 0) {
    throw core::Error(core::ExitCode::upgrade, "the cluster does not answer (" + shell_quote(kube_version) +
                                                   " exited with " + std::to_string(kv.exit_code) + ")" + tool_said(kv),
                      "check --kubeconfig and --kube-context, and that this host reaches the API server");
  }

  std::vector<std::string> problems;
  std::vector<std::string> hints;
  // Namespaces, in plan order: exists? created by helm (--create-namespace)?
  std::map<std::string, bool> ns_exists;
  std::map<std::string, bool> ns_created_by_helm;
  for (const ReleasePlan* r : pending) ns_created_by_helm[r->namespace_name] |= r->create_namespace;
  for (const ReleasePlan* r : pending) {
    if (ns_exists.count(r->namespace_name) != 0) continue;
    const auto argv = tools.kubectl({"get", "namespace", r->namespace_name, "-o", "name"});
    note(argv);
    const auto got = query(argv, log);
    if (got.exit_code == 0) {
      ns_exists[r->namespace_name] = true;
    } else if (is_not_found(got)) {
      ns_exists[r->namespace_name] = false;
      if (!ns_created_by_helm[r->namespace_name]) {
        problems.push_back("namespace " + r->namespace_name + " does not exist (" + release_label(*r) + ")");
        hints.push_back("create it with `kubectl create namespace " + r->namespace_name +
                        "` or set createNamespace: true for release " + r->name);
      }
    } else {
      throw core::Error(core::ExitCode::upgrade,
                        "cannot check namespace " + r->namespace_name + " (" + shell_quote(argv) + " exited with " +
                            std::to_string(got.exit_code) + ")" + tool_said(got),
                        "check that the kube context may read namespaces");
    }
  }

  // Image pull secrets: present, or to be created from the given credentials.
  struct Missing {
    std::string ns;
    std::string name;
  };
  std::vector<Missing> to_create;
  std::set<std::pair<std::string, std::string>> seen;
  for (const ReleasePlan* r : pending) {
    for (const auto& secret : r->image_pull_secrets) {
      if (!seen.insert({r->namespace_name, secret}).second) continue;
      bool exists = false;
      if (ns_exists[r->namespace_name]) {
        const auto argv = tools.kubectl({"get", "secret", secret, "-n", r->namespace_name, "-o", "name"});
        note(argv);
        const auto got = query(argv, log);
        if (got.exit_code == 0) {
          exists = true;
        } else if (!is_not_found(got)) {
          throw core::Error(core::ExitCode::upgrade,
                            "cannot check image pull secret " + secret + " in namespace " + r->namespace_name + " (" +
                                shell_quote(argv) + " exited with " + std::to_string(got.exit_code) + ")" +
                                tool_said(got),
                            "check that the kube context may read secrets in " + r->namespace_name);
        }
      }
      if (exists) continue;
      if (options.pull_secret_dockerconfigjson.empty()) {
        problems.push_back("image pull secret " + secret + " does not exist in namespace " + r->namespace_name + " (" +
                           release_label(*r) + ")");
        hints.push_back("create it with `kubectl create secret docker-registry " + secret + " -n " + r->namespace_name +
                        " --docker-server=… --docker-username=…` or give ferry the registry credentials to create it");
      } else {
        to_create.push_back({r->namespace_name, secret});
      }
    }
  }
  if (!problems.empty()) {
    std::string message = "pre-flight found " + std::to_string(problems.size()) +
                          (problems.size() == 1 ? " problem" : " problems") + "; nothing was upgraded:";
    for (const auto& p : problems) message += "\n  " + p;
    std::string hint;
    for (const auto& h : hints) hint += (hint.empty() ? "" : "; ") + h;
    throw core::Error(core::ExitCode::upgrade, message, hint);
  }

  // Creations, only once every check passed; none in a dry run.
  std::set<std::string> ns_made;
  for (const auto& m : to_create) {
    if (!ns_exists[m.ns] && ns_made.count(m.ns) == 0) {
      const auto argv = tools.kubectl({"create", "namespace", m.ns});
      note(argv);
      if (options.dry_run) {
        log.info("dry run: would create namespace " + m.ns + " for image pull secret " + m.name);
      } else {
        log.info("creating namespace " + m.ns + " for image pull secret " + m.name);
        const auto made = core::run_process(argv, within(k_query_timeout));
        if (made.exit_code != 0) {
          throw core::Error(core::ExitCode::upgrade, "cannot create namespace " + m.ns + tool_said(made),
                            "check that the kube context may create namespaces, or create it first");
        }
      }
      ns_made.insert(m.ns);
    }
    // The credentials travel on standard input only: `kubectl create -f -` with the Secret
    // as JSON. (--from-file=…=/dev/stdin cannot work here: run_process gives the child a
    // socket as standard input, and Linux refuses to open a socket through /dev/stdin.)
    const auto argv = tools.kubectl({"create", "-f", "-", "-n", m.ns});
    note(argv);
    if (options.dry_run) {
      log.info("dry run: would create image pull secret " + m.name + " in namespace " + m.ns +
               " from the given registry credentials");
      continue;
    }
    log.info("creating image pull secret " + m.name + " in namespace " + m.ns + " from the given registry credentials");
    const std::string encoded = core::base64_encode(options.pull_secret_dockerconfigjson);
    const json secret = {{"apiVersion", "v1"},
                         {"kind", "Secret"},
                         {"metadata",
                          {{"name", m.name},
                           {"namespace", m.ns},
                           {"labels", {{"app.kubernetes.io/managed-by", "ferry"}}}}},
                         {"type", "kubernetes.io/dockerconfigjson"},
                         {"data", {{".dockerconfigjson", encoded}}}};
    auto made = core::run_process(argv, within(k_query_timeout, secret.dump()));
    if (made.exit_code != 0) {
      // kubectl may echo what it was given: the credentials must not reach the message.
      made.err = replace_all(replace_all(made.err, options.pull_secret_dockerconfigjson, "[redacted]"), encoded,
                             "[redacted]");
      throw core::Error(core::ExitCode::upgrade,
                        "cannot create image pull secret " + m.name + " in namespace " + m.ns + tool_said(made),
                        "check that the kube context may create secrets in " + m.ns + ", or create the secret first");
    }
  }
}

// --- one release ----------------------------------------------------------------------

struct LiveRelease {
  std::int64_t revision = 0; // 0: no such release (a first install)
  std::string status;        // "deployed", "failed", "pending-upgrade", …
};

LiveRelease live_release(const std::vector<std::string>& argv, const ReleasePlan& r, core::LogSink& log) {
  const auto got = query(argv, log);
  if (got.exit_code != 0) {
    if (is_not_found(got)) return {};
    throw core::Error(core::ExitCode::upgrade,
                      "cannot read the status of " + release_label(r) + " (" + shell_quote(argv) + " exited with " +
                          std::to_string(got.exit_code) + ")" + tool_said(got),
                      "nothing was changed for it; check the cluster and run again");
  }
  try {
    const json doc = json::parse(got.out);
    LiveRelease live;
    live.revision = doc.at("version").get<std::int64_t>();
    if (doc.contains("info") && doc["info"].is_object()) live.status = doc["info"].value("status", "");
    return live;
  } catch (const json::exception& e) {
    throw core::Error(core::ExitCode::upgrade,
                      "cannot read the status of " + release_label(r) + ": " + shell_quote(argv) +
                          " printed no release JSON: " + e.what(),
                      "check that --helm is helm 3");
  }
}

std::vector<std::string> pod_images(const std::string& pods_json) {
  std::set<std::string> images;
  const json doc = json::parse(pods_json);
  for (const auto& pod : doc.value("items", json::array())) {
    if (!pod.contains("spec") || !pod["spec"].is_object()) continue;
    for (const char* kind : {"initContainers", "containers", "ephemeralContainers"}) {
      for (const auto& c : pod["spec"].value(kind, json::array())) {
        if (c.is_object() && c.contains("image") && c["image"].is_string()) images.insert(c["image"].get<std::string>());
      }
    }
  }
  return {images.begin(), images.end()};
}

void report_pod_images(const ReleaseCommands& c, const UpgradeOptions& options, const ReleasePlan& r,
                       ReleaseOutcome& outcome, core::LogSink& log) {
  const auto got = query(c.pods, log);
  if (got.exit_code != 0) {
    log.warning("could not list the pods of " + release_label(r) + " to check their images" + tool_said(got));
    return;
  }
  std::vector<std::string> images;
  try {
    images = pod_images(got.out);
  } catch (const json::exception& e) {
    log.warning("could not read the pods of " + release_label(r) + ": " + e.what());
    return;
  }
  std::string registry = options.registry;
  while (!registry.empty() && registry.back() == '/') registry.pop_back();
  const std::string prefix = registry + "/";
  for (const auto& image : images) {
    if (image.rfind(prefix, 0) != 0) outcome.foreign_images.push_back(image);
  }
  if (images.empty()) {
    log.info(r.name + ": no pods labelled app.kubernetes.io/instance=" + r.name + " to check");
  } else if (outcome.foreign_images.empty()) {
    log.info(r.name + ": all " + std::to_string(images.size()) + " pod images are under " + registry);
  }
  for (const auto& image : outcome.foreign_images) {
    log.warning(r.name + ": a pod runs " + image + ", which is not under " + registry);
  }
}

// Applies the chart's CRDs from a temporary directory; Error when kubectl fails.
void apply_crds(const std::vector<std::string>& argv, const ReleasePlan& r, core::LogSink& log) {
  log.info(r.name + ": applying the chart's CRDs: " + shell_quote(argv));
  const auto got = core::run_process(argv, within(k_query_timeout));
  if (got.exit_code != 0) {
    throw core::Error(core::ExitCode::upgrade,
                      "applying the CRDs of chart " + r.chart_name + " for " + release_label(r) + " failed (exit " +
                          std::to_string(got.exit_code) + ")" + tool_said(got),
                      "the release itself was not changed; fix the cause and run again");
  }
}

std::string done_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void validate(const UpgradeOptions& options) {
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& r : options.releases) {
    if (r.name.empty()) throw core::UsageError("a release in the upgrade plan has no name");
    if (r.namespace_name.empty()) {
      throw core::UsageError("release " + r.name + " has no namespace", "give its namespace in the release plan");
    }
    if (!seen.insert({r.name, r.namespace_name}).second) {
      throw core::UsageError("release " + r.name + " (namespace " + r.namespace_name + ") is in the plan twice");
    }
    if (!parse_go_duration(r.timeout)) {
      throw core::UsageError("release " + r.name + " has timeout '" + r.timeout + "', which is not a duration",
                             "write it as helm does: 300s, 10m, 1h30m");
    }
    std::error_code ec;
    if (!fs::is_regular_file(r.chart_archive, ec)) {
      throw core::UsageError("the chart of release " + r.name + ", " + core::display(r.chart_archive) + ", is not a file");
    }
    for (const auto& f : r.values_files) {
      if (!fs::is_regular_file(f, ec)) {
        throw core::UsageError("values file " + core::display(f) + " of release " + r.name + " is not a file");
      }
    }
  }
}

} // namespace

std::string shell_quote(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& word : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char ch) {
      const auto c = static_cast<unsigned char>(ch);
      return std::isalnum(c) != 0 || std::string_view("_-+=:,./@%").find(ch) != std::string_view::npos;
    });
    if (plain) {
      out += word;
    } else {
      out += '\'' + replace_all(word, "'", "'\\''") + '\'';
    }
  }
  return out;
}

UpgradeResult run_upgrade(const UpgradeOptions& options, core::LogSink& log) {
  validate(options);
  if (options.bundle_id.empty() && !options.plan && !options.dry_run) {
    throw core::Error(core::ExitCode::failure, "run_upgrade: no bundle id to key the upgrade state file");
  }
  const Tools tools(options.tools);
  UpgradeResult result;
  std::optional<StateFile> state;
  if (!options.bundle_id.empty()) {
    state.emplace(state_file_path(options), options.bundle_id);
    result.state_file = state->path();
  }

  // Skipped releases first: they are done, whatever the mode.
  std::vector<const ReleasePlan*> pending;
  std::vector<std::string> finished_before;
  for (const auto& r : options.releases) {
    ReleaseOutcome outcome;
    outcome.name = r.name;
    if (const DoneRelease* done = state ? state->find(r) : nullptr) {
      outcome.status = ReleaseOutcome::Status::already_done;
      outcome.revision = done->revision;
      finished_before.push_back(r.name);
      log.info(release_label(r) + ": already upgraded for this bundle (revision " + std::to_string(done->revision) +
               ", " + done->time + "), skipped");
    } else {
      pending.push_back(&r);
    }
    result.releases.push_back(std::move(outcome));
  }
  auto outcome_of = [&](const ReleasePlan* r) -> ReleaseOutcome& {
    return result.releases[static_cast<std::size_t>(r - options.releases.data())];
  };
  if (pending.empty()) {
    if (!options.releases.empty()) log.info("every release is already upgraded for this bundle; nothing to do");
    return result;
  }

  if (options.plan) {
    result.preflight_commands.push_back(shell_quote(tools.helm({"version", "--short"})));
    result.preflight_commands.push_back(shell_quote(tools.kubectl({"version", "-o", "json"})));
    std::set<std::string> namespaces;
    for (const ReleasePlan* r : pending) {
      if (namespaces.insert(r->namespace_name).second) {
        result.preflight_commands.push_back(
            shell_quote(tools.kubectl({"get", "namespace", r->namespace_name, "-o", "name"})));
      }
      for (const auto& s : r->image_pull_secrets) {
        result.preflight_commands.push_back(
            shell_quote(tools.kubectl({"get", "secret", s, "-n", r->namespace_name, "-o", "name"})));
      }
    }
    for (const auto& c : result.preflight_commands) log.info("plan: " + c);
    for (const ReleasePlan* r : pending) {
      ReleaseOutcome& outcome = outcome_of(r);
      outcome.status = ReleaseOutcome::Status::planned;
      // The CRDs' temporary directory does not exist yet: a placeholder names it.
      const fs::path crd_dir = r->upgrade_crds && !chart_crds(*r).empty()
                                   ? fs::path("<crds/ of " + r->chart_archive.filename().string() + ">")
                                   : fs::path();
      const ReleaseCommands c = release_commands(tools, options, *r, crd_dir);
      for (const auto* argv : {&c.status, &c.crds, &c.upgrade, &c.pods}) {
        if (argv->empty()) continue;
        outcome.commands.push_back(shell_quote(*argv));
        log.info("plan: " + outcome.commands.back());
      }
    }
    return result;
  }

  preflight(tools, options, pending, result, log);

  std::vector<std::string> finished = finished_before;
  for (std::size_t index = 0; index < pending.size(); ++index) {
    const ReleasePlan& r = *pending[index];
    ReleaseOutcome& outcome = outcome_of(&r);
    log.info((options.dry_run ? "dry run: release " : "release ") + r.name + " (" + std::to_string(index + 1) + " of " +
             std::to_string(pending.size()) + "): chart " + r.chart_name + " " + r.chart_version + " into namespace " +
             r.namespace_name);

    std::optional<core::TempDir> crd_dir;
    std::vector<chart::ArchiveFile> crds;
    if (r.upgrade_crds) {
      crds = chart_crds(r);
      if (crds.empty()) {
        log.info(r.name + ": chart " + r.chart_name + " has no crds/ to apply");
      } else {
        crd_dir.emplace(fs::path(), "ferry-crds");
        // kubectl reads a directory's files in name order and only *.yaml/*.yml/*.json,
        // without descending: flatten the tree, keeping the order by path.
        for (std::size_t k = 0; k < crds.size(); ++k) {
          std::string flat = crds[k].path.substr(5);
          std::replace(flat.begin(), flat.end(), '/', '_');
          std::string number = std::to_string(k);
          number.insert(0, number.size() < 3 ? 3 - number.size() : 0, '0');
          core::write_file_atomic(crd_dir->path() / (number + "-" + flat), crds[k].data);
        }
      }
    }
    const ReleaseCommands c = release_commands(tools, options, r, crd_dir ? crd_dir->path() : fs::path());

    // The revision to go back to, read before anything changes.
    LiveRelease live;
    if (!options.dry_run) {
      outcome.commands.push_back(shell_quote(c.status));
      live = live_release(c.status, r, log);
      outcome.rollback =
          shell_quote(live.revision > 0
                          ? tools.helm({"rollback", r.name, std::to_string(live.revision), "-n", r.namespace_name})
                          : tools.helm({"uninstall", r.name, "-n", r.namespace_name}));
      if (live.status.rfind("pending-", 0) == 0) {
        // helm refuses to upgrade a release another (interrupted) helm left pending.
        log.warning(r.name + ": revision " + std::to_string(live.revision) + " is " + live.status +
                    "; if helm refuses to upgrade, roll back to the last deployed revision (" +
                    shell_quote(tools.helm({"history", r.name, "-n", r.namespace_name})) + " lists them)");
      }
    }
    auto failure_hint = [&](const std::string& what_now) {
      std::string hint = what_now;
      if (!finished.empty()) {
        hint += "; releases already upgraded (" + done_list(finished) + ") are skipped on the next run";
      }
      return hint;
    };

    try {
      if (!c.crds.empty()) {
        outcome.commands.push_back(shell_quote(c.crds));
        apply_crds(c.crds, r, log);
      }
    } catch (core::Error& e) {
      e.set_hint(failure_hint(e.hint()));
      throw;
    }

    outcome.commands.push_back(shell_quote(c.upgrade));
    log.info("running: " + outcome.commands.back());
    const milliseconds helm_timeout = *parse_go_duration(r.timeout);
    core::ProcessOptions helm_options = within(helm_timeout * (r.atomic ? 2 : 1) + options.helm_timeout_margin);
    helm_options.on_stderr_line = [&](std::string_view line) {
      std::string text(line);
      while (!text.empty() && text.back() == '\r') text.pop_back();
      if (!text.empty()) log.info(r.name + ": " + text);
    };
    const auto got = core::run_process(c.upgrade, helm_options);
    if (got.timed_out || got.exit_code != 0) {
      std::string message =
          got.timed_out
              ? "helm upgrade of " + release_label(r) + " did not finish within its timeout " + r.timeout +
                    (r.atomic ? " (twice, for --atomic)" : "") + " and a margin, and was stopped"
              : "helm upgrade of " + release_label(r) + " failed with exit code " + std::to_string(got.exit_code);
      message += tool_said(got);
      std::string hint;
      if (options.dry_run) {
        hint = "this was a dry run: nothing was changed; fix the cause and try again";
      } else if (r.atomic && !got.timed_out) {
        hint = "helm rolled the release back itself (--atomic); if it did not: " + outcome.rollback;
      } else {
        hint = "to undo it: " + outcome.rollback + "; or fix the cause and run again";
      }
      core::Error error(core::ExitCode::upgrade, message, failure_hint(hint));
      error.add_context("while upgrading release " + r.name + " (" + std::to_string(index + 1) + " of " +
                        std::to_string(pending.size()) + ")");
      throw error;
    }

    if (options.dry_run) {
      outcome.status = ReleaseOutcome::Status::dry_run;
      log.info(r.name + ": dry run passed");
      continue;
    }
    outcome.status = ReleaseOutcome::Status::upgraded;
    try {
      outcome.revision = json::parse(got.out).at("version").get<std::int64_t>();
    } catch (const json::exception&) {
      log.warning(r.name + ": helm printed no release JSON; the new revision is not known");
    }
    log.info(r.name + ": upgraded" + (outcome.revision > 0 ? " to revision " + std::to_string(outcome.revision) : ""));
    if (state) {
      state->record(DoneRelease{r.name, r.namespace_name, r.chart_name, r.chart_version, outcome.revision, now_utc()});
    }
    finished.push_back(r.name);
    if (!c.pods.empty()) {
      outcome.commands.push_back(shell_quote(c.pods));
      report_pod_images(c, options, r, outcome, log);
    }
  }
  return result;
}

} // namespace ferry

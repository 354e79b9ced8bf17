// Secrets end to end: a signing key with a passphrase, registry passwords given on
// standard input, in a file and in the environment, a site secret, basic auth and bearer
// tokens. Every byte the runs left behind (output, --output json, bundles decompressed,
// lock files, receipts, the state and cache directories, temporary directories) is
// searched for each secret; files holding secrets must be private, and secret files
// others may read are refused with the chmod that fixes them.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"
#include "common/standin_calls.hpp"
#include "common/token_server.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::Platforms;
using ferry::test::RegistryServer;
using nlohmann::json;
using Strings = std::vector<std::string>;

namespace {

const Strings k_tools = {"docker-registry", "umoci", "skopeo", "openssl", "htpasswd", "helm", "base64"};
constexpr int k_usage = 2;
constexpr int k_registry_failure = 4;

// Distinct values, so that a hit says which secret leaked.
const std::string k_source_user = "puller";
const std::string k_source_password = "src-Pw-5d81c2e7f0";
const std::string k_target_user = "pusher";
const std::string k_target_password = "tgt-Pw-a94e03b6d2";
const std::string k_token_user = "tokener";
const std::string k_token_password = "tok-Pw-1fb7e82c45";
const std::string k_passphrase = "key-Phrase-73c0d9e1aa";
const std::string k_licence = "LICENCE-SECRET-6e2f9b04";

fs::path data_dir() {
  const char* data = std::getenv("FERRY_TEST_DATA");
  REQUIRE_MESSAGE(data, "FERRY_TEST_DATA is not set (run the tests with `meson test`)");
  return fs::path(data);
}

// Writes a file with the given mode (the mode is set after writing: write_file follows the umask).
fs::path write_private(const fs::path& file, const std::string& text, unsigned mode = 0600) {
  write_file(file, text);
  REQUIRE(::chmod(file.c_str(), mode) == 0);
  return file;
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE_MESSAGE(::stat(path.c_str(), &st) == 0, "cannot stat " << path.string());
  return st.st_mode & 07777;
}

bool base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// The first JSON Web Token in `text` (three base64url parts joined by dots, the header
// starting `eyJ`, the base64 of `{"`), or an empty string. A scan, not std::regex: the
// text is megabytes of bundle bytes.
std::string find_jwt(const std::string& text) {
  for (std::size_t at = text.find("eyJ"); at != std::string::npos; at = text.find("eyJ", at + 1)) {
    std::size_t i = at;
    int parts = 0;
    for (; parts < 3; ++parts) {
      const std::size_t start = i;
      while (i < text.size() && base64url_char(text[i])) ++i;
      if (i - start < 8) break;
      if (parts < 2) {
        if (i >= text.size() || text[i] != '.') break;
        ++i;
      }
    }
    if (parts == 3) return text.substr(at, i - at);
  }
  return {};
}

// Something the runs produced, searched for secrets.
struct Haystack {
  std::string name;
  std::string text;
};

void add_run(std::vector<Haystack>& hay, const std::string& name, const RunResult& r) {
  hay.push_back({name + ": stdout", r.out});
  hay.push_back({name + ": stderr", r.err});
}

// Every regular file below `root` (except below the directories in `skip`); a bundle is
// added both as it is and decompressed, entry by entry.
void add_files(std::vector<Haystack>& hay, const fs::path& root, const std::vector<fs::path>& skip) {
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    if (std::find(skip.begin(), skip.end(), it->path()) != skip.end()) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() || it->is_symlink()) continue;
    const fs::path& file = it->path();
    hay.push_back({file.string(), read_file(file)});
    const std::string name = file.filename().string();
    if (name.size() > 8 && name.compare(name.size() - 8, 8, ".tar.zst") == 0) {
      for (const TarItem& item : read_tar(file)) hay.push_back({file.string() + " (entry " + item.path + ")", item.data});
    }
  }
}

// Every place a secret (or a bearer token) appears, one line each.
std::vector<std::string> leaks(const std::vector<Haystack>& hay, const Strings& secrets) {
  std::vector<std::string> found;
  for (const Haystack& h : hay) {
    for (const std::string& secret : secrets) {
      if (h.text.find(secret) != std::string::npos) found.push_back("'" + secret + "' in " + h.name);
    }
    if (const std::string jwt = find_jwt(h.text); !jwt.empty()) {
      found.push_back("a bearer token (" + jwt.substr(0, 24) + "…) in " + h.name);
    }
  }
  return found;
}

// The chart: its image from the source registry, the site's licence rendered into the
// manifests (so that the check stage sees it in helm's output).
void write_chart(const fs::path& dir, const std::string& host) {
  write_file(dir / "Chart.yaml", "apiVersion: v2\nname: vault-demo\nversion: 1.0.0\n");
  write_file(dir / "values.yaml", "image:\n  repository: " + host + "/team/app1\n  tag: \"1.0\"\nlicense: \"\"\n");
  write_file(dir / "templates/deployment.yaml",
             "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
             "  selector:\n    matchLabels: {app: {{ .Release.Name }}}\n  template:\n"
             "    metadata:\n      labels: {app: {{ .Release.Name }}}\n"
             "    spec:\n      containers:\n        - name: app\n"
             "          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n"
             "          env:\n            - {name: LICENCE, value: {{ .Values.license | quote }}}\n");
}

} // namespace

TEST_SUITE("secrets") {

TEST_CASE("pack, push, unpack and inventory with passwords, a passphrase and a site secret leave none of them behind") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  const fs::path secrets = dir / "secrets"; // the operator's secret files: not searched
  const fs::path cluster = dir / "cluster"; // the helm/kubectl stand-ins' log: checked apart
  fs::create_directories(secrets);
  fs::create_directories(cluster);
  fs::create_directories(dir / "tmp");
  fs::create_directories(dir / "keys");
  fs::create_directories(dir / "out");
  const fs::path passphrase_file = write_private(secrets / "passphrase", k_passphrase + "\n");
  const fs::path source_password_file = write_private(secrets / "source-password", k_source_password + "\n");
  const fs::path target_password_file = write_private(secrets / "target-password", k_target_password + "\n");
  const fs::path licence_file = write_private(secrets / "licence", k_licence);
  std::vector<Haystack> hay;

  // Every run gets the same private home, state, cache and temporary directories.
  const auto env = [&](std::map<std::string, std::string> extra, const std::string& cache = "cache") {
    extra["HOME"] = (dir / "home").string();
    extra["XDG_STATE_HOME"] = (dir / "xdg/state").string();
    extra["XDG_CACHE_HOME"] = (dir / "xdg" / cache).string();
    extra["DOCKER_CONFIG"] = (dir / "home/docker").string(); // no credentials file: only what is given
    extra["TMPDIR"] = (dir / "tmp").string();
    return extra;
  };

  // keygen: the private key encrypted with the passphrase, owner-only.
  const RunResult keygen = run_ferry({"keygen", "--out", (dir / "keys/signing").string(), "--passphrase-file",
                                      passphrase_file.string(), "--output", "json"},
                                     {.cwd = {}, .env = env({}), .input = {}});
  INFO(keygen.err);
  REQUIRE(keygen.exit_code == 0);
  add_run(hay, "keygen", keygen);
  CHECK(json::parse(keygen.out)["encrypted"] == true);
  const fs::path key = dir / "keys/signing.key";
  const fs::path pub = dir / "keys/signing.pub";
  CHECK(mode_of(key) == 0600);
  CHECK(contains(read_file(key), "BEGIN ENCRYPTED PRIVATE KEY"));

  // The source: basic auth.
  RegistryServer source({.htpasswd = true, .username = k_source_user, .password = k_source_password});
  const std::string layout = "oci:" + f.layout.string();
  ferry::test::push_with_skopeo(source, layout + ":app1", "team/app1:1.0", Platforms::host);
  ferry::test::push_with_skopeo(source, layout + ":app2", "team/app2:1.0", Platforms::host);
  write_chart(dir / "charts/vault-demo", source.host());
  const fs::path manifest = dir / "secrets.yaml";
  write_file(manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: secrets, version: \"1\"}\n"
                       "images:\n  - " + source.host() + "/team/app1:1.0\n  - " + source.host() + "/team/app2:1.0\n"
                       "charts:\n  - {name: vault-demo, path: ./charts/vault-demo, version: 1.0.0,\n"
                       "     images: [\"" + source.host() + "/team/app1:1.0\"]}\n"
                       "releases:\n  - name: demo\n    namespace: demo\n    chart: vault-demo\n"
                       "    set: {license: \"\"}\n    imagePullSecrets: [pull-secret]\n");
  const auto pack = [&](const std::string& name, Strings extra, RunOptions options) {
    Strings args = {"pack", "-f", manifest.string(), "-o", (dir / "out" / (name + ".tar.zst")).string(), "--key",
                    key.string(), "--plain-http", "--output", "json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = run_ferry(args, options);
    add_run(hay, "pack " + name, r);
    return r;
  };

  // Without credentials the source refuses: the packs below really use theirs.
  const RunResult anonymous = pack("anonymous", {"--passphrase-file", passphrase_file.string()}, {.cwd = {}, .env = env({}), .input = {}});
  CHECK(anonymous.exit_code == k_registry_failure);

  // The three ways in for the password, the two for the passphrase; a cache each, so
  // that every pack fetches from the registry.
  const RunResult by_stdin =
      pack("by-stdin", {"--username", k_source_user, "--password-stdin", "--passphrase-file", passphrase_file.string()},
           {.cwd = {}, .env = env({}, "cache-1"), .input = k_source_password + "\n"});
  const RunResult by_file =
      pack("by-file", {"--username", k_source_user, "--password-file", source_password_file.string()},
           {.cwd = {}, .env = env({{"FERRY_KEY_PASSPHRASE", k_passphrase}}, "cache-2"), .input = {}});
  const RunResult by_env = pack("by-env", {"--username", k_source_user, "--passphrase-file", passphrase_file.string()},
                                {.cwd = {}, .env = env({{"FERRY_PASSWORD", k_source_password}}, "cache-3"), .input = {}});
  for (const RunResult* r : {&by_stdin, &by_file, &by_env}) {
    INFO(r->err);
    REQUIRE(r->exit_code == 0);
    CHECK(json::parse(r->out)["signature"]["status"] == "verified");
  }
  // Ed25519 is deterministic: the same inputs, whichever way the secrets came, give the same bytes.
  CHECK(read_file(dir / "out/by-stdin.tar.zst") == read_file(dir / "out/by-env.tar.zst"));

  // push into a TLS registry with basic auth, the password on standard input.
  RegistryServer target({.tls = true, .htpasswd = true, .username = k_target_user, .password = k_target_password});
  const Strings target_flags = {"--registry", target.host() + "/mirror", "--pubkey", pub.string(), "--ca-file",
                                target.ca_file().string(), "--username", k_target_user};
  Strings push_args = {"push", (dir / "out/by-stdin.tar.zst").string(), "--password-stdin", "--output", "json"};
  push_args.insert(push_args.end(), target_flags.begin(), target_flags.end());
  const RunResult pushed = run_ferry(push_args, {.cwd = {}, .env = env({}), .input = k_target_password + "\n"});
  add_run(hay, "push", pushed);
  INFO(pushed.err);
  REQUIRE(pushed.exit_code == 0);
  CHECK(json::parse(pushed.out)["blobs"]["uploaded"].get<int>() > 0);

  // unpack into the same registry, the password in a file, the licence from a file, the
  // pull secret created from the credentials; helm template is the real helm, the rest
  // of helm and kubectl are the recording stand-ins.
  const std::string real_helm = must({"sh", "-c", "command -v helm"});
  write_file(cluster / "bin/helm", "#!/bin/sh\n"
                                   "if [ \"$1\" = template ]; then exec '" + real_helm.substr(0, real_helm.find('\n')) +
                                   "' \"$@\"; fi\n"
                                   "exec '" + (data_dir() / "standin/helm").string() + "' \"$@\"\n");
  fs::permissions(cluster / "bin/helm", fs::perms::owner_all);
  write_file(cluster / "upgraded.json", json{{"name", "demo"}, {"version", 1}, {"info", {{"status", "deployed"}}}}.dump());
  write_file(cluster / "pods.json", R"({"items":[]})");
  write_file(cluster / "rules.tsv", "helm upgrade --install demo \t0\tupgraded.json\t-\n"
                                    "kubectl get secret pull-secret \t1\t-\tError from server (NotFound): secrets "
                                    "\"pull-secret\" not found\n"
                                    "kubectl get pods \t0\tpods.json\t-\n");
  Strings unpack_args = {"unpack", (dir / "out/by-file.tar.zst").string(), "--password-file",
                         target_password_file.string(), "--set-file", "demo:license=" + licence_file.string(),
                         "--create-pull-secrets", "--helm", (cluster / "bin/helm").string(), "--kubectl",
                         (data_dir() / "standin/kubectl").string(), "--kubeconfig", "/site/kubeconfig", "--output",
                         "json"};
  unpack_args.insert(unpack_args.end(), target_flags.begin(), target_flags.end());
  const RunResult unpacked =
      run_ferry(unpack_args, {.cwd = {},
                              .env = env({{"FERRY_STANDIN_RULES", (cluster / "rules.tsv").string()},
                                          {"FERRY_STANDIN_LOG", (cluster / "calls.jsonl").string()}}),
                              .input = {}});
  add_run(hay, "unpack", unpacked);
  INFO(unpacked.err);
  REQUIRE(unpacked.exit_code == 0);
  CHECK(json::parse(unpacked.out).is_object());

  // The stand-ins: no secret in any argument; the pull secret arrived on standard input.
  const auto calls = ferry::test::read_standin_calls(cluster / "calls.jsonl");
  REQUIRE_FALSE(calls.empty());
  for (const auto& call : calls) {
    CAPTURE(call.line);
    for (const std::string& secret : {k_target_password, k_licence, base64(k_target_user + ":" + k_target_password)}) {
      CHECK_FALSE(contains(call.line, secret));
    }
  }
  const auto created = ferry::test::calls_starting(calls, "kubectl create -f -");
  REQUIRE(created.size() == 1);
  const std::string config =
      must({"sh", "-c", "printf %s \"$1\" | base64 -d", "sh",
            json::parse(created[0].stdin_text)["data"][".dockerconfigjson"].get<std::string>()});
  CHECK(json::parse(config)["auths"][target.host()]["password"] == k_target_password);
  REQUIRE(ferry::test::calls_starting(calls, "helm upgrade --install demo").size() == 1);

  // Bearer tokens: push and a signed inventory against a token-auth registry, the
  // password and the passphrase from the environment.
  RegistryServer tokens({.username = k_token_user, .password = k_token_password, .token_auth = true});
  const RunResult token_push = run_ferry(
      {"push", (dir / "out/by-env.tar.zst").string(), "--registry", tokens.host(), "--pubkey", pub.string(),
       "--plain-http", "--username", k_token_user, "--output", "json"},
      {.cwd = {}, .env = env({{"FERRY_PASSWORD", k_token_password}}), .input = {}});
  add_run(hay, "push (bearer)", token_push);
  INFO(token_push.err);
  REQUIRE(token_push.exit_code == 0);
  const RunResult inventory = run_ferry(
      {"inventory", "--registry", tokens.host(), "--bundle", (dir / "out/by-env.tar.zst").string(), "--plain-http",
       "--username", k_token_user, "-o", (dir / "out/receipt.json").string(), "--key", key.string(), "--output", "json"},
      {.cwd = {}, .env = env({{"FERRY_PASSWORD", k_token_password}, {"FERRY_KEY_PASSPHRASE", k_passphrase}}), .input = {}});
  add_run(hay, "inventory (bearer)", inventory);
  INFO(inventory.err);
  REQUIRE(inventory.exit_code == 0);
  CHECK(fs::exists(dir / "out/receipt.json.sig"));
  std::size_t issued = 0;
  for (const auto& request : tokens.token_server().requests()) issued += request.status == 200 ? 1 : 0;
  CHECK(issued > 0); // bearer tokens were really in play

  // Private where ferry wrote secrets or state: the state directory (created by ferry,
  // parents included) 0700, every file in it 0600.
  CHECK(mode_of(dir / "xdg/state") == 0700);
  CHECK(mode_of(dir / "xdg/state/ferry") == 0700);
  std::size_t state_files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "xdg/state/ferry")) {
    CAPTURE(entry.path());
    CHECK(mode_of(entry.path()) == (entry.is_directory() ? 0700u : 0600u));
    ++state_files;
  }
  CHECK(state_files >= 3); // journals of the two pushes and the unpack, the upgrade state

  // Nothing of it anywhere: outputs, bundles (decompressed), lock files, receipt, state,
  // caches, temporary directories.
  add_files(hay, dir.path(), {secrets, cluster});
  const Strings searched = {k_source_password,
                            k_target_password,
                            k_token_password,
                            k_passphrase,
                            k_licence,
                            base64(k_source_user + ":" + k_source_password),
                            base64(k_target_user + ":" + k_target_password),
                            base64(k_token_user + ":" + k_token_password)};
  const std::vector<std::string> found = leaks(hay, searched);
  std::string report;
  for (const auto& line : found) report += line + "\n";
  INFO(report);
  CHECK(found.empty());
  // The search really covered what the runs wrote.
  for (const char* part : {"(entry ferry.json)", ".journal", "upgrade-", "receipt.json", "xdg/cache-1/", ".lock.json",
                           "unpack: stdout", "inventory (bearer): stderr"}) {
    CAPTURE(part);
    CHECK(std::any_of(hay.begin(), hay.end(), [&](const Haystack& h) { return contains(h.name, part); }));
  }
  CHECK(fs::is_empty(dir / "tmp"));
}

TEST_CASE("secret files that group or others may access are refused with the chmod that fixes them") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  const std::string secret = "never-shown-0c9d4b";
  const auto refused = [&](const RunResult& r, const fs::path& file, const std::string& mode) {
    INFO(r.err);
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, file.string() + " is accessible by group or others (mode " + mode + ")"));
    CHECK(contains(r.err, "chmod 600 " + file.string()));
    CHECK_FALSE(contains(r.out + r.err, secret));
  };

  SUBCASE("the signing key") {
    const fs::path key = write_private(dir / "open.key", read_file(f.key), 0640);
    const RunResult r = run_ferry({"pack", "-f", f.manifest.string(), "-o", (dir / "x.tar.zst").string(), "--key",
                                   key.string()});
    refused(r, key, "0640");
    CHECK_FALSE(fs::exists(dir / "x.tar.zst"));
  }
  SUBCASE("the passphrase file") {
    const fs::path file = write_private(dir / "passphrase", secret + "\n", 0644);
    const RunResult r = run_ferry({"keygen", "--out", (dir / "new").string(), "--passphrase-file", file.string()});
    refused(r, file, "0644");
    CHECK_FALSE(fs::exists(dir / "new.key"));
  }
  SUBCASE("the password file") {
    const fs::path file = write_private(dir / "password", secret + "\n", 0604);
    const RunResult r = run_ferry({"doctor", "--registry", "127.0.0.1:9", "--plain-http", "--username", "u",
                                   "--password-file", file.string()});
    refused(r, file, "0604");
  }
  SUBCASE("the TLS client key") {
    const fs::path cert = write_private(dir / "client.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
    const fs::path key = write_private(dir / "client.key", "-----BEGIN PRIVATE KEY-----\n" + secret + "\n", 0660);
    const RunResult r = run_ferry({"doctor", "--registry", "127.0.0.1:9", "--cert-file", cert.string(), "--key-file",
                                   key.string()});
    refused(r, key, "0660");
  }
  SUBCASE("a docker credentials file with a password, used once it is private") {
    RegistryServer source({.htpasswd = true, .username = "reader", .password = secret});
    ferry::test::push_with_skopeo(source, "oci:" + f.layout.string() + ":app1", "team/app1:1.0", Platforms::host);
    write_file(dir / "from-registry.yaml", "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: c, version: \"1\"}\n"
                                           "images:\n  - " + source.host() + "/team/app1:1.0\n");
    const fs::path config = write_private(
        dir / "docker/config.json",
        json{{"auths", {{source.host(), {{"auth", base64("reader:" + secret)}}}}}}.dump(), 0644);
    const auto pack = [&] {
      return run_ferry({"pack", "-f", (dir / "from-registry.yaml").string(), "-o", (dir / "c.tar.zst").string(),
                        "--key", f.key.string(), "--plain-http"},
                       {.cwd = {}, .env = {{"DOCKER_CONFIG", (dir / "docker").string()}}, .input = {}});
    };
    const RunResult open = pack();
    refused(open, config, "0644");
    CHECK_FALSE(contains(open.err, base64("reader:" + secret)));
    REQUIRE(::chmod(config.c_str(), 0600) == 0);
    const RunResult closed = pack();
    INFO(closed.err);
    CHECK(closed.exit_code == 0);
  }
}

TEST_CASE("a password is never taken from the command line") {
  TestDir dir;
  // There is no --password or --passphrase option; trying one is refused with the ways
  // that work, and the value is not repeated (CLI11 would quote it as unexpected).
  for (const Strings& tried : {Strings{"--password", "on-the-command-line"}, Strings{"--password=on-the-command-line"}}) {
    Strings args = {"doctor", "--registry", "127.0.0.1:9", "--plain-http", "--username", "u"};
    args.insert(args.end(), tried.begin(), tried.end());
    const RunResult r = run_ferry(args);
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "use --password-stdin, --password-file FILE or $FERRY_PASSWORD"));
    CHECK_FALSE(contains(r.out + r.err, "on-the-command-line"));
  }
  const RunResult phrase = run_ferry({"keygen", "--out", (dir / "k").string(), "--passphrase", "on-the-command-line"});
  CHECK(phrase.exit_code == k_usage);
  CHECK(contains(phrase.err, "use --passphrase-file FILE or $FERRY_KEY_PASSPHRASE"));
  CHECK_FALSE(contains(phrase.out + phrase.err, "on-the-command-line"));
  CHECK_FALSE(fs::exists(dir / "k.key"));
  // --username alone takes $FERRY_PASSWORD, else it says where a password may come from.
  const RunResult none = run_ferry({"doctor", "--registry", "127.0.0.1:9", "--plain-http", "--username", "u"});
  CHECK(none.exit_code == k_usage);
  CHECK(contains(none.err, "--password-stdin, --password-file FILE or $FERRY_PASSWORD"));
  const RunResult both = run_ferry({"doctor", "--registry", "127.0.0.1:9", "--plain-http", "--username", "u",
                                    "--password-stdin", "--password-file", (dir / "p").string()},
                                   {.cwd = {}, .env = {}, .input = "x\n"});
  CHECK(both.exit_code == k_usage);
  CHECK(contains(both.err, "--password-stdin and --password-file exclude each other"));
}

}

// Integration-test harness implementation.
// SPDX-License-Identifier: Apache-2.0
#include "support/harness.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <regex>
#include <sstream>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ferry::itest {

namespace fs = std::filesystem;

RunResult run(const std::vector<std::string>& argv, const RunOptions& options) {
  Background process(argv, options);
  return process.wait();
}

RunResult run_ferry(const std::vector<std::string>& args, const RunOptions& options) {
  const char* bin = std::getenv("FERRY_BIN");
  if (!bin) throw std::runtime_error("FERRY_BIN is not set (run the tests with `meson test`)");
  std::vector<std::string> argv{bin};
  argv.insert(argv.end(), args.begin(), args.end());
  // Keep push journals and pack's content cache out of the real home directory: one
  // state and one cache directory for this test program (removed when it ends) unless
  // the test chose its own.
  struct ProgramDirs {
    fs::path root = fs::temp_directory_path() / ("ferry-itest-" + std::to_string(::getpid()));
    ~ProgramDirs() {
      std::error_code ignored;
      fs::remove_all(root, ignored);
    }
  };
  static const ProgramDirs dirs;
  RunOptions with_dirs = options;
  if (!with_dirs.env.count("XDG_STATE_HOME")) with_dirs.env["XDG_STATE_HOME"] = (dirs.root / "state").string();
  if (!with_dirs.env.count("XDG_CACHE_HOME")) with_dirs.env["XDG_CACHE_HOME"] = (dirs.root / "cache").string();
  return run(argv, with_dirs);
}

std::string must(const std::vector<std::string>& argv, const RunOptions& options) {
  const RunResult r = run(argv, options);
  std::string command;
  for (const auto& a : argv) command += a + " ";
  INFO("command: ", command);
  INFO("stdout: ", r.out);
  INFO("stderr: ", r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

namespace {

// The environment of this process with `extra` added (or replaced).
std::vector<std::string> environment_with(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    const std::string entry(*e);
    if (!extra.count(entry.substr(0, entry.find('=')))) out.push_back(entry);
  }
  for (const auto& [key, value] : extra) out.push_back(key + "=" + value);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Reads both pipes until each reports end of file, then closes them.
void drain(int out_fd, int err_fd, std::string& out, std::string& err) {
  ferry::test::drain_pipes(out_fd, err_fd, out, err);
  ::close(out_fd);
  ::close(err_fd);
}

} // namespace

Background::Background(const std::vector<std::string>& argv, const RunOptions& options) {
  int out_pipe[2];
  int err_pipe[2];
  int in_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::runtime_error("pipe failed");
  }
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    throw std::runtime_error("pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears FD_CLOEXEC on the copies, so only 0, 1 and 2 reach the child.
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());
  std::vector<std::string> env = environment_with(options.env);
  std::vector<char*> envp = c_strings(env);
  std::vector<std::string> args = argv;
  std::vector<char*> c_args = c_strings(args);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, c_args[0], &actions, nullptr, c_args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    for (int fd : {in_pipe[1], out_pipe[0], err_pipe[0]}) ::close(fd);
    m_result = RunResult{127, "", "cannot start " + argv[0] + ": " + std::strerror(rc)};
    return;
  }
  m_pid = pid;
  ::signal(SIGPIPE, SIG_IGN);
  // Small inputs only: they fit in the pipe buffer, so this never blocks.
  if (!options.input.empty()) (void)!::write(in_pipe[1], options.input.data(), options.input.size());
  ::close(in_pipe[1]);
  m_reader = std::thread([this, out = out_pipe[0], err = err_pipe[0]] { drain(out, err, m_result.out, m_result.err); });
}

Background::~Background() {
  if (m_pid < 0) return;
  kill_now();
  (void)wait();
}

bool Background::running() const {
  if (m_pid < 0) return false;
  siginfo_t info{};
  // WNOWAIT leaves an exited child a zombie, so its pid cannot be reused before wait().
  while (::waitid(P_PID, static_cast<id_t>(m_pid), &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
    if (errno != EINTR) return false;
  }
  return info.si_pid == 0;
}

void Background::kill_now() { signal(SIGKILL); }

void Background::signal(int number) {
  if (m_pid > 0) ::kill(m_pid, number);
}

RunResult Background::wait() {
  if (m_pid < 0) return m_result;
  int status = 0;
  rusage usage{};
  while (::wait4(m_pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  m_pid = -1;
  m_result.peak_rss_kib = usage.ru_maxrss;
  if (m_reader.joinable()) m_reader.join();
  m_result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return m_result;
}

std::map<std::string, std::string> isolated_env(const TestDir& dir) {
  for (const char* sub : {"home", "state", "cache", "docker"}) std::filesystem::create_directories(dir / sub);
  return {{"HOME", (dir / "home").string()},          {"XDG_STATE_HOME", (dir / "state").string()},
          {"XDG_CACHE_HOME", (dir / "cache").string()}, {"DOCKER_CONFIG", (dir / "docker").string()},
          {"NO_PROXY", "127.0.0.1,localhost"},          {"no_proxy", "127.0.0.1,localhost"}};
}

std::string base64(const std::string& text) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < text.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(text[i]) << 16) | (static_cast<unsigned char>(text[i + 1]) << 8) |
                       static_cast<unsigned char>(text[i + 2]);
    for (const int shift : {18, 12, 6, 0}) out += alphabet[(n >> shift) & 63];
  }
  if (const std::size_t rest = text.size() - i; rest > 0) {
    unsigned n = static_cast<unsigned char>(text[i]) << 16;
    if (rest == 2) n |= static_cast<unsigned char>(text[i + 1]) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}


void require_tools(const std::vector<std::string>& tools) {
  std::vector<std::string> missing;
  for (const auto& tool : tools) {
    if (!ferry::test::have_tool(tool)) missing.push_back(tool);
  }
  if (missing.empty()) return;
  std::string list;
  for (const auto& m : missing) list += " " + m;
  const char* required = std::getenv("FERRY_REQUIRE_INTEGRATION");
  if (required && std::string(required) == "1") {
    std::cerr << "FAIL: integration test needs these tools, and FERRY_REQUIRE_INTEGRATION=1:" << list << "\n";
    std::exit(1);
  }
  std::cerr << "SKIP: integration test needs these tools, not found on PATH:" << list
            << " (install them, see README; CI sets FERRY_REQUIRE_INTEGRATION=1)\n";
  std::exit(77);
}

std::vector<TarItem> read_tar(const fs::path& file) {
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  REQUIRE(archive_read_open_filename(a, file.c_str(), 1 << 16) == ARCHIVE_OK);
  std::vector<TarItem> items;
  archive_entry* entry = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
    TarItem item;
    item.path = archive_entry_pathname(entry);
    const auto size = archive_entry_size(entry);
    item.data.resize(static_cast<std::size_t>(size));
    if (size > 0) REQUIRE(archive_read_data(a, item.data.data(), item.data.size()) == size);
    items.push_back(std::move(item));
  }
  REQUIRE(rc == ARCHIVE_EOF);
  archive_read_free(a);
  return items;
}

void write_tar(const fs::path& file, const std::vector<TarItem>& items) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_zstd(a);
  REQUIRE(archive_write_open_filename(a, file.c_str()) == ARCHIVE_OK);
  for (const auto& item : items) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, item.path.c_str());
    archive_entry_set_perm(e, 0644);
    switch (item.type) {
    case TarItem::Type::file:
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, static_cast<la_int64_t>(item.data.size()));
      break;
    case TarItem::Type::symlink:
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, item.link.c_str());
      break;
    case TarItem::Type::hardlink:
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, item.link.c_str());
      break;
    case TarItem::Type::char_device:
      archive_entry_set_filetype(e, AE_IFCHR);
      archive_entry_set_rdev(e, ::makedev(1, 3));
      break;
    case TarItem::Type::directory:
      archive_entry_set_filetype(e, AE_IFDIR);
      break;
    }
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    if (item.type == TarItem::Type::file && !item.data.empty()) {
      REQUIRE(archive_write_data(a, item.data.data(), item.data.size()) == static_cast<la_ssize_t>(item.data.size()));
    }
    archive_entry_free(e);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

namespace {

std::string sha256_hex_of_file(const fs::path& file) {
  const std::string out = must({"sha256sum", file.string()});
  return out.substr(0, 64);
}

// Adds an index (linux/amd64 + linux/arm64) made from two umoci images to the layout
// under ref "multi". Written by hand here: the test must not use ferry's own writer.
void add_multi_arch_index(const fs::path& layout) {
  using nlohmann::json;
  json index = json::parse(read_file(layout / "index.json"));
  json children = json::array();
  json kept = json::array();
  for (const auto& m : index["manifests"]) {
    const std::string name = m["annotations"]["org.opencontainers.image.ref.name"];
    if (name == "amd" || name == "arm") {
      json child = m;
      child.erase("annotations");
      child["platform"] = {{"os", "linux"}, {"architecture", name == "amd" ? "amd64" : "arm64"}};
      children.push_back(child);
    } else {
      kept.push_back(m);
    }
  }
  REQUIRE(children.size() == 2);
  const std::string blob = json{{"schemaVersion", 2},
                                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                                {"manifests", children}}
                               .dump();
  const fs::path tmp = layout / "multi-index.json";
  write_file(tmp, blob);
  const std::string hex = sha256_hex_of_file(tmp);
  fs::rename(tmp, layout / "blobs/sha256" / hex);
  kept.push_back({{"mediaType", "application/vnd.oci.image.index.v1+json"},
                  {"digest", "sha256:" + hex},
                  {"size", blob.size()},
                  {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}});
  index["manifests"] = kept;
  write_file(layout / "index.json", index.dump());
}

} // namespace

Fixtures make_fixtures(const fs::path& dir) {
  Fixtures f;
  f.layout = dir / "layout";
  const std::string L = f.layout.string();
  // Incompressible, so the shared layer is large in the bundle too.
  std::string base(200000, '\0');
  std::uint64_t state = 0x9e3779b97f4a7c15u;
  for (auto& c : base) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    c = static_cast<char>(state >> 56);
  }
  write_file(dir / "content/base.txt", base);
  write_file(dir / "content/one.txt", "one\n");
  write_file(dir / "content/two.txt", "two\n");
  must({"umoci", "init", "--layout", L});
  must({"umoci", "new", "--image", L + ":app1"});
  must({"umoci", "insert", "--image", L + ":app1", (dir / "content/base.txt").string(), "/base.txt"});
  must({"umoci", "insert", "--image", L + ":app1", (dir / "content/one.txt").string(), "/one.txt"});
  must({"umoci", "new", "--image", L + ":app2"});
  must({"umoci", "insert", "--image", L + ":app2", (dir / "content/base.txt").string(), "/base.txt"});
  must({"umoci", "insert", "--image", L + ":app2", (dir / "content/two.txt").string(), "/two.txt"});
  for (const char* arch : {"amd", "arm"}) {
    must({"umoci", "new", "--image", L + ":" + arch});
    must({"umoci", "config", "--image", L + ":" + arch, "--architecture", std::string(arch) == "amd" ? "amd64" : "arm64",
          "--os", "linux"});
    must({"umoci", "insert", "--image", L + ":" + arch, (dir / "content/base.txt").string(), "/base.txt"});
  }
  add_multi_arch_index(f.layout);

  f.archive = dir / "app1-docker.tar";
  must({"skopeo", "copy", "--quiet", "oci:" + L + ":app1", "docker-archive:" + f.archive.string() + ":example/app1:1.0"});

  f.chart = dir / "charts/demo";
  write_file(f.chart / "Chart.yaml", "apiVersion: v2\nname: demo\nversion: 0.3.1\nappVersion: \"1.0\"\n"
                                     "description: A demo chart\n");
  write_file(f.chart / "values.yaml", "image:\n  repository: example/app1\n  tag: \"1.0\"\n");
  write_file(f.chart / "templates/deployment.yaml",
             "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
             "  selector:\n    matchLabels: {app: {{ .Release.Name }}}\n  template:\n"
             "    metadata:\n      labels: {app: {{ .Release.Name }}}\n"
             "    spec:\n      containers:\n        - name: app\n          image: \"{{ .Values.image.repository }}:{{ "
             ".Values.image.tag }}\"\n");

  f.file = dir / "bin/install.sh";
  write_file(f.file, "#!/bin/sh\necho install\n");

  const RunResult keygen = run_ferry({"keygen", "--out", (dir / "release").string()});
  REQUIRE_MESSAGE(keygen.exit_code == 0, keygen.err);
  f.key = dir / "release.key";
  f.pub = dir / "release.pub";

  f.manifest = dir / "bundle.yaml";
  write_file(f.manifest, "apiVersion: ferry/v1\n"
                         "kind: Bundle\n"
                         "metadata: {name: demo, version: \"1.2.3\"}\n"
                         "images:\n"
                         "  - ref: oci:./layout:app1\n"
                         "    name: example.com/team/app1:1.0\n"
                         "  - ref: oci:./layout:app2\n"
                         "    name: example.com/team/app2:1.0\n"
                         "  - ref: oci:./layout:multi\n"
                         "    name: example.com/team/multi:2.0\n"
                         "  - docker-archive:./app1-docker.tar\n"
                         "charts:\n"
                         "  - name: demo\n"
                         "    path: ./charts/demo\n"
                         "    version: 0.3.1\n"
                         "    images: [example.com/team/app1:1.0]\n"
                         "files:\n"
                         "  - {path: tools/install.sh, source: ./bin/install.sh, mode: \"0755\"}\n"
                         "releases:\n"
                         "  - name: demo\n"
                         "    namespace: demo\n"
                         "    chart: demo\n");
  return f;
}

std::vector<std::string> image_lines(const std::string& manifests) {
  static const std::regex k_image_line(R"(^\s*(?:-\s+)?image:\s*(\S+)\s*$)");
  std::vector<std::string> out;
  std::istringstream in(manifests);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, k_image_line)) continue;
    std::string value = m[1];
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'')) value = value.substr(1, value.size() - 2);
    out.push_back(value);
  }
  return out;
}

} // namespace ferry::itest

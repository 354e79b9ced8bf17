// The command line's own surface: shell completion scripts loaded into real bash and zsh,
// the manual page rendered by man and groff, and `ferry version --output json` compared
// with what the binary really is.
// SPDX-License-Identifier: Apache-2.0
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <elf.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace ferry::itest;
using nlohmann::json;

namespace {

fs::path ferry_bin() {
  const char* bin = std::getenv("FERRY_BIN");
  REQUIRE_MESSAGE(bin, "FERRY_BIN is not set (run the tests with `meson test`)");
  return fs::path(bin);
}

std::string ferry_out(const std::vector<std::string>& args) {
  const RunResult r = run_ferry(args);
  INFO("ferry " << args.front() << ": " << r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

// What bash's completion function offers for the words typed so far (the last one is
// being completed), with the script `ferry completion bash` printed, run in `cwd`.
std::set<std::string> bash_complete(const fs::path& script, const std::vector<std::string>& words,
                                    const fs::path& cwd = {}) {
  std::string array;
  for (const auto& w : words) array += " '" + w + "'";
  const std::string program = "set -u; source '" + script.string() + "'; COMP_WORDS=(" + array +
                              "); COMP_CWORD=" + std::to_string(words.size() - 1) +
                              "; _ferry; printf '%s\\n' \"${COMPREPLY[@]}\"";
  const RunResult r = run({"bash", "--norc", "--noprofile", "-c", program}, {.cwd = cwd, .env = {}, .input = {}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::set<std::string> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

// The subcommands `ferry --help` lists.
std::vector<std::string> listed_commands() {
  const std::string help = ferry_out({"--help"});
  std::vector<std::string> out;
  const auto at = help.find("Subcommands:");
  REQUIRE(at != std::string::npos);
  std::istringstream in(help.substr(at));
  std::string line;
  std::getline(in, line);
  static const std::regex k_command(R"(^  ([a-z]+)\s)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, k_command)) out.push_back(m[1]);
  }
  return out;
}

// The long options a --help text lists (its option lines: "  -f,--file TEXT ...").
std::set<std::string> long_options(const std::string& help) {
  static const std::regex k_option_line(R"(^  (?:-[A-Za-z],)?(--[a-z][a-z0-9-]*))");
  std::set<std::string> out;
  std::istringstream in(help);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, k_option_line)) out.insert(m[1]);
  }
  return out;
}

} // namespace

TEST_CASE("the bash completion script loads in bash and completes commands, options, choices and files") {
  require_tools({"bash"});
  TestDir dir;
  const fs::path script = dir / "ferry.bash";
  write_file(script, ferry_out({"completion", "bash"}));

  const std::vector<std::string> commands = listed_commands();
  REQUIRE(commands.size() >= 16);
  // Every command is offered on an empty word, and only commands.
  const auto all = bash_complete(script, {"ferry", ""});
  CHECK(all == std::set<std::string>(commands.begin(), commands.end()));
  CHECK(bash_complete(script, {"ferry", "pa"}) == std::set<std::string>{"pack"});
  CHECK(bash_complete(script, {"ferry", "ver"}) == std::set<std::string>{"verify", "version"});

  // Each command's long options are exactly those its --help lists, plus the global ones
  // (which may follow the command).
  const std::set<std::string> global = long_options(ferry_out({"--help"}));
  REQUIRE(global.count("--output") == 1);
  for (const std::string& command : commands) {
    CAPTURE(command);
    std::set<std::string> expected = long_options(ferry_out({command, "--help"}));
    expected.insert(global.begin(), global.end());
    CHECK(bash_complete(script, {"ferry", command, "--"}) == expected);
  }
  CHECK(bash_complete(script, {"ferry", "push", "bundle.tar.zst", "--pub"}) == std::set<std::string>{"--pubkey"});
  // Options with fixed values complete the values; the global ones before the command too.
  CHECK(bash_complete(script, {"ferry", "--output", ""}) == std::set<std::string>{"text", "json", "ndjson"});
  CHECK(bash_complete(script, {"ferry", "keygen", "--type", ""}) == std::set<std::string>{"ed25519", "ecdsa-p256"});
  CHECK(bash_complete(script, {"ferry", "values", "b.tar.zst", "--mirror-config", "c"}) ==
        std::set<std::string>{"containerd", "cri-o"});
  // Other values and operands are file names.
  write_file(dir / "demo-1.0.tar.zst", "x");
  write_file(dir / "demo.pub", "x");
  CHECK(bash_complete(script, {"ferry", "verify", "demo-"}, dir.path()) == std::set<std::string>{"demo-1.0.tar.zst"});
  CHECK(bash_complete(script, {"ferry", "verify", "b.tar.zst", "--pubkey", "demo."}, dir.path()) ==
        std::set<std::string>{"demo.pub"});
}

TEST_CASE("the zsh completion script loads in zsh and defines _ferry for compdef") {
  require_tools({"zsh"});
  TestDir dir;
  const fs::path script = dir / "_ferry";
  write_file(script, ferry_out({"completion", "zsh"}));
  // Syntax first, then a real compinit with the script loaded both ways zsh users do.
  const RunResult syntax = run({"zsh", "-n", script.string()});
  INFO(syntax.err);
  CHECK(syntax.exit_code == 0);
  const RunResult loaded = run(
      {"zsh", "-f", "-c",
       "autoload -Uz compinit && compinit -u -d '" + (dir / "zcompdump").string() + "' && source '" + script.string() +
           "' && (( $+functions[_ferry] )) && [[ $_comps[ferry] == _ferry ]] && print loaded"});
  INFO(loaded.err);
  CHECK(loaded.exit_code == 0);
  CHECK(loaded.out == "loaded\n");
  CHECK(loaded.err.empty());
  // As an autoloaded function from $fpath, which is how a package installs it.
  const RunResult autoloaded =
      run({"zsh", "-f", "-c",
           "fpath=('" + dir.path().string() + "' $fpath); autoload -Uz compinit && compinit -u -d '" +
               (dir / "zcompdump2").string() + "' && [[ $_comps[ferry] == _ferry ]] && print found"});
  INFO(autoloaded.err);
  CHECK(autoloaded.out == "found\n");
}

TEST_CASE("the manual page renders without roff warnings and documents every command and option") {
  require_tools({"man", "groff"});
  TestDir dir;
  const fs::path page = dir / "ferry.1";
  write_file(page, ferry_out({"man"}));
  const RunResult lint = run({"groff", "-man", "-Tutf8", "-ww", "-z", page.string()});
  CHECK(lint.exit_code == 0);
  CHECK_MESSAGE(lint.err.empty(), lint.err);
  const RunResult shown =
      run({"man", "-l", page.string()},
          {.cwd = {}, .env = {{"MANPAGER", "cat"}, {"MANWIDTH", "200"}, {"GROFF_NO_SGR", "1"}}, .input = {}});
  INFO(shown.err);
  REQUIRE(shown.exit_code == 0);
  // man formats with overstrikes when writing to a pipe on some setups; remove them.
  const std::string text = std::regex_replace(shown.out, std::regex(".\b"), "");
  CHECK(text.find("FERRY(1)") != std::string::npos);
  CHECK(text.find("EXIT STATUS") != std::string::npos);
  for (const std::string& command : listed_commands()) {
    CAPTURE(command);
    CHECK(text.find("ferry " + command) != std::string::npos);
    for (const std::string& option : long_options(ferry_out({command, "--help"}))) {
      CAPTURE(option);
      CHECK(text.find(option) != std::string::npos);
    }
  }
}

TEST_CASE("ferry version --output json tells how the binary was built, and the binary agrees") {
  const json v = json::parse(ferry_out({"version", "--output", "json"}));
  CHECK(v["version"] == ferry_out({"--version"}).substr(6, ferry_out({"--version"}).size() - 7));
  CHECK(v["bundleFormat"].get<int>() >= 1);
  const json& build = v.at("build");
  for (const char* library : {"libcurl", "openssl", "libarchive", "zstd", "fmt", "nlohmann_json", "CLI11"}) {
    CAPTURE(library);
    CHECK_FALSE(build.at("libraries").at(library).get<std::string>().empty());
  }
  CHECK(build["libraries"]["openssl"].get<std::string>().rfind("OpenSSL 3.", 0) == 0);
  CHECK(build["libraries"]["libcurl"].get<std::string>().find("OpenSSL/3.") != std::string::npos);
  // "static" is what the file is: a fully static program asks for no program interpreter.
  std::ifstream in(ferry_bin(), std::ios::binary);
  Elf64_Ehdr header{};
  in.read(reinterpret_cast<char*>(&header), sizeof header);
  bool interpreter = false;
  for (unsigned i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr program{};
    in.seekg(static_cast<std::streamoff>(header.e_phoff + i * header.e_phentsize));
    in.read(reinterpret_cast<char*>(&program), sizeof program);
    if (program.p_type == PT_INTERP) interpreter = true;
  }
  REQUIRE(in);
  CHECK(build["static"].get<bool>() == !interpreter);
  // The text form names the same facts.
  const std::string text = ferry_out({"version"});
  CHECK(text.find(build["static"].get<bool>() ? "static" : "dynamic") != std::string::npos);
  CHECK(text.find(build["libraries"]["openssl"].get<std::string>()) != std::string::npos);
}

namespace {

// A bundle of the standard fixtures, packed and signed; large enough (a few MiB) for
// several progress steps.
struct Packed {
  Fixtures f;
  fs::path bundle;
};

Packed packed_fixtures(const TestDir& dir) {
  Packed p{make_fixtures(dir.path()), dir / "demo-1.2.3.tar.zst"};
  const RunResult r =
      run_ferry({"pack", "-f", p.f.manifest.string(), "-o", p.bundle.string(), "--key", p.f.key.string()},
                {.cwd = dir.path(), .env = isolated_env(dir), .input = {}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return p;
}

} // namespace

TEST_CASE("--output ndjson streams log lines, progress that never goes backwards, stages and the result") {
  require_tools({"umoci", "skopeo", "helm"});
  TestDir dir;
  const Packed p = packed_fixtures(dir);
  const RunResult r = run_ferry({"verify", p.bundle.string(), "--pubkey", p.f.pub.string(), "--output", "ndjson"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::vector<json> events;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    CAPTURE(line);
    const json event = json::parse(line, nullptr, false);
    REQUIRE_FALSE(event.is_discarded());
    REQUIRE(event.contains("event"));
    events.push_back(event);
  }
  REQUIRE(events.size() >= 3);
  std::uint64_t last_done = 0;
  int progress = 0;
  int stages = 0;
  for (const json& e : events) {
    if (e["event"] == "progress") {
      ++progress;
      CHECK(e["stage"] == "verify");
      CHECK(e["doneBytes"].get<std::uint64_t>() >= last_done);
      CHECK(e["doneBytes"].get<std::uint64_t>() <= e["totalBytes"].get<std::uint64_t>());
      last_done = e["doneBytes"].get<std::uint64_t>();
    } else if (e["event"] == "stage") {
      ++stages;
      CHECK(e["stage"] == "verify");
      CHECK(e["bytes"].get<std::uint64_t>() == last_done);
      CHECK(e["seconds"].get<double>() >= 0.0);
    } else {
      CHECK((e["event"] == "log" || e["event"] == "result"));
    }
  }
  CHECK(progress >= 1);
  CHECK(stages == 1);
  // The last progress step reached the total, and the result comes last: what
  // `--output json` prints, as one event.
  CHECK(last_done > 0);
  CHECK(events.back()["event"] == "result");
  const RunResult plain = run_ferry({"verify", p.bundle.string(), "--pubkey", p.f.pub.string(), "--output", "json"});
  REQUIRE(plain.exit_code == 0);
  CHECK(events.back()["result"] == json::parse(plain.out));
  CHECK(r.err.empty());

  // A path that is not UTF-8 (Linux allows any bytes but '/' and NUL) still gives valid
  // JSON, in both forms: the byte becomes U+FFFD.
  const fs::path odd = dir / "odd-\xff-name.tar.zst";
  fs::copy_file(p.bundle, odd);
  for (const char* format : {"json", "ndjson"}) {
    CAPTURE(format);
    const RunResult o = run_ferry({"verify", odd.string(), "--pubkey", p.f.pub.string(), "--output", format});
    INFO(o.err);
    REQUIRE(o.exit_code == 0);
    std::istringstream lines(o.out);
    int parsed = 0;
    for (std::string line; std::getline(lines, line);) {
      CAPTURE(line);
      CHECK_FALSE(json::parse(line, nullptr, false).is_discarded());
      ++parsed;
    }
    CHECK(parsed >= 1);
    CHECK(o.out.find("odd-\xef\xbf\xbd-name") != std::string::npos);
  }
}

TEST_CASE("on a terminal the progress bar shows rate and ETA and never goes backwards; a pipe gets plain lines") {
  require_tools({"umoci", "skopeo", "helm", "script"});
  TestDir dir;
  const Packed p = packed_fixtures(dir);
  // script(1) gives ferry a terminal; everything ferry writes there comes back on stdout.
  const std::string command = "'" + ferry_bin().string() + "' verify '" + p.bundle.string() + "' --pubkey '" +
                              p.f.pub.string() + "'";
  const RunResult tty =
      run({"script", "-qec", command, "/dev/null"}, {.cwd = {}, .env = {{"NO_COLOR", "1"}}, .input = {}});
  INFO(tty.out);
  REQUIRE(tty.exit_code == 0);
  // "verify   [#####.....]  1.2 MiB / 2.4 MiB   50.0%   350.0 MiB/s  ETA 4s"
  static const std::regex k_frame(
      R"(verify\s+\[([#.]+)\]\s+(\S+ \S+) / (\S+ \S+)\s+([0-9.]+)%\s+\S+ \S+/s\s+(ETA \S+|done \S+))");
  double last_percent = -1;
  int frames = 0;
  for (auto it = std::sregex_iterator(tty.out.begin(), tty.out.end(), k_frame); it != std::sregex_iterator(); ++it) {
    const double percent = std::stod((*it)[4]);
    CHECK(percent >= last_percent);
    last_percent = percent;
    ++frames;
  }
  CHECK(frames >= 1);
  CHECK(last_percent == doctest::Approx(100.0));
  CHECK(tty.out.find("\r\033[K") != std::string::npos);
  CHECK(tty.out.find("ferry: verify: ") != std::string::npos);
  // Not a terminal: no bar, no escape sequences, the stage summary as a plain line.
  const RunResult piped = run_ferry({"verify", p.bundle.string(), "--pubkey", p.f.pub.string()});
  REQUIRE(piped.exit_code == 0);
  CHECK(piped.err.find('\033') == std::string::npos);
  CHECK(piped.err.find('\r') == std::string::npos);
  CHECK(piped.err.find("ferry: verify: ") != std::string::npos);
}

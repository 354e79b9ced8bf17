// Integration-test harness: runs the real ferry binary and standard tools, builds
// fixtures with real tools (umoci, skopeo), and crafts altered bundles.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "common/test_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace ferry::itest {

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  long peak_rss_kib = 0; // the process's peak resident set (wait4's ru_maxrss), in KiB
};

struct RunOptions {
  std::filesystem::path cwd;                // empty: inherit
  std::map<std::string, std::string> env;   // added to the environment
  std::string input;                        // standard input
};

// Runs argv[0] (looked up in PATH) with the arguments; captures stdout and stderr.
RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

// Runs the ferry binary under test ($FERRY_BIN).
RunResult run_ferry(const std::vector<std::string>& args, const RunOptions& options = {});

// Standard base64 of `text` (RFC 4648, padded): how Basic credentials look on the wire
// and in docker's config.json, for tests that look for leaked passwords.
std::string base64(const std::string& text);

// Environment for a ferry run that shares nothing with the user or other tests: HOME,
// XDG_STATE_HOME, XDG_CACHE_HOME and DOCKER_CONFIG in directories under `dir` (created),
// and no proxy for 127.0.0.1 and localhost.
std::map<std::string, std::string> isolated_env(const ferry::test::TestDir& dir);

// Like run(), but a non-zero exit fails the test with the command and its output.
std::string must(const std::vector<std::string>& argv, const RunOptions& options = {});

// A process started in the background, to be killed part-way (SIGKILL) or waited for.
// Started like run() (argv[0] looked up in PATH, options.env added, options.input on
// standard input); a thread collects stdout and stderr while it runs. Never copied or
// moved; the destructor kills a process still running and reaps it.
class Background {
public:
  explicit Background(const std::vector<std::string>& argv, const RunOptions& options = {});
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background();

  // Whether the process has not exited yet (it is not reaped, so kill_now() stays safe).
  bool running() const;
  // Sends SIGKILL; does nothing once wait() has returned.
  void kill_now();
  // Sends signal `number` (SIGTERM, SIGINT, …); does nothing once wait() has returned.
  void signal(int number);
  // Waits for the end and returns what it printed; exit_code is 128 + signal when killed,
  // 127 when it could not start. Call it once.
  RunResult wait();

private:
  int m_pid = -1;       // -1: never started or already reaped
  std::thread m_reader; // fills m_result.out / .err until both pipes close
  RunResult m_result;
};

// The `image:` fields of rendered manifests (`helm template` output), read line by line
// with a regular expression: an independent reading, not ferry's YAML parser. Quotes
// around a value are taken off.
std::vector<std::string> image_lines(const std::string& manifests);

// Every tool must be on PATH. Otherwise the whole test program stops with exit 77
// (meson's SKIP) after printing which tool is missing, unless FERRY_REQUIRE_INTEGRATION=1
// (CI), where a missing tool fails.
void require_tools(const std::vector<std::string>& tools);

// TestDir (kept on failure), write_file, read_file and contains are the common ones.
using ferry::test::contains;
using ferry::test::read_file;
using ferry::test::TestDir;
using ferry::test::write_file;

// One entry of a tar stream, for crafting altered bundles.
struct TarItem {
  enum class Type { file, symlink, hardlink, char_device, directory };
  std::string path;
  std::string data;
  Type type = Type::file;
  std::string link;
};

// Reads every entry of a (zstd) tar; fails the test if that is impossible.
std::vector<TarItem> read_tar(const std::filesystem::path& file);
// Writes entries as a pax tar compressed with zstd (one frame), like an attacker would.
void write_tar(const std::filesystem::path& file, const std::vector<TarItem>& items);

// Fixtures built with real tools, shared by the scenarios.
struct Fixtures {
  std::filesystem::path layout;   // OCI layout: refs app1, app2 (sharing a layer), multi (index amd64+arm64)
  std::filesystem::path archive;  // docker-archive written by skopeo: example/app1:1.0
  std::filesystem::path chart;    // chart directory "demo" 0.3.1
  std::filesystem::path file;     // a small script for files:
  std::filesystem::path key;      // ed25519 signing key (keygen --out DIR/release)
  std::filesystem::path pub;
  std::filesystem::path manifest; // bundle manifest using all of the above
};

// Builds the fixtures under `dir` (umoci, skopeo, ferry keygen).
Fixtures make_fixtures(const std::filesystem::path& dir);

} // namespace ferry::itest

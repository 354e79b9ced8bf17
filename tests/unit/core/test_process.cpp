// Tests for core/process: argv without a shell, streams, exit codes, timeouts.
// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"
#include "core/process.hpp"
#include "support/test_support.hpp"

#include <chrono>
#include <cstdlib>
#include <functional>
#include <vector>

namespace fs = std::filesystem;
using ferry::core::ProcessOptions;
using ferry::core::run_process;
using namespace std::chrono_literals;

namespace {

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

} // namespace

TEST_SUITE("core") {

TEST_CASE("run_process passes argv verbatim, without a shell") {
  // Shell syntax in an argument stays text: nothing expands, nothing runs.
  const auto r = run_process({"printf", "%s|", "$HOME", "a b", "; echo injected", "*"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "$HOME|a b|; echo injected|*|");
  CHECK(r.err.empty());
}

TEST_CASE("run_process reports exit codes and signals, and keeps both streams apart") {
  const auto failed = run_process({"sh", "-c", "echo out; echo err >&2; exit 7"});
  CHECK(failed.exit_code == 7);
  CHECK(failed.out == "out\n");
  CHECK(failed.err == "err\n");
  const auto killed = run_process({"sh", "-c", "kill -9 $$"});
  CHECK(killed.exit_code == 128 + 9);
}

TEST_CASE("run_process writes the input, even when it is larger than a pipe holds") {
  std::string input(1 << 20, 'x');
  input += "end";
  ProcessOptions options;
  options.input = input;
  const auto r = run_process({"wc", "-c"}, options);
  CHECK(r.exit_code == 0);
  CHECK(std::stoul(r.out) == input.size());
  // A program that never reads its input does not hang ferry or kill it with SIGPIPE.
  const auto ignored = run_process({"true"}, options);
  CHECK(ignored.exit_code == 0);
}

TEST_CASE("run_process sets and removes environment variables and changes directory") {
  ferry::test::TestDir dir;
  ::setenv("FERRY_TEST_DROPPED", "yes", 1);
  ProcessOptions options;
  options.env_set = {{"FERRY_TEST_SET", "value with spaces"}};
  options.env_unset = {"FERRY_TEST_DROPPED"};
  options.cwd = dir.path();
  const auto r = run_process({"sh", "-c", "echo \"$FERRY_TEST_SET|${FERRY_TEST_DROPPED-unset}|$(pwd -P)\""}, options);
  CHECK(r.out == "value with spaces|unset|" + fs::canonical(dir.path()).string() + "\n");
}

TEST_CASE("run_process streams standard error line by line and bounds what it keeps") {
  std::vector<std::string> lines;
  ProcessOptions options;
  options.on_stderr_line = [&](std::string_view line) { lines.emplace_back(line); };
  options.output_limit = 10;
  const auto r = run_process({"sh", "-c", "printf 'one\\ntwo\\nthree' >&2; printf '0123456789abcdef'"}, options);
  CHECK(lines == std::vector<std::string>{"one", "two", "three"});
  CHECK(r.out == "0123456789");
  CHECK(r.out_truncated);
  CHECK(r.err == "one\ntwo\nth"); // the first 10 bytes
  CHECK(r.err_truncated);
}

TEST_CASE("run_process stops a program at its timeout") {
  ProcessOptions options;
  options.timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  const auto r = run_process({"sleep", "30"}, options);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.timed_out);
  CHECK(r.exit_code == 128 + 15);
  CHECK(took < 5s);
  // A program that ignores SIGTERM is killed 5 s later.
  const auto stubborn = run_process({"sh", "-c", "trap '' TERM; sleep 30"}, options);
  CHECK(stubborn.timed_out);
  CHECK(stubborn.exit_code != 0);
}

TEST_CASE("run_process names a program it cannot start") {
  const std::string missing = message_of([] { run_process({"ferry-no-such-program-here"}); });
  CHECK(missing.find("ferry-no-such-program-here") != std::string::npos);
  CHECK(missing.find("not found in $PATH") != std::string::npos);
  CHECK_FALSE(ferry::core::find_program("ferry-no-such-program-here"));
  CHECK(ferry::core::find_program("sh"));
}

} // TEST_SUITE

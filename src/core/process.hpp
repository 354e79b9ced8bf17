// Running another program (helm, kubectl, docker-credential-*): argv only, never a shell.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::core {

struct ProcessOptions {
  std::string input;                           // written to the program's standard input, then closed
  std::map<std::string, std::string> env_set;  // added to (or replacing in) ferry's environment
  std::vector<std::string> env_unset;          // removed from it
  std::filesystem::path cwd;                   // empty: ferry's
  std::size_t output_limit = 16u << 20;        // per stream; the rest is read and dropped
  // Called with each complete line of standard error (without the newline) as it
  // arrives, e.g. to show helm's progress; the lines are collected as well.
  std::function<void(std::string_view)> on_stderr_line;
  // After this long the program gets SIGTERM, 5 s later SIGKILL; nullopt: no limit.
  std::optional<std::chrono::milliseconds> timeout;
};

struct ProcessResult {
  int exit_code = 0;      // the exit status, or 128 + signal number when killed by one
  bool timed_out = false; // killed because ProcessOptions::timeout passed
  std::string out;
  std::string err;
  bool out_truncated = false;
  bool err_truncated = false;
};

// `name` looked up in $PATH as execvp would (a name with '/' is taken as a path); only
// executable regular files count. nullopt when there is none.
std::optional<std::filesystem::path> find_program(const std::string& name);
// The same with `path` (a $PATH value) instead of the environment's.
std::optional<std::filesystem::path> find_program(const std::string& name, const std::string& path);

// Runs argv[0] (a path, or a name looked up with find_program) with `argv`, its output
// collected. Error (exit 1) naming the program when it cannot be started (not found, not
// executable); a program that runs and fails is a result with its exit code, not an
// error. Standard input is closed when `input` is empty; SIGPIPE from a program that
// exits without reading its input is not raised here. The input arrives through a
// socket: the program can read its standard input, but not open /dev/stdin by name
// (`kubectl create -f -` works, `--from-file=/dev/stdin` does not).
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

} // namespace ferry::core

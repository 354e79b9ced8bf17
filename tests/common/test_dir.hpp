// Helpers shared by the unit and the integration tests: per-test directories, whole-file
// reads and writes, and shell commands for checking results with independent tools.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace ferry::test {

// True once an assertion of the running test case has failed or it has thrown; reset
// when the next case starts. Kept by the listener in common/doctest_main.cpp.
bool current_test_failed() noexcept;

// A fresh directory under $TMPDIR (or /tmp) for one test case: removed when the test
// passed, kept and its path printed when it failed, so the failure can be examined.
class TestDir {
public:
  TestDir();
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;
  ~TestDir();
  const std::filesystem::path& path() const noexcept { return m_path; }
  std::filesystem::path operator/(std::string_view name) const { return m_path / name; }

private:
  std::filesystem::path m_path;
};

// Writes `bytes` to `path` (replacing it), creating parent directories; throws
// std::runtime_error when it cannot.
void write_file(const std::filesystem::path& path, std::string_view bytes);
// The whole content of `path`; throws std::runtime_error when it cannot be read.
std::string read_file(const std::filesystem::path& path);

// `size` bytes no compressor shrinks (xorshift64*), the same for the same seed: layers
// that keep their size in a bundle.
std::string noise(std::size_t size, std::uint64_t seed);

// Whether `part` occurs in `text` (for checking messages).
bool contains(std::string_view text, std::string_view part);

// Whether `name` is a command found on PATH (`command -v`).
bool have_tool(const std::string& name);

// What a shell command printed and its wait status (0 when it exited with 0).
struct ShellResult {
  int status = -1;
  std::string output;
};

// Where a shell command's standard error goes.
enum class Stderr { merge, discard };

// Runs `command` with /bin/sh and collects its standard output, and its standard error
// too with Stderr::merge (for failure messages); with Stderr::discard only stdout, for
// output that is parsed. Fails the test (REQUIRE) when the shell cannot be started.
ShellResult run_shell(const std::string& command, Stderr err = Stderr::merge);

// `path` as one single-quoted shell word (embedded quotes escaped).
std::string shell_quote(const std::filesystem::path& path);

// Reads a child's stdout and stderr pipes until both reach end of file, without
// deadlocking on either; appends to `out` and `err`. Closes neither descriptor.
void drain_pipes(int out_fd, int err_fd, std::string& out, std::string& err);

} // namespace ferry::test

// Helpers shared by the unit and the integration tests.
// SPDX-License-Identifier: Apache-2.0
#include "common/test_dir.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <poll.h>
#include <unistd.h>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace ferry::test {

namespace fs = std::filesystem;

TestDir::TestDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = (fs::path(tmp && *tmp ? tmp : "/tmp") / "ferry-test-XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  m_path = buffer.data();
}

TestDir::~TestDir() {
  if (current_test_failed() || std::uncaught_exceptions() > 0) {
    std::cerr << "test directory kept: " << m_path << "\n";
    return;
  }
  std::error_code ignored;
  fs::remove_all(m_path, ignored);
}

void write_file(const fs::path& path, std::string_view bytes) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string noise(std::size_t size, std::uint64_t seed) {
  std::string out(size, '\0');
  std::uint64_t state = seed * 0x9e3779b97f4a7c15u + 1;
  for (std::size_t i = 0; i < size; i += 8) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    std::uint64_t word = state * 0x2545f4914f6cdd1du;
    for (std::size_t j = i; j < i + 8 && j < size; ++j, word >>= 8) out[j] = static_cast<char>(word & 0xffu);
  }
  return out;
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

bool have_tool(const std::string& name) {
  return std::system(("command -v " + shell_quote(name) + " >/dev/null 2>&1").c_str()) == 0;
}

ShellResult run_shell(const std::string& command, Stderr err) {
  // The braces make the redirection apply to the whole command, `a && b` included.
  const std::string line = "{ " + command + "\n} " + (err == Stderr::merge ? "2>&1" : "2>/dev/null");
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(line.c_str(), "r"), ::pclose);
  REQUIRE_MESSAGE(pipe, "cannot start /bin/sh for: " << command);
  ShellResult result;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe.get())) result.output.append(buffer, n);
  result.status = ::pclose(pipe.release());
  return result;
}

std::string shell_quote(const fs::path& path) {
  std::string out = "'";
  for (const char c : path.string()) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

void drain_pipes(int out_fd, int err_fd, std::string& out, std::string& err) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_count = 2;
  char buffer[65536];
  while (open_count > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1; // stop polling it; the caller closes it
        --open_count;
      } else {
        (i == 0 ? out : err).append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
}

} // namespace ferry::test

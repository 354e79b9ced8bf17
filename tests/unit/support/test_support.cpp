// Helpers shared by the unit tests.
// SPDX-License-Identifier: Apache-2.0
#include "support/test_support.hpp"

#include "core/fs.hpp"

#include <atomic>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace ferry::test {

extern std::atomic<bool> g_current_test_failed;

namespace fs = std::filesystem;

TestDir::TestDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = (fs::path(tmp && *tmp ? tmp : "/tmp") / "ferry-unit-XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data())) throw std::runtime_error("mkdtemp failed");
  m_path = buffer.data();
}

TestDir::~TestDir() {
  if (g_current_test_failed || std::uncaught_exceptions() > 0) {
    std::cerr << "test directory kept: " << m_path << "\n";
    return;
  }
  std::error_code ignored;
  fs::remove_all(m_path, ignored);
}

fs::path data_path(std::string_view name) {
  const char* dir = std::getenv("FERRY_TEST_DATA");
  if (!dir) throw std::runtime_error("FERRY_TEST_DATA is not set (run the tests with `meson test`)");
  return fs::path(dir) / name;
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

std::string random_bytes(std::size_t size, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; i += 8) {
    const auto v = rng();
    for (std::size_t k = 0; k < 8 && i + k < size; ++k) out[i + k] = static_cast<char>((v >> (8 * k)) & 0xff);
  }
  return out;
}

} // namespace ferry::test

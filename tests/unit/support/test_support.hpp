// Helpers shared by the unit tests: per-test directories, fixtures, printers.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/digest.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace ferry::test {

// A fresh directory for one test case: removed when the test passed, kept and its path
// printed when it failed, so the failure can be examined.
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

// tests/data/<name> (FERRY_TEST_DATA is set by meson).
std::filesystem::path data_path(std::string_view name);

// Writes `bytes` to `path`, creating parent directories.
void write_file(const std::filesystem::path& path, std::string_view bytes);
std::string read_file(const std::filesystem::path& path);

// Deterministic pseudo-random bytes (incompressible), for blobs and layers.
std::string random_bytes(std::size_t size, unsigned seed);

} // namespace ferry::test

namespace doctest {
template <>
struct StringMaker<ferry::core::Digest> {
  static String convert(const ferry::core::Digest& d) { return d.str().c_str(); }
};
} // namespace doctest

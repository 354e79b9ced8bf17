// Helpers for the unit tests only: fixture paths, generated blobs, printers for our types.
// TestDir, write_file, read_file and the shell helpers come from common/test_dir.hpp.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "common/test_dir.hpp"
#include "core/digest.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace ferry::test {

// tests/data/<name> (FERRY_TEST_DATA is set by meson).
std::filesystem::path data_path(std::string_view name);

// Deterministic pseudo-random bytes (incompressible), for blobs and layers.
std::string random_bytes(std::size_t size, unsigned seed);

} // namespace ferry::test

namespace doctest {
template <>
struct StringMaker<ferry::core::Digest> {
  static String convert(const ferry::core::Digest& d) { return d.str().c_str(); }
};
} // namespace doctest

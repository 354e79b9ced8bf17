// Helpers for the unit tests only.
// SPDX-License-Identifier: Apache-2.0
#include "support/test_support.hpp"

#include <cstdlib>
#include <random>
#include <stdexcept>

namespace ferry::test {

namespace fs = std::filesystem;

fs::path data_path(std::string_view name) {
  const char* dir = std::getenv("FERRY_TEST_DATA");
  if (!dir) throw std::runtime_error("FERRY_TEST_DATA is not set (run the tests with `meson test`)");
  return fs::path(dir) / name;
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

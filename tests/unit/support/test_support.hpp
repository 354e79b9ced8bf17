// Helpers for the unit tests only: fixture paths, generated blobs, printers for our types.
// TestDir, write_file, read_file and the shell helpers come from common/test_dir.hpp.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "common/test_dir.hpp"
#include "core/digest.hpp"
#include "core/log.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::test {

// tests/data/<name> (FERRY_TEST_DATA is set by meson).
std::filesystem::path data_path(std::string_view name);

// Keeps every log line (thread-safe), for checking what was and was not logged.
class CaptureLog final : public core::LogSink {
public:
  void log(core::LogLevel, std::string_view message) override {
    std::lock_guard lock(m_mutex);
    m_text.append(message).append("\n");
  }
  std::string text() const {
    std::lock_guard lock(m_mutex);
    return m_text;
  }

private:
  mutable std::mutex m_mutex;
  std::string m_text;
};

// Deterministic pseudo-random bytes (incompressible), for blobs and layers.
std::string random_bytes(std::size_t size, unsigned seed);

// Sets an environment variable for the life of the object, then puts back what was there
// (the helm/kubectl stand-ins read theirs from the environment).
class ScopedEnv {
public:
  ScopedEnv(const char* name, const std::string& value) : m_name(name) {
    if (const char* old = std::getenv(name)) m_old = old;
    ::setenv(name, value.c_str(), 1);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (m_old) {
      ::setenv(m_name, m_old->c_str(), 1);
    } else {
      ::unsetenv(m_name);
    }
  }

private:
  const char* m_name;
  std::optional<std::string> m_old;
};

} // namespace ferry::test

namespace doctest {
template <>
struct StringMaker<ferry::core::Digest> {
  static String convert(const ferry::core::Digest& d) { return d.str().c_str(); }
};
} // namespace doctest

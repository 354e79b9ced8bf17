// Wiping secret buffers and reading secret files.
// SPDX-License-Identifier: Apache-2.0
#include "core/secret.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"

#include <openssl/crypto.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ferry::core {

namespace {

constexpr std::size_t k_line_limit = 64 * 1024;

// The refusal of a secret file others may access; `mode` is st_mode.
void refuse_if_shared(const std::filesystem::path& path, std::string_view what, unsigned mode) {
  const std::string shown = display(path);
  if (S_ISDIR(mode)) throw UsageError(shown + " is a directory, expected a " + std::string(what) + " file");
  // Any bit for group or others counts, not only read: a file others may write can be
  // replaced with a key or password of their choosing.
  if ((mode & 077) != 0) {
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", mode & 07777);
    throw UsageError(std::string(what) + " " + shown + " is accessible by group or others (mode " + octal + ")",
                     "chmod 600 " + shown);
  }
}

} // namespace

void wipe(std::string& text) noexcept {
  // resize() within the capacity never reallocates, and makes the whole buffer part of
  // the string, so all of it may be written.
  text.resize(text.capacity());
  OPENSSL_cleanse(text.data(), text.size());
  text.clear();
}

void wipe(std::optional<std::string>& text) noexcept {
  if (text) wipe(*text);
}

WipeOnExit::~WipeOnExit() {
  if (m_text != nullptr) wipe(*m_text);
  if (m_optional != nullptr) wipe(*m_optional);
}

void require_private_file(const std::filesystem::path& path, std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    throw UsageError("cannot open " + std::string(what) + " " + display(path) + ": " + errno_text(err));
  }
  refuse_if_shared(path, what, st.st_mode);
}

void create_private_directories(const std::filesystem::path& dir, std::error_code& ec) {
  ec.clear();
  if (dir.empty()) return;
  std::filesystem::path path;
  for (const auto& part : dir) {
    path /= part;
    if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) continue;
    ec.assign(errno, std::generic_category());
    return;
  }
  if (!std::filesystem::is_directory(dir, ec) && !ec) ec = std::make_error_code(std::errc::not_a_directory);
}

std::string read_secret_file(const std::filesystem::path& path, std::string_view what, std::size_t limit) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    const int err = errno;
    throw UsageError("cannot open " + std::string(what) + " " + display(path) + ": " + errno_text(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    const int err = errno;
    throw UsageError("cannot read " + std::string(what) + " " + display(path) + ": " + errno_text(err));
  }
  refuse_if_shared(path, what, st.st_mode);
  // Read straight into the result, sized once: a growing string would leave copies of
  // the secret in the buffers it gave back. One byte more than the limit tells "too large".
  std::string text(limit + 1, '\0');
  std::size_t used = 0;
  while (used < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      wipe(text);
      throw UsageError("cannot read " + std::string(what) + " " + display(path) + ": " + errno_text(err));
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  if (used > limit) {
    wipe(text);
    throw UsageError(std::string(what) + " " + display(path) + " is larger than " + std::to_string(limit) + " bytes",
                     "give the file that holds only the secret");
  }
  text.resize(used); // shrinking keeps the buffer; the bytes past the end are zeros
  return text;
}

std::string first_secret_line(std::string& text) {
  std::string line(text.size(), '\0');
  const std::size_t end = text.find_first_of("\r\n");
  line.assign(text, 0, end); // within the capacity reserved above: no reallocation
  wipe(text);
  return line;
}

std::optional<std::string> take_secret_env(const char* name) {
  char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  const std::size_t length = std::strlen(value);
  std::optional<std::string> text;
  if (length > 0) text.emplace(value, length);
  OPENSSL_cleanse(value, length);
  ::unsetenv(name);
  return text;
}

std::string read_secret_line(int fd, std::string_view what) {
  std::string line(k_line_limit + 1, '\0');
  std::size_t used = 0;
  for (;;) {
    char c = 0;
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      wipe(line);
      throw UsageError("cannot read " + std::string(what) + ": " + errno_text(err));
    }
    if (n == 0 || c == '\n') break;
    if (used == k_line_limit) {
      wipe(line);
      throw UsageError(std::string(what) + " is longer than " + std::to_string(k_line_limit) + " bytes");
    }
    line[used++] = c;
  }
  if (used > 0 && line[used - 1] == '\r') --used;
  line.resize(used);
  return line;
}

} // namespace ferry::core

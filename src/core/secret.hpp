// Secrets in memory and in files: wiping the buffers that held passwords and passphrases,
// and reading secret files that nobody but their owner may access.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace ferry::core {

// Overwrites every byte `text` owns with zeros (OPENSSL_cleanse, which the compiler may
// not drop), its whole capacity included (a shorter value may sit in a buffer that once
// held a longer one), then empties it. Copies made elsewhere are not reached.
void wipe(std::string& text) noexcept;
void wipe(std::optional<std::string>& text) noexcept;

// Wipes the string it was given when it goes out of scope, on return and on exception
// alike: for a password or passphrase held in a local variable or an options struct
// until the call that needs it is over. The string must outlive the guard.
class WipeOnExit {
public:
  explicit WipeOnExit(std::string& text) noexcept : m_text(&text) {}
  explicit WipeOnExit(std::optional<std::string>& text) noexcept : m_optional(&text) {}
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;
  ~WipeOnExit();

private:
  std::string* m_text = nullptr;
  std::optional<std::string>* m_optional = nullptr;
};

// Refuses a file that holds a secret (`what`: "private key", "password file") when its
// group or others have any access to it: a UsageError (exit 2) "WHAT FILE is accessible
// by group or others (mode 0644)" with the hint "chmod 600 FILE". A missing or unreadable
// file, or a directory, is a UsageError naming it too. Symbolic links are followed: the
// mode of the file read is what counts.
void require_private_file(const std::filesystem::path& path, std::string_view what);

// Creates `dir` and its missing parents with mode 0700 (for the state directory: push
// journals, upgrade state, staged pieces). Directories that exist already keep their
// mode: one the operator named may be shared on purpose. Like
// std::filesystem::create_directories, `ec` tells why it failed.
void create_private_directories(const std::filesystem::path& dir, std::error_code& ec);

// The whole content of secret file `path`, at most `limit` bytes (more is a UsageError),
// refused like require_private_file (checked on the open descriptor, so the file checked
// is the file read). Nothing but the returned string keeps a copy: the read buffer is
// wiped, and the string never reallocates while it fills.
std::string read_secret_file(const std::filesystem::path& path, std::string_view what, std::size_t limit = 64 * 1024);

// The first line of `text` (up to the first CR or LF): what a password or passphrase file
// and standard input hold. `text` is wiped.
std::string first_secret_line(std::string& text);

// The value of environment variable `name` (FERRY_PASSWORD, FERRY_KEY_PASSPHRASE), or
// nullopt when it is unset or empty. The variable is then overwritten in place and
// removed, so that the programs ferry runs (helm, kubectl, credential helpers) do not
// inherit it and /proc/PID/environ no longer shows it. Call it before any thread starts
// (getenv and unsetenv are not thread-safe); a second call finds nothing.
std::optional<std::string> take_secret_env(const char* name);

// One line read from descriptor `fd` (standard input for --password-stdin), byte by byte
// so that nothing after the line is consumed and no stdio buffer keeps a copy; the line
// ending (LF, CRLF) is dropped. At most 64 KiB. UsageError naming `what` when the line
// is longer or the descriptor cannot be read.
std::string read_secret_line(int fd, std::string_view what);

} // namespace ferry::core

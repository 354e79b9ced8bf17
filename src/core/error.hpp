// Errors carry an exit code (DESIGN §5), a hint with the next step, and context frames.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::core {

// Process exit status for each failure class (DESIGN §5).
enum class ExitCode { ok = 0, failure = 1, usage = 2, integrity = 3, registry = 4, upgrade = 5 };

// A failure an operator can act on. The message names the thing (file, image, digest,
// registry, release) and, where it helps, expected against actual; it starts lower-case
// and has no full stop. The hint is the next step, written with ferry's real flags.
// Context frames ("while verifying X") are added as the error travels outwards;
// context() lists them innermost first. Only cli/main.cpp prints errors.
class Error : public std::runtime_error {
public:
  Error(ExitCode code, std::string message, std::string hint = {});
  ExitCode code() const noexcept { return m_code; }
  const std::string& hint() const noexcept { return m_hint; }
  const std::vector<std::string>& context() const noexcept { return m_context; }
  void add_context(std::string frame);
  void set_hint(std::string hint) { m_hint = std::move(hint); }

private:
  ExitCode m_code;
  std::string m_hint;
  std::vector<std::string> m_context;
};

// Bad flags, a bad manifest, a missing input file: exit 2.
class UsageError : public Error {
public:
  explicit UsageError(std::string message, std::string hint = {})
      : Error(ExitCode::usage, std::move(message), std::move(hint)) {}
};

// A checksum, size, signature or format check on bundle data failed: exit 3.
class IntegrityError : public Error {
public:
  explicit IntegrityError(std::string message, std::string hint = {})
      : Error(ExitCode::integrity, std::move(message), std::move(hint)) {}
};

// A registry refused, failed or misbehaved: exit 4.
class RegistryError : public Error {
public:
  explicit RegistryError(std::string message, std::string hint = {})
      : Error(ExitCode::registry, std::move(message), std::move(hint)) {}
};

// "while <what>": appends context to any ferry Error thrown by fn and rethrows it.
template <typename Fn>
decltype(auto) with_context(std::string_view what, Fn&& fn) {
  try {
    return fn();
  } catch (Error& e) {
    e.add_context("while " + std::string(what));
    throw;
  }
}

// The candidate closest to `word` (edit distance at most a third of its length, at
// least 1), or an empty string: for "did you mean" hints.
std::string suggest(std::string_view word, const std::vector<std::string>& candidates);

// Message text for errno `err`: "No such file or directory (errno 2)".
std::string errno_text(int err);

} // namespace ferry::core

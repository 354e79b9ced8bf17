// Tests for core/secret: wiping buffers, secret files, secret lines, secret environment.
// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"
#include "core/secret.hpp"
#include "support/test_support.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <utility>

namespace fs = std::filesystem;
using ferry::core::UsageError;

namespace {

// Whether the `size` bytes at `p` are all zero.
bool all_zero(const char* p, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    if (p[i] != '\0') return false;
  }
  return true;
}

fs::path write_mode(const fs::path& file, const std::string& text, unsigned mode) {
  ferry::test::write_file(file, text);
  REQUIRE(::chmod(file.c_str(), mode) == 0);
  return file;
}

// The message and hint of the UsageError `fn` throws; fails the test without one.
std::pair<std::string, std::string> usage_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return {e.what(), e.hint()};
  }
  FAIL("no UsageError");
  return {};
}

} // namespace

TEST_SUITE("core") {

TEST_CASE("wipe zeroes the whole buffer, also what a longer earlier value left past the end") {
  SUBCASE("a heap buffer") {
    std::string secret = "correct horse battery staple, a long passphrase";
    secret = "short"; // assignment keeps the buffer: the tail of the old value stays in it
    const char* buffer = secret.data();
    const std::size_t capacity = secret.capacity();
    REQUIRE(capacity > 40);
    REQUIRE(std::string_view(buffer + 8, 10) == "horse batt"); // the tail really is there
    ferry::core::wipe(secret);
    CHECK(secret.empty());
    REQUIRE(secret.data() == buffer); // still the same buffer, so reading it is allowed
    CHECK(all_zero(buffer, capacity));
  }
  SUBCASE("the small-string buffer inside the object") {
    std::string secret = "hunter2";
    const char* buffer = secret.data();
    const std::size_t capacity = secret.capacity();
    ferry::core::wipe(secret);
    CHECK(secret.empty());
    REQUIRE(secret.data() == buffer);
    CHECK(all_zero(buffer, capacity));
  }
  SUBCASE("an optional string, and an empty optional") {
    std::optional<std::string> secret = std::string(50, 'x');
    const char* buffer = secret->data();
    ferry::core::wipe(secret);
    CHECK(secret->empty());
    CHECK(all_zero(buffer, secret->capacity()));
    std::optional<std::string> none;
    ferry::core::wipe(none);
    CHECK_FALSE(none.has_value());
  }
}

TEST_CASE("WipeOnExit wipes on leaving the scope, also by an exception") {
  std::string secret(64, 's');
  const char* buffer = secret.data();
  {
    const ferry::core::WipeOnExit guard(secret);
    CHECK(secret == std::string(64, 's')); // usable until the scope ends
  }
  CHECK(secret.empty());
  CHECK(all_zero(buffer, secret.capacity()));

  std::optional<std::string> passphrase = std::string(64, 'p');
  const char* pbuffer = passphrase->data();
  try {
    const ferry::core::WipeOnExit guard(passphrase);
    throw std::runtime_error("failed while the passphrase was in use");
  } catch (const std::runtime_error&) {
  }
  CHECK(passphrase->empty());
  CHECK(all_zero(pbuffer, passphrase->capacity()));
}

TEST_CASE("require_private_file accepts an owner-only file and refuses others' access with the chmod") {
  ferry::test::TestDir dir;
  const fs::path file = write_mode(dir / "password.txt", "pw\n", 0600);
  CHECK_NOTHROW(ferry::core::require_private_file(file, "password file"));
  CHECK_NOTHROW(ferry::core::require_private_file(write_mode(dir / "ro.txt", "pw\n", 0400), "password file"));
  for (const unsigned mode : {0640u, 0604u, 0620u, 0602u, 0644u}) {
    CAPTURE(mode);
    REQUIRE(::chmod(file.c_str(), mode) == 0);
    const auto [message, hint] = usage_error([&] { ferry::core::require_private_file(file, "password file"); });
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", mode);
    CHECK(message == "password file " + file.string() + " is accessible by group or others (mode " + octal + ")");
    CHECK(hint == "chmod 600 " + file.string());
  }
  SUBCASE("a missing file and a directory are named") {
    CHECK(ferry::test::contains(usage_error([&] { ferry::core::require_private_file(dir / "nope", "key"); }).first,
                                (dir / "nope").string()));
    fs::create_directory(dir / "d");
    REQUIRE(::chmod((dir / "d").c_str(), 0700) == 0);
    CHECK(usage_error([&] { ferry::core::require_private_file(dir / "d", "key"); }).first ==
          (dir / "d").string() + " is a directory, expected a key file");
  }
}

TEST_CASE("read_secret_file reads an owner-only file and refuses a shared one before reading") {
  ferry::test::TestDir dir;
  const fs::path file = write_mode(dir / "pw", "s3cret-value\nsecond line\n", 0600);
  CHECK(ferry::core::read_secret_file(file, "password file") == "s3cret-value\nsecond line\n");
  REQUIRE(::chmod(file.c_str(), 0644) == 0);
  const auto [message, hint] = usage_error([&] { ferry::core::read_secret_file(file, "password file"); });
  CHECK(ferry::test::contains(message, "(mode 0644)"));
  CHECK_FALSE(ferry::test::contains(message, "s3cret"));
  CHECK(hint == "chmod 600 " + file.string());

  SUBCASE("a file above the limit is refused, naming it") {
    const fs::path big = write_mode(dir / "big", std::string(100, 'x'), 0600);
    CHECK(ferry::core::read_secret_file(big, "password file", 100).size() == 100);
    CHECK(ferry::test::contains(usage_error([&] { ferry::core::read_secret_file(big, "password file", 99); }).first,
                                big.string() + " is larger than 99 bytes"));
  }
}

TEST_CASE("first_secret_line keeps the first line and wipes the text it was given") {
  for (const char* text : {"pw-1\nrest", "pw-1\r\nrest", "pw-1"}) {
    CAPTURE(text);
    std::string input = text;
    CHECK(ferry::core::first_secret_line(input) == "pw-1");
    CHECK(input.empty());
  }
  std::string empty_line = "\nsecond";
  CHECK(ferry::core::first_secret_line(empty_line).empty());
}

TEST_CASE("read_secret_line reads one line and leaves the rest of the input unread") {
  ferry::test::TestDir dir;
  ferry::test::write_file(dir / "input", "pass word\r\nnext line\n");
  const int fd = ::open((dir / "input").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK(ferry::core::read_secret_line(fd, "standard input") == "pass word");
  char rest[32] = {};
  CHECK(::read(fd, rest, sizeof rest) == 10);
  CHECK(std::string(rest) == "next line\n");
  ::close(fd);

  SUBCASE("without a newline at the end") {
    ferry::test::write_file(dir / "no-newline", "last");
    const int f = ::open((dir / "no-newline").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(f >= 0);
    CHECK(ferry::core::read_secret_line(f, "standard input") == "last");
    ::close(f);
  }
  SUBCASE("a line above 64 KiB is refused") {
    ferry::test::write_file(dir / "long", std::string(64 * 1024 + 1, 'x') + "\n");
    const int f = ::open((dir / "long").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(f >= 0);
    CHECK(ferry::test::contains(usage_error([&] { ferry::core::read_secret_line(f, "standard input"); }).first,
                                "standard input is longer than 65536 bytes"));
    ::close(f);
  }
}

TEST_CASE("take_secret_env returns the value and removes the variable") {
  ::setenv("FERRY_TEST_SECRET_ENV", "env-secret", 1);
  CHECK(ferry::core::take_secret_env("FERRY_TEST_SECRET_ENV") == std::optional<std::string>("env-secret"));
  CHECK(std::getenv("FERRY_TEST_SECRET_ENV") == nullptr);
  CHECK_FALSE(ferry::core::take_secret_env("FERRY_TEST_SECRET_ENV").has_value());
  ::setenv("FERRY_TEST_SECRET_ENV", "", 1);
  CHECK_FALSE(ferry::core::take_secret_env("FERRY_TEST_SECRET_ENV").has_value());
  CHECK(std::getenv("FERRY_TEST_SECRET_ENV") == nullptr);
}

TEST_CASE("create_private_directories makes missing directories 0700 and leaves existing ones alone") {
  ferry::test::TestDir dir;
  fs::create_directory(dir / "shared");
  REQUIRE(::chmod((dir / "shared").c_str(), 0755) == 0);
  std::error_code ec;
  ferry::core::create_private_directories(dir / "shared/state/ferry", ec);
  REQUIRE_FALSE(ec);
  for (const auto& [path, mode] : {std::pair{dir / "shared", 0755u}, std::pair{dir / "shared/state", 0700u},
                                   std::pair{dir / "shared/state/ferry", 0700u}}) {
    CAPTURE(path);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == mode);
  }
  ferry::core::create_private_directories(dir / "shared/state/ferry", ec); // exists: fine
  CHECK_FALSE(ec);
  ferry::test::write_file(dir / "file", "x");
  ferry::core::create_private_directories(dir / "file/sub", ec);
  CHECK(ec);
}

}

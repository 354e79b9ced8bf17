// Tests for core/fs.
// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"
#include "core/fs.hpp"
#include "support/test_support.hpp"

#include <sys/stat.h>

namespace fs = std::filesystem;

TEST_SUITE("core") {

TEST_CASE("AtomicFile leaves nothing under the final name until commit") {
  ferry::test::TestDir dir;
  const fs::path target = dir / "out.bin";
  {
    ferry::core::AtomicFile file(target, 0600);
    file.sink().write("hello");
    CHECK_FALSE(fs::exists(target));
    file.commit();
  }
  CHECK(ferry::test::read_file(target) == "hello");
  struct stat st {};
  REQUIRE(::stat(target.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("AtomicFile removes its temporary file when not committed") {
  ferry::test::TestDir dir;
  {
    ferry::core::AtomicFile file(dir / "out.bin");
    file.sink().write("partial");
  }
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("AtomicFile with Overwrite::no refuses an existing target") {
  ferry::test::TestDir dir;
  ferry::test::write_file(dir / "out.bin", "old");
  CHECK_THROWS_AS(ferry::core::AtomicFile(dir / "out.bin", 0644, ferry::core::Overwrite::no), ferry::core::UsageError);
  CHECK(ferry::test::read_file(dir / "out.bin") == "old");
}

TEST_CASE("FileSource on a missing file is a UsageError naming it") {
  ferry::test::TestDir dir;
  try {
    ferry::core::FileSource source(dir / "missing.yaml");
    FAIL("no exception");
  } catch (const ferry::core::UsageError& e) {
    CHECK(std::string(e.what()).find("missing.yaml") != std::string::npos);
  }
}

TEST_CASE("TempDir is removed with its contents") {
  fs::path path;
  {
    ferry::core::TempDir tmp;
    path = tmp.path();
    ferry::test::write_file(path / "a/b/c", "x");
  }
  CHECK_FALSE(fs::exists(path));
}

} // TEST_SUITE

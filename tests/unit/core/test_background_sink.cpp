// Tests for core/background_sink.
// SPDX-License-Identifier: Apache-2.0
#include "core/background_sink.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <atomic>

namespace {

class FailingSink final : public ferry::core::Sink {
public:
  explicit FailingSink(std::size_t fail_after) : m_left(fail_after) {}
  void write(const char*, std::size_t size) override {
    if (size > m_left) throw ferry::core::Error(ferry::core::ExitCode::failure, "disk full");
    m_left -= size;
  }

private:
  std::size_t m_left;
};

} // namespace

TEST_SUITE("core") {

TEST_CASE("BackgroundSink::finish delivers every byte in order") {
  const std::string data = ferry::test::random_bytes(5 * 1024 * 1024 + 123, 11);
  ferry::core::StringSink out;
  ferry::core::BackgroundSink background(out, 64 * 1024, 3);
  for (std::size_t i = 0; i < data.size(); i += 7777) background.write(std::string_view(data).substr(i, 7777));
  background.finish();
  CHECK(out.bytes() == data);
}

TEST_CASE("BackgroundSink rethrows the inner sink's error to the writer") {
  FailingSink failing(100 * 1024);
  ferry::core::BackgroundSink background(failing, 64 * 1024, 2);
  const std::string chunk(64 * 1024, 'x');
  CHECK_THROWS_WITH_AS(
      {
        for (int i = 0; i < 100; ++i) background.write(chunk);
        background.finish();
      },
      "disk full", ferry::core::Error);
}

TEST_CASE("BackgroundSink destroyed without finish stops without writing the rest") {
  ferry::core::StringSink out;
  {
    ferry::core::BackgroundSink background(out, 1024, 2);
    background.write(std::string(100, 'x')); // less than a chunk: never handed over
  }
  CHECK(out.bytes().empty());
}

TEST_CASE("BackgroundSink refuses writes after finish") {
  ferry::core::StringSink out;
  ferry::core::BackgroundSink background(out);
  background.finish();
  CHECK_THROWS_AS(background.write("x"), ferry::core::Error);
}

} // TEST_SUITE

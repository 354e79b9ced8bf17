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

#include "core/pipe.hpp"

#include <thread>

TEST_SUITE("core") {

TEST_CASE("Pipe carries every byte in order from one thread to another") {
  const std::string data = ferry::test::random_bytes(3 * 1024 * 1024 + 5, 21);
  ferry::core::Pipe pipe(64 * 1024, 2);
  std::thread writer([&] {
    for (std::size_t i = 0; i < data.size(); i += 10000) pipe.sink().write(std::string_view(data).substr(i, 10000));
    pipe.close();
  });
  ferry::core::StringSink out;
  ferry::core::copy(pipe.source(), out);
  writer.join();
  CHECK(out.bytes() == data);
}

TEST_CASE("Pipe::abort makes the reader fail with the writer's error") {
  ferry::core::Pipe pipe(1024, 2);
  pipe.sink().write("partial");
  pipe.abort(std::make_exception_ptr(ferry::core::IntegrityError("bad digest")));
  char buffer[16];
  CHECK_THROWS_WITH_AS(pipe.source().read(buffer, sizeof buffer), "bad digest", ferry::core::IntegrityError);
}

TEST_CASE("Pipe::abort unblocks a writer waiting for room") {
  ferry::core::Pipe pipe(4, 1);
  std::thread reader_gone([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pipe.abort();
  });
  CHECK_THROWS_AS(pipe.sink().write(std::string(64, 'x')), ferry::core::Error);
  reader_gone.join();
}

} // TEST_SUITE

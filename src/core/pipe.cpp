// A bounded producer/consumer pipe.
// SPDX-License-Identifier: Apache-2.0
#include "core/pipe.hpp"

#include "core/error.hpp"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>

namespace ferry::core {

struct Pipe::State {
  std::size_t chunk_size;
  std::size_t depth;
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::string> chunks;
  std::size_t front_offset = 0; // bytes of chunks.front() already read
  bool closed = false;
  bool aborted = false;
  std::exception_ptr error;

  class Writer final : public Sink {
  public:
    explicit Writer(State& s) : m_state(s) {}
    void write(const char* data, std::size_t size) override { m_state.write(data, size); }
    using Sink::write;

  private:
    State& m_state;
  } writer{*this};

  class Reader final : public Source {
  public:
    explicit Reader(State& s) : m_state(s) {}
    std::size_t read(char* data, std::size_t size) override { return m_state.read(data, size); }

  private:
    State& m_state;
  } reader{*this};

  State(std::size_t c, std::size_t d) : chunk_size(c), depth(d) {}

  [[noreturn]] void fail_aborted() {
    if (error) std::rethrow_exception(error);
    throw Error(ExitCode::failure, "the other side of the transfer stopped");
  }

  void write(const char* data, std::size_t size) {
    while (size > 0) {
      const std::size_t n = std::min(size, chunk_size);
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return aborted || chunks.size() < depth; });
      if (aborted) fail_aborted();
      if (closed) throw Error(ExitCode::failure, "write to a closed pipe");
      chunks.emplace_back(data, n);
      lock.unlock();
      changed.notify_all();
      data += n;
      size -= n;
    }
  }

  std::size_t read(char* data, std::size_t size) {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return aborted || closed || !chunks.empty(); });
    if (aborted) fail_aborted();
    if (chunks.empty()) return 0; // closed and drained
    std::string& front = chunks.front();
    const std::size_t n = std::min(size, front.size() - front_offset);
    std::memcpy(data, front.data() + front_offset, n);
    front_offset += n;
    if (front_offset == front.size()) {
      chunks.pop_front();
      front_offset = 0;
      lock.unlock();
      changed.notify_all();
    }
    return n;
  }
};

Pipe::Pipe(std::size_t chunk_size, std::size_t depth) : m_state(std::make_unique<State>(chunk_size, depth)) {}
Pipe::~Pipe() = default;

Sink& Pipe::sink() { return m_state->writer; }
Source& Pipe::source() { return m_state->reader; }

void Pipe::close() {
  {
    std::lock_guard lock(m_state->mutex);
    m_state->closed = true;
  }
  m_state->changed.notify_all();
}

void Pipe::abort(std::exception_ptr error) {
  {
    std::lock_guard lock(m_state->mutex);
    if (!m_state->aborted) {
      m_state->aborted = true;
      m_state->error = error;
    }
  }
  m_state->changed.notify_all();
}

} // namespace ferry::core

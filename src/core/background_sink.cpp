// A bounded producer/consumer queue in front of a Sink.
// SPDX-License-Identifier: Apache-2.0
#include "core/background_sink.hpp"

#include "core/error.hpp"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

namespace ferry::core {

struct BackgroundSink::State {
  Sink& inner;
  std::size_t chunk_size;
  std::size_t depth;
  std::string current; // filled by the caller's thread only
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::string> queue; // full chunks waiting for the writer
  std::vector<std::string> spare; // written chunks, reused to avoid reallocating
  bool closing = false;           // no more chunks will come
  bool stopping = false;          // drop everything and stop
  std::exception_ptr error;
  std::thread thread;

  State(Sink& s, std::size_t c, std::size_t d) : inner(s), chunk_size(c), depth(d) { current.reserve(chunk_size); }

  void run() {
    for (;;) {
      std::string chunk;
      {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return stopping || closing || !queue.empty(); });
        if (stopping || queue.empty()) return; // closing with an empty queue: done
        chunk = std::move(queue.front());
        queue.pop_front();
      }
      changed.notify_all(); // room in the queue
      try {
        inner.write(chunk.data(), chunk.size());
      } catch (...) {
        std::lock_guard lock(mutex);
        error = std::current_exception();
        stopping = true;
        changed.notify_all();
        return;
      }
      chunk.clear();
      std::lock_guard lock(mutex);
      if (spare.size() < depth) spare.push_back(std::move(chunk));
    }
  }

  // Queues `current` (the caller's thread); waits while the queue is full.
  void push() {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return stopping || queue.size() < depth; });
    if (error) std::rethrow_exception(error);
    queue.push_back(std::move(current));
    if (!spare.empty()) {
      current = std::move(spare.back());
      spare.pop_back();
    } else {
      current = std::string();
      current.reserve(chunk_size);
    }
    lock.unlock();
    changed.notify_all();
  }
};

BackgroundSink::BackgroundSink(Sink& inner, std::size_t chunk_size, std::size_t depth)
    : m_state(std::make_unique<State>(inner, chunk_size, depth)) {
  m_state->thread = std::thread([state = m_state.get()] { state->run(); });
}

BackgroundSink::~BackgroundSink() {
  {
    std::lock_guard lock(m_state->mutex);
    m_state->stopping = true;
  }
  m_state->changed.notify_all();
  if (m_state->thread.joinable()) m_state->thread.join();
}

void BackgroundSink::write(const char* data, std::size_t size) {
  State& s = *m_state;
  if (s.closing) throw Error(ExitCode::failure, "BackgroundSink::write called after finish");
  while (size > 0) {
    const std::size_t n = std::min(size, s.chunk_size - s.current.size());
    s.current.append(data, n);
    data += n;
    size -= n;
    if (s.current.size() == s.chunk_size) s.push();
  }
}

void BackgroundSink::finish() {
  State& s = *m_state;
  if (!s.current.empty()) s.push();
  {
    std::lock_guard lock(s.mutex);
    s.closing = true;
  }
  s.changed.notify_all();
  if (s.thread.joinable()) s.thread.join();
  if (s.error) std::rethrow_exception(s.error);
}

} // namespace ferry::core

// A bounded in-memory pipe between two threads: one writes a Sink, the other reads a
// Source (e.g. a bundle entry streaming straight into an HTTP upload).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/io.hpp"

#include <exception>
#include <memory>

namespace ferry::core {

// At most `depth` chunks of up to `chunk_size` bytes wait in the pipe; the writer blocks
// beyond that, so memory stays bounded. close() marks the end (the reader then sees 0).
// abort() makes both sides fail: the reader's next read() throws `error` (or a generic
// Error), the writer's next write() too. Both sides may be used from different threads.
class Pipe {
public:
  explicit Pipe(std::size_t chunk_size = k_copy_buffer_size, std::size_t depth = 4);
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe();

  Sink& sink();
  Source& source();
  void close();
  void abort(std::exception_ptr error = nullptr);

private:
  struct State;
  std::unique_ptr<State> m_state;
};

} // namespace ferry::core

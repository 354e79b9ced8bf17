// A Sink that writes on a background thread, so computing and writing overlap.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/io.hpp"

#include <cstddef>
#include <memory>

namespace ferry::core {

// Collects writes into chunks of `chunk_size` bytes and hands each full chunk to a
// background thread that writes it to `inner`. At most `depth` chunks wait at a time
// (the writer blocks beyond that), so memory stays at about depth × chunk_size.
// An error thrown by `inner` is rethrown by the next write() or by finish(). finish()
// writes what is left and waits for the thread; destroying the sink without finish()
// stops the thread and drops what was not yet written. `inner` must outlive this object
// and must not be used by anyone else until finish() returned.
class BackgroundSink final : public Sink {
public:
  explicit BackgroundSink(Sink& inner, std::size_t chunk_size = k_copy_buffer_size, std::size_t depth = 4);
  BackgroundSink(const BackgroundSink&) = delete;
  BackgroundSink& operator=(const BackgroundSink&) = delete;
  ~BackgroundSink() override;

  void write(const char* data, std::size_t size) override;
  using Sink::write;
  void finish();

private:
  struct State;
  std::unique_ptr<State> m_state;
};

} // namespace ferry::core

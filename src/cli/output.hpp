// How the CLI shows things: log lines and progress on stderr, results on stdout as
// text or JSON. The library reports to these sinks and never prints.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/log.hpp"

#include <chrono>
#include <mutex>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::cli {

enum class Format { text, json };

struct OutputOptions {
  Format format = Format::text;
  bool quiet = false;   // warnings only
  bool verbose = false; // debug lines too
};

// Thread-safe: the registry client logs from its transfer threads.
class Output final : public core::LogSink, public core::ProgressSink {
public:
  explicit Output(OutputOptions options);
  void log(core::LogLevel level, std::string_view message) override;
  void progress(const core::ProgressEvent& event) override;
  // Ends a progress line on the terminal, if one is shown.
  void finish_progress();
  // A result line on stdout.
  void result(std::string_view line);
  bool json() const noexcept { return m_options.format == Format::json; }
  const OutputOptions& options() const noexcept { return m_options; }

private:
  void finish_progress_locked();

  OutputOptions m_options;
  std::mutex m_mutex;
  bool m_tty = false;
  bool m_colour = false;
  bool m_progress_shown = false;
  std::chrono::steady_clock::time_point m_started;
  std::chrono::steady_clock::time_point m_last_draw;
};

// "1.5 GiB", "730 KiB", "12 B".
std::string human_bytes(std::uint64_t bytes);

// Parses "json" / "text" for --output; UsageError otherwise.
Format parse_format(std::string_view text);

} // namespace ferry::cli

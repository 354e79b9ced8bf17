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

// text: lines for people; json: one JSON document per result; ndjson: every log line,
// progress step, finished stage and result as one JSON object per line on stdout.
enum class Format { text, json, ndjson };

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
  // Ends the current stage: its progress line on the terminal, and its summary
  // ("verify: 1.2 GiB in 3.4 s, 350 MiB/s"; an ndjson "stage" event).
  void finish_progress();
  // A result line on stdout; with ndjson, a "result" event holding the JSON document.
  void result(std::string_view line);
  // Results are JSON documents (json and ndjson).
  bool json() const noexcept { return m_options.format != Format::text; }
  bool ndjson() const noexcept { return m_options.format == Format::ndjson; }
  const OutputOptions& options() const noexcept { return m_options; }

private:
  void finish_progress_locked();
  void show_progress_locked(std::chrono::steady_clock::time_point now); // a frame or an ndjson event
  void draw_bar_locked(std::chrono::steady_clock::time_point now);
  void emit_locked(const std::string& line); // one ndjson line on stdout, flushed

  OutputOptions m_options;
  std::mutex m_mutex;
  bool m_tty = false;
  bool m_colour = false;
  bool m_progress_shown = false;
  // The stage in progress: its name, when it started, and the most bytes reported so
  // far (what is shown never goes backwards, though parallel workers report out of order).
  std::string m_stage;
  std::string m_item;
  std::chrono::steady_clock::time_point m_stage_started;
  std::uint64_t m_done = 0;
  std::uint64_t m_total = 0;
  std::uint64_t m_shown_done = 0; // m_done as last shown
  std::chrono::steady_clock::time_point m_last_draw;
};

// The progress line drawn on a terminal: "verify   [#####.....]  1.2 GiB / 2.4 GiB  50.0%
// 350 MiB/s  ETA 4s". `width` is the bar's width in characters.
std::string progress_line(std::string_view stage, std::uint64_t done, std::uint64_t total, double seconds,
                          int width = 20);

// "4s", "2m05s", "1h02m".
std::string human_duration(double seconds);

// "1.5 GiB", "730 KiB", "12 B".
std::string human_bytes(std::uint64_t bytes);

// Parses "text" / "json" / "ndjson" for --output; UsageError otherwise.
Format parse_format(std::string_view text);

} // namespace ferry::cli

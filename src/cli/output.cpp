// Terminal rendering of logs, progress and results.
// SPDX-License-Identifier: Apache-2.0
#include "cli/output.hpp"

#include "core/error.hpp"

#include <fmt/core.h>

#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace ferry::cli {

Output::Output(OutputOptions options) : m_options(options) {
  m_tty = ::isatty(STDERR_FILENO) == 1;
  const char* no_colour = std::getenv("NO_COLOR");
  m_colour = m_tty && !(no_colour && *no_colour);
  m_started = m_last_draw = std::chrono::steady_clock::now();
}

void Output::log(core::LogLevel level, std::string_view message) {
  if (level == core::LogLevel::debug && !m_options.verbose) return;
  if (level == core::LogLevel::info && m_options.quiet) return;
  std::lock_guard lock(m_mutex);
  finish_progress_locked();
  if (level == core::LogLevel::warning) {
    const char* on = m_colour ? "\033[1;33m" : "";
    const char* off = m_colour ? "\033[0m" : "";
    fmt::print(stderr, "ferry: {}warning:{} {}\n", on, off, message);
  } else {
    fmt::print(stderr, "ferry: {}\n", message);
  }
}

void Output::progress(const core::ProgressEvent& event) {
  // Plain (non-terminal) runs get the log lines only; a bar is drawn on terminals.
  if (!m_tty || m_options.quiet) return;
  std::lock_guard lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  const bool last = event.total_bytes != 0 && event.done_bytes >= event.total_bytes;
  if (!last && now - m_last_draw < std::chrono::milliseconds(100)) return;
  m_last_draw = now;
  const double seconds = std::chrono::duration<double>(now - m_started).count();
  const double rate = seconds > 0 ? static_cast<double>(event.done_bytes) / seconds : 0.0;
  const double percent =
      event.total_bytes ? 100.0 * static_cast<double>(event.done_bytes) / static_cast<double>(event.total_bytes) : 100.0;
  fmt::print(stderr, "\r\033[K{:<8} {:>10} / {:<10} {:5.1f}%  {}/s", event.stage, human_bytes(event.done_bytes),
             human_bytes(event.total_bytes), percent, human_bytes(static_cast<std::uint64_t>(rate)));
  std::fflush(stderr);
  m_progress_shown = true;
}

void Output::finish_progress() {
  std::lock_guard lock(m_mutex);
  finish_progress_locked();
}

void Output::finish_progress_locked() {
  if (!m_progress_shown) return;
  fmt::print(stderr, "\n");
  m_progress_shown = false;
}

void Output::result(std::string_view line) {
  std::lock_guard lock(m_mutex);
  finish_progress_locked();
  fmt::print("{}\n", line);
}

std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* k_units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, k_units[unit]);
}

Format parse_format(std::string_view text) {
  if (text == "json") return Format::json;
  if (text == "text") return Format::text;
  throw core::UsageError("unknown output format '" + std::string(text) + "'", "use --output text or --output json");
}

} // namespace ferry::cli

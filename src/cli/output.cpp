// Terminal rendering of logs, progress and results.
// SPDX-License-Identifier: Apache-2.0
#include "cli/output.hpp"

#include "core/error.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace ferry::cli {

Output::Output(OutputOptions options) : m_options(options) {
  m_tty = ::isatty(STDERR_FILENO) == 1;
  const char* no_colour = std::getenv("NO_COLOR");
  m_colour = m_tty && !(no_colour && *no_colour);
  m_stage_started = m_last_draw = std::chrono::steady_clock::now();
}

namespace {

const char* level_name(core::LogLevel level) {
  switch (level) {
  case core::LogLevel::debug: return "debug";
  case core::LogLevel::info: return "info";
  case core::LogLevel::warning: return "warning";
  }
  return "info";
}

// One ndjson line. Messages and paths may hold bytes that are not UTF-8 (a file name, a
// registry's error body): they become U+FFFD instead of failing the dump.
std::string ndjson_line(const nlohmann::json& event) {
  return event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

double seconds_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

} // namespace

void Output::emit_locked(const std::string& line) {
  fmt::print("{}\n", line);
  std::fflush(stdout);
}

void Output::log(core::LogLevel level, std::string_view message) {
  if (level == core::LogLevel::debug && !m_options.verbose) return;
  if (level == core::LogLevel::info && m_options.quiet) return;
  std::lock_guard lock(m_mutex);
  if (ndjson()) {
    emit_locked(ndjson_line({{"event", "log"}, {"level", level_name(level)}, {"message", message}}));
    return;
  }
  const bool redraw = m_progress_shown;
  if (m_progress_shown) fmt::print(stderr, "\r\033[K");
  m_progress_shown = false;
  if (level == core::LogLevel::warning) {
    const char* on = m_colour ? "\033[1;33m" : "";
    const char* off = m_colour ? "\033[0m" : "";
    fmt::print(stderr, "ferry: {}warning:{} {}\n", on, off, message);
  } else {
    fmt::print(stderr, "ferry: {}\n", message);
  }
  // The bar stays under the log lines.
  if (redraw) draw_bar_locked(std::chrono::steady_clock::now());
}

void Output::progress(const core::ProgressEvent& event) {
  std::lock_guard lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  if (event.stage != m_stage) {
    finish_progress_locked();
    m_stage = event.stage;
    m_stage_started = now;
    m_done = m_shown_done = 0;
    m_last_draw = {};
  }
  m_done = std::max(m_done, event.done_bytes);
  m_total = event.total_bytes;
  m_item = event.item;
  const bool last = m_total != 0 && m_done >= m_total;
  // At most 10 frames a second on a terminal, 4 events a second in ndjson; the last
  // step always.
  const auto interval = std::chrono::milliseconds(ndjson() ? 250 : 100);
  if (!last && now - m_last_draw < interval) return;
  m_last_draw = now;
  show_progress_locked(now);
}

void Output::show_progress_locked(std::chrono::steady_clock::time_point now) {
  m_shown_done = m_done;
  if (ndjson()) {
    emit_locked(ndjson_line({{"event", "progress"},
                               {"stage", m_stage},
                               {"item", m_item},
                               {"doneBytes", m_done},
                               {"totalBytes", m_total},
                               {"seconds", seconds_between(m_stage_started, now)}}));
    return;
  }
  // Plain (non-terminal) runs get the log lines and the stage summaries only.
  if (!m_tty || m_options.quiet) return;
  draw_bar_locked(now);
}

void Output::draw_bar_locked(std::chrono::steady_clock::time_point now) {
  fmt::print(stderr, "\r\033[K{}", progress_line(m_stage, m_done, m_total, seconds_between(m_stage_started, now)));
  std::fflush(stderr);
  m_progress_shown = true;
}

void Output::finish_progress() {
  std::lock_guard lock(m_mutex);
  finish_progress_locked();
}

void Output::finish_progress_locked() {
  const auto now = std::chrono::steady_clock::now();
  // The stage's last step, if it fell between two frames.
  if (!m_stage.empty() && m_done != m_shown_done) show_progress_locked(now);
  if (m_progress_shown) fmt::print(stderr, "\n");
  m_progress_shown = false;
  if (m_stage.empty()) return;
  const double seconds = seconds_between(m_stage_started, now);
  if (ndjson()) {
    emit_locked(ndjson_line({{"event", "stage"}, {"stage", m_stage}, {"bytes", m_done}, {"seconds", seconds}}));
  } else if (!m_options.quiet) {
    const double rate = seconds > 0 ? static_cast<double>(m_done) / seconds : 0.0;
    fmt::print(stderr, "ferry: {}: {} in {:.1f} s ({}/s)\n", m_stage, human_bytes(m_done), seconds,
               human_bytes(static_cast<std::uint64_t>(rate)));
  }
  m_stage.clear();
  m_done = m_total = m_shown_done = 0;
}

void Output::result(std::string_view line) {
  std::lock_guard lock(m_mutex);
  finish_progress_locked();
  if (ndjson()) {
    // A result is one JSON document (print_json); anything else is carried as text.
    nlohmann::json value = nlohmann::json::parse(line, nullptr, false);
    if (value.is_discarded()) value = std::string(line);
    emit_locked(ndjson_line({{"event", "result"}, {"result", std::move(value)}}));
    return;
  }
  fmt::print("{}\n", line);
}

std::string progress_line(std::string_view stage, std::uint64_t done, std::uint64_t total, double seconds, int width) {
  const double fraction = total ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 0.0;
  const int filled = static_cast<int>(fraction * width);
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  std::string eta = "ETA --";
  if (total && done >= total) {
    eta = "done " + human_duration(seconds);
  } else if (total && rate > 0) {
    eta = "ETA " + human_duration(static_cast<double>(total - done) / rate);
  }
  return fmt::format("{:<8} [{}{}] {:>10} / {:<10} {:5.1f}%  {:>10}/s  {}", stage, std::string(filled, '#'),
                     std::string(width - filled, '.'), human_bytes(done), human_bytes(total), 100.0 * fraction,
                     human_bytes(static_cast<std::uint64_t>(rate)), eta);
}

std::string human_duration(double seconds) {
  const auto s = static_cast<std::uint64_t>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
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
  if (text == "ndjson") return Format::ndjson;
  if (text == "text") return Format::text;
  throw core::UsageError("unknown output format '" + std::string(text) + "'",
                         "use --output text, --output json or --output ndjson");
}

} // namespace ferry::cli

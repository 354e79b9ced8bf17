// What the library reports: log lines and progress events go to sinks the caller gives;
// the library itself never prints.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::core {

enum class LogLevel { debug, info, warning };

// Receives messages for the operator; the CLI decides how (plain, coloured, JSON).
class LogSink {
public:
  virtual ~LogSink() = default;
  virtual void log(LogLevel level, std::string_view message) = 0;
  void info(std::string_view message) { log(LogLevel::info, message); }
  void warning(std::string_view message) { log(LogLevel::warning, message); }
  void debug(std::string_view message) { log(LogLevel::debug, message); }
};

// Discards everything (tests, library callers that do not care).
class NullLog final : public LogSink {
public:
  void log(LogLevel, std::string_view) override {}
};

// One step of progress within a stage ("pack", "verify", "extract"): `item` is what is
// being worked on (an image ref, a blob digest); bytes are cumulative for the stage.
struct ProgressEvent {
  std::string_view stage;
  std::string_view item;
  std::uint64_t done_bytes = 0;
  std::uint64_t total_bytes = 0;
};

class ProgressSink {
public:
  virtual ~ProgressSink() = default;
  virtual void progress(const ProgressEvent& event) = 0;
};

class NullProgress final : public ProgressSink {
public:
  void progress(const ProgressEvent&) override {}
};

} // namespace ferry::core

// The subcommands: each file turns flags into an options struct and calls one library
// function, then renders the result.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace ferry::cli {

class Output;

// Flags every command shares; filled in by CLI11 before a command's callback runs.
struct GlobalFlags {
  std::string output = "text";
  bool quiet = false;
  bool verbose = false;
};

// A command's work, run by main() inside its error handler.
using CommandRun = std::function<void(Output&)>;

void add_keygen(CLI::App& app, CommandRun& run);
void add_pack(CLI::App& app, CommandRun& run);
void add_lock(CLI::App& app, CommandRun& run);
void add_verify(CLI::App& app, CommandRun& run);
void add_inspect(CLI::App& app, CommandRun& run);
void add_extract(CLI::App& app, CommandRun& run);
void add_push(CLI::App& app, CommandRun& run);
void add_unpack(CLI::App& app, CommandRun& run);
void add_doctor(CLI::App& app, CommandRun& run);
void add_values(CLI::App& app, CommandRun& run);
void add_check(CLI::App& app, CommandRun& run);
void add_upgrade(CLI::App& app, CommandRun& run);
void add_version(CLI::App& app, CommandRun& run);
void add_inventory(CLI::App& app, CommandRun& run);
void add_diff(CLI::App& app, CommandRun& run);
void add_serve(CLI::App& app, CommandRun& run);
// ferry completion and ferry man, from the command tree of `app` (add them last).
void add_reference(CLI::App& app, CommandRun& run);

// The passphrase for a private key: the file's first line when `file` is given, else
// $FERRY_KEY_PASSPHRASE (then removed from the environment), else nothing. Never from
// the command line (argv is visible to every user of the machine). A file group or
// others may access is refused (UsageError with the chmod that fixes it). The caller
// wipes the result (core::WipeOnExit) once the key is loaded or written.
std::optional<std::string> read_passphrase(const std::string& file);

// $SOURCE_DATE_EPOCH as seconds, or nullopt when unset or empty; UsageError when it is
// not a non-negative whole number.
std::optional<std::int64_t> source_date_epoch_env();

// The version string ("0.1.0").
const char* ferry_version();

} // namespace ferry::cli

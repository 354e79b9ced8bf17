// ferry's entry point: parses the command line, runs one command, and is the only place
// that prints errors and chooses the exit status (DESIGN §5).
// SPDX-License-Identifier: Apache-2.0
#include "cli/commands/commands.hpp"
#include "cli/output.hpp"
#include "core/error.hpp"

#include <CLI/CLI.hpp>
#include <curl/curl.h>
#include <fmt/core.h>

#include <cstdio>
#include <exception>
#include <string_view>
#include <utility>

namespace {

using ferry::core::ExitCode;

int print_error(const ferry::core::Error& e) {
  fmt::print(stderr, "ferry: error: {}\n", e.what());
  for (const auto& frame : e.context()) fmt::print(stderr, "  {}\n", frame);
  if (!e.hint().empty()) fmt::print(stderr, "hint: {}\n", e.hint());
  return static_cast<int>(e.code());
}

} // namespace

int main(int argc, char** argv) {
  // Once, before any thread starts (libcurl's rule); registries use it.
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fmt::print(stderr, "ferry: error: cannot initialise libcurl\n");
    return static_cast<int>(ExitCode::failure);
  }
  struct CurlCleanup {
    ~CurlCleanup() { curl_global_cleanup(); }
  } curl_cleanup;

  CLI::App app{"ferry: carry Kubernetes software across an air gap.\n"
               "  connected side:  ferry keygen, ferry pack (--base for a differential bundle), ferry diff\n"
               "  isolated side:   ferry verify, ferry inspect, ferry extract, ferry push, ferry values, ferry check,\n"
               "                   ferry upgrade, ferry unpack (all of these stages), ferry doctor, ferry inventory,\n"
               "                   ferry serve (a read-only registry over a bundle)",
               "ferry"};
  app.set_version_flag("--version", std::string("ferry ") + ferry::cli::ferry_version());
  app.require_subcommand(1);
  app.fallthrough();
  ferry::cli::GlobalFlags flags;
  app.add_option("--output", flags.output,
                 "Result format: text (default), json, or ndjson (every log line, progress step, finished stage "
                 "and the result as JSON lines on standard output)")
      ->type_name("FORMAT:{text,json,ndjson}");
  app.add_flag("-q,--quiet", flags.quiet, "Print warnings and results only");
  app.add_flag("-v,--verbose", flags.verbose, "Print debug lines too");
  app.footer("Exit codes: 0 ok, 1 error, 2 usage, 3 integrity/signature failure, 4 registry failure, 5 upgrade failure.\n"
             "Documentation: README.md and docs/ in the ferry sources.");

  ferry::cli::CommandRun run;
  ferry::cli::add_keygen(app, run);
  ferry::cli::add_pack(app, run);
  ferry::cli::add_lock(app, run);
  ferry::cli::add_verify(app, run);
  ferry::cli::add_inspect(app, run);
  ferry::cli::add_extract(app, run);
  ferry::cli::add_push(app, run);
  ferry::cli::add_unpack(app, run);
  ferry::cli::add_doctor(app, run);
  ferry::cli::add_values(app, run);
  ferry::cli::add_check(app, run);
  ferry::cli::add_upgrade(app, run);
  ferry::cli::add_inventory(app, run);
  ferry::cli::add_diff(app, run);
  ferry::cli::add_serve(app, run);
  ferry::cli::add_version(app, run);
  ferry::cli::add_reference(app, run);

  // ferry takes no secret on the command line (every user of the machine can read it
  // there). Someone who tries gets the ways that work, and the value is not quoted back
  // as CLI11's "arguments were not expected: …" would (into a CI log, say).
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    for (const auto& [name, hint] :
         {std::pair<std::string_view, const char*>{"--password", "--password-stdin, --password-file FILE or $FERRY_PASSWORD"},
          {"--passphrase", "--passphrase-file FILE or $FERRY_KEY_PASSPHRASE"}}) {
      if (arg == name || (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=')) {
        fmt::print(stderr, "ferry: error: {} is not an option: a secret on the command line is visible to every user "
                           "of this machine\nhint: use {}\n", name, hint);
        return static_cast<int>(ExitCode::usage);
      }
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::CallForVersion&) {
    fmt::print("ferry {}\n", ferry::cli::ferry_version());
    return 0;
  } catch (const CLI::ParseError& e) {
    // A subcommand's --help arrives here as a CallForHelp thrown from that subcommand.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(e);
    }
    fmt::print(stderr, "ferry: error: {}\nhint: run `ferry --help` or `ferry COMMAND --help`\n", e.what());
    return static_cast<int>(ExitCode::usage);
  }

  try {
    ferry::cli::Output out({.format = ferry::cli::parse_format(flags.output), .quiet = flags.quiet, .verbose = flags.verbose});
    if (run) run(out);
    out.finish_progress();
    return 0;
  } catch (const ferry::core::Error& e) {
    return print_error(e);
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "ferry: error: out of memory\n");
    return static_cast<int>(ExitCode::failure);
  } catch (const std::exception& e) {
    fmt::print(stderr, "ferry: error: {}\nhint: this is a bug in ferry; please report it with the command you ran\n", e.what());
    return static_cast<int>(ExitCode::failure);
  }
}

// ferry version: the version, the bundle format, and how this binary was built (static or
// not, compiler, commit) with the library versions it runs with, for support and for
// security officers checking which OpenSSL and libcurl a jump host's ferry carries.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/descriptor.hpp"
#include "cli/commands/commands.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"
#include "ferry_commit.h" // FERRY_COMMIT: `git describe` at build time (meson vcs_tag)

#include <CLI/CLI.hpp>
#include <archive.h>
#include <curl/curl.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <zstd.h>

#ifndef FERRY_STATIC_BUILD
#error "FERRY_STATIC_BUILD must be defined by the build (0 or 1)"
#endif
#ifndef FERRY_BUILD_TYPE
#define FERRY_BUILD_TYPE "unknown"
#endif

namespace ferry::cli {
namespace {

nlohmann::json build_info() {
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  return {
      {"static", FERRY_STATIC_BUILD != 0},
      {"commit", FERRY_COMMIT},
      {"buildType", FERRY_BUILD_TYPE},
      {"compiler", fmt::format("gcc-compatible {}", __VERSION__)},
      {"libraries",
       {
           {"libcurl",
            std::string(curl->version) + (curl->ssl_version ? std::string(" (") + curl->ssl_version + ")" : "")},
           {"openssl", OpenSSL_version(OPENSSL_VERSION)},
           {"libarchive", archive_version_details()},
           {"zstd", ZSTD_versionString()},
           {"fmt", fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100)},
           {"nlohmann_json", fmt::format("{}.{}.{}", NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR,
                                         NLOHMANN_JSON_VERSION_PATCH)},
           {"CLI11", CLI11_VERSION},
       }},
  };
}

} // namespace

void add_version(CLI::App& app, CommandRun& run) {
  auto* cmd =
      app.add_subcommand("version", "Show the version of ferry, the bundle format it writes, and how it was built");
  cmd->callback([&run] {
    run = [](Output& out) {
      const auto build = build_info();
      if (out.json()) {
        print_json(out, {{"version", ferry_version()}, {"bundleFormat", bundle::k_format_version}, {"build", build}});
        return;
      }
      out.result(fmt::format("ferry {} (bundle format {})", ferry_version(), bundle::k_format_version));
      out.result(fmt::format("  build:      {}, {}, commit {}, {}", build["static"].get<bool>() ? "static" : "dynamic",
                             FERRY_BUILD_TYPE, FERRY_COMMIT, __VERSION__));
      for (const auto& [name, version] : build["libraries"].items()) {
        out.result(fmt::format("  {:<11} {}", name + ":", version.get<std::string>()));
      }
    };
  });
}

} // namespace ferry::cli

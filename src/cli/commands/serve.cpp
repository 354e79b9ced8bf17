// ferry serve: a read-only OCI registry over a bundle or an extracted directory.
// SPDX-License-Identifier: Apache-2.0
#include "serve.hpp"

#include "cli/commands/commands.hpp"
#include "cli/commands/trust_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "serve/http_server.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

namespace ferry::cli {

namespace {

std::atomic<serve::Server*> g_server{nullptr};

extern "C" void stop_serving(int) {
  if (serve::Server* s = g_server.load()) s->stop();
}

} // namespace

void add_serve(CLI::App& app, CommandRun& run) {
  struct Flags : TrustFlags {
    std::string source;
    std::string listen = "127.0.0.1:5000";
    std::string cert_file;
    std::string key_file;
    std::string prefix;
    int jobs = 4;
    std::size_t max_connections = 64;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand(
      "serve", "Serve a bundle's images and charts as a read-only OCI registry (pull API), after verifying it");
  cmd->add_option("source", flags->source, "Bundle file (.tar.zst), or a directory written by `ferry extract`")->required();
  cmd->add_option("--listen", flags->listen,
                  "HOST:PORT to listen on (default 127.0.0.1:5000; 0.0.0.0:5000 for every IPv4 address, port 0 "
                  "for any free port)");
  cmd->add_option("--cert-file", flags->cert_file, "TLS certificate chain (PEM) to serve HTTPS with");
  cmd->add_option("--key-file", flags->key_file, "TLS private key (PEM) of --cert-file; must be mode 0600");
  cmd->add_option("--prefix", flags->prefix,
                  "Serve repositories under PREFIX/, as `ferry push --registry HOST/PREFIX` would place them");
  cmd->add_option("-j,--jobs", flags->jobs, "Threads verifying blobs before serving (default 4)")->check(CLI::Range(1, 64));
  cmd->add_option("--max-connections", flags->max_connections, "Clients served at once; more get 503 (default 64)")
      ->check(CLI::Range(1, 4096));
  add_trust_flags(*cmd, *flags, "Trusted public key; repeat for several (any of them may have signed)");
  cmd->get_option("--pubkey")->allow_extra_args(false);
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      if (flags->cert_file.empty() != flags->key_file.empty()) {
        throw core::UsageError("--cert-file and --key-file go together", "give both for HTTPS, or neither for HTTP");
      }
      ServeOptions options;
      options.source = flags->source;
      options.trust = trust_options(*flags);
      options.prefix = flags->prefix;
      options.jobs = flags->jobs;
      ServedContent content = prepare_served_content(options, out, out);
      out.finish_progress();

      serve::ServerOptions server_options;
      server_options.listen = flags->listen;
      server_options.max_connections = flags->max_connections;
      if (!flags->cert_file.empty()) server_options.tls = serve::TlsFiles{flags->cert_file, flags->key_file};
      auto api = std::make_shared<serve::Distribution>(std::move(content.catalog), std::move(content.opener));
      serve::Server server(server_options, [api](const serve::Request& r) { return api->handle(r); }, out);

      const auto& catalog = api->catalog();
      if (out.json()) {
        std::error_code ec;
        const std::uint64_t size = content.kind == "bundle" ? std::filesystem::file_size(flags->source, ec) : 0;
        nlohmann::json j = bundle_json(content.descriptor, content.signature, ec ? 0 : size);
        j["url"] = server.url();
        j["source"] = flags->source;
        j["kind"] = content.kind;
        j["verified"] = {{"blobs", content.verified_blobs}, {"bytes", content.verified_bytes}};
        nlohmann::json repos = nlohmann::json::array();
        for (const auto& [name, tags] : catalog.repositories) {
          nlohmann::json t = nlohmann::json::array();
          for (const auto& [tag, digest] : tags) t.push_back(tag);
          repos.push_back({{"name", name}, {"tags", t}});
        }
        j["repositories"] = repos;
        print_json(out, j);
      } else {
        out.result(fmt::format("{} {}: OK, signature {}; {} blobs verified ({})", content.kind, flags->source,
                               signature_text(content.signature), content.verified_blobs,
                               human_bytes(content.verified_bytes)));
        for (const auto& [name, tags] : catalog.repositories) {
          std::string list;
          for (const auto& [tag, digest] : tags) list += (list.empty() ? "" : ", ") + tag;
          out.result(fmt::format("  {}{}{}", name, list.empty() ? "" : "  ", list));
        }
        out.result(fmt::format("serving {} repositories on {} (read-only; Ctrl-C stops)", catalog.repositories.size(),
                               server.url()));
      }
      std::fflush(stdout);

      // SIGINT and SIGTERM stop accepting and end the open connections; exit 0.
      g_server.store(&server);
      struct sigaction action {};
      action.sa_handler = stop_serving;
      sigemptyset(&action.sa_mask);
      sigaction(SIGINT, &action, nullptr);
      sigaction(SIGTERM, &action, nullptr);
      std::signal(SIGPIPE, SIG_IGN);
      server.run();
      g_server.store(nullptr);
      out.info("serve: stopped");
    };
  });
}

} // namespace ferry::cli
